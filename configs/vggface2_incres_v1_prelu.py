"""Peng et al. 2020, VGGFace2: Inception-ResNet v1, act=prelu, TRSF False."""
BASE = "vggface2_incres.py"
config = dict(network="incres_v1",
              network_kwargs={"act": "prelu", "trsf": False, "stem_pool": True})
