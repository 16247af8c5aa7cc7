"""Ponce (ArcFace report): EfficientNet-B3 + ArcFace on CASIA-WebFace, compared with
casia_r50_arcface."""
BASE = "casia_r50_arcface.py"
config = dict(network="effb3")
