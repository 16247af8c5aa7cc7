"""Peng et al. 2020, VGGFace2: Inception-ResNet v1, act=relu, TRSF True."""
BASE = "vggface2_incres.py"
config = dict(network="incres_v1",
              network_kwargs={"act": "relu", "trsf": True, "stem_pool": True})
