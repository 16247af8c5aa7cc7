"""Kumar et al. (memory-optimized face recognition): MobileNetV2 (x0.25, under 1 MB) with a
128-d embedding on CASIA-WebFace, softmax plus center loss (centres moved by a moving average,
lambda weighting the center term)."""
BASE = "casia_r50_arcface.py"
config = dict(
    network="mbv2",
    embedding_size=128,
    loss="softmax",
    margin_s=30.0,
    center_loss_weight=0.003,
    center_loss_alpha=0.95,
)
