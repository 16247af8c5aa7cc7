"""IResNet-50 + ArcFace on MS1MV2 (InsightFace's `faces_emore`, 85,742 identities).

base.py's schedule (Chen and Ding, improved ResNet) for a global batch of 512 (e.g. 4 GPUs x
128).
"""
config = dict(
    rec="data/faces_emore",
    val_data_dir="data/faces_emore",
    val_targets=["lfw", "cfp_fp", "agedb_30"],
    network="r50",
)
