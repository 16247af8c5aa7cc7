"""Ponce (ArcFace report): ResNet-50 + ArcFace (s=64, m=0.5) on CASIA-WebFace (10,572
identities, InsightFace's `faces_webface_112x112`), flip augmentation, 112x112, 12 epochs
(about 960 steps each at a global batch of 512), lr x0.1 after epochs 7 and 10."""
config = dict(
    rec="data/faces_webface_112x112",
    val_data_dir="data/faces_webface_112x112",
    val_targets=["lfw", "cfp_fp", "agedb_30"],
    network="r50",
    lr_steps=[6700, 9600],
    max_steps=11500,
)
