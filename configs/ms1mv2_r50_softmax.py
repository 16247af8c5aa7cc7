"""Chen and Ding (improved ResNet), stage 1: ResNet-50 with plain (normalised) softmax, which
fits quickly, on their schedule; stage 2, `ms1mv2_r50_arcface_finetune.py`, fine-tunes its
backbone with ArcFace and a fresh classifier."""
BASE = "ms1mv2_r50.py"
config = dict(loss="softmax")
