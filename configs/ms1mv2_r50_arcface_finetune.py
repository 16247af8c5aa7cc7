"""Chen and Ding (improved ResNet), stage 2: ArcFace fine-tuning of the stage-1 softmax
backbone with a fresh classifier (`pretrained` names its checkpoint: prefix,step)."""
BASE = "ms1mv2_r50.py"
config = dict(pretrained="work_dirs/ms1mv2_r50_softmax/model,200000")
