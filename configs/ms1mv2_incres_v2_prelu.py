"""Peng et al. 2020 on MS1MV2: Inception-ResNet v2 with PReLU, ArcFace, 112x112 input (stem
without its max-pool), lr 0.1 divided by 10 at 50k/80k/110k, end at 170k."""
BASE = "ms1mv2_r50.py"
config = dict(
    network="incres_v2",
    network_kwargs={"act": "prelu", "trsf": False},
    lr_steps=[50000, 80000, 110000],
    max_steps=170000,
    reference_batch_size=0,
)
