"""Peng et al. 2020, VGGFace2: Inception-ResNet v2, act=leaky, TRSF True."""
BASE = "vggface2_incres.py"
config = dict(network="incres_v2",
              network_kwargs={"act": "leaky", "trsf": True, "stem_pool": True})
