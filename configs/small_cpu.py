"""Small-CPU recipe: a few minutes on a laptop-class CPU (or one small GPU) for your own faces.

The demo's network and data with three changes: faces at 56x56 (the iterator and the verifier
scale 112x112 sets down by area averaging), ArcFace m=0.3 instead of the demo's 0.5 (same
s=32), and 6,000 steps of 64 in one process (on 2 cores two Horovod workers are no faster than
one). About 1,400 img/s on the 2-core dev machine, 6,000 steps in about 5 minutes. README
"Choosing a recipe for a small machine" says what to change for other data and machines.
"""
BASE = "synthetic.py"
config = dict(
    image_size=[56, 56],
    margin_m2=0.3,            # the margin this recipe was measured with (the demo: 0.5)
    lr_steps=[4500, 5500],
    max_steps=6000,
    log_every=50,
)
