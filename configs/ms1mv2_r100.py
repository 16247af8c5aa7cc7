"""IResNet-100 + ArcFace on MS1MV2."""
BASE = "ms1mv2_r50.py"
config = dict(network="r100")
