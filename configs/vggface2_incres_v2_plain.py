"""Peng et al. 2020, VGGFace2: Inception-ResNet v2, act=relu, TRSF False."""
BASE = "vggface2_incres.py"
config = dict(network="incres_v2",
              network_kwargs={"act": "relu", "trsf": False, "stem_pool": True})
