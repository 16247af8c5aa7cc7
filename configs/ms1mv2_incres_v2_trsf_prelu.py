"""Peng et al. 2020 on MS1MV2: Inception-ResNet v2 with PReLU and trainable residual scales
(TRSF)."""
BASE = "ms1mv2_incres_v2_prelu.py"
config = dict(network_kwargs={"act": "prelu", "trsf": True})
