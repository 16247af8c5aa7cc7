"""Every config key with its default. Experiment files in this folder override a few of them
(`config = dict(key=value, ...)`); `python recognition/train.py CONFIG --key value` overrides
any key on the command line. Unknown keys are errors, and so are values of the wrong type:
a key's type is its default's, or the one `OPTIONAL` below declares for keys whose default is
None. `python recognition/train.py CONFIG --print-config` prints the resolved config (the
margin keys filled in from the `loss` preset).
"""
config = dict(
    # --- data ---------------------------------------------------------------------------
    rec="data/synthetic/train.rec",  # .rec path/prefix, or a folder holding train.rec
    num_classes=None,         # None: from `property`, identity records or the .lst
    image_size=[112, 112],    # network input (H, W); other sizes: shorter edge scaled, centre crop
    data_order="global",      # global: every epoch one shuffle of all images, each worker a
                              # slice (read by key, threads; rand_mirror only) | part: MXNet's
                              # ImageRecordIter, each worker a fixed contiguous part (all of
                              # its augmentations)
    augment={"rand_mirror": True},  # augmentations (data_order='part': any ImageRecordIter one,
                              # see data/reading/iterator.py)
    preprocess_threads=2,     # decoding threads per worker
    data_cache_dir=None,      # where the image-only view of an InsightFace .rec goes
    # --- network ------------------------------------------------------------------------
    network="r50",            # backbone name (recognition.backbones.get_model_list())
    network_kwargs={},        # extra backbone arguments, e.g. {"act": "prelu", "trsf": True}
    embedding_size=512,       # embedding dimension
    network_checkpoint=None,  # "prefix,epoch" of any MXNet checkpoint (InsightFace model zoo
                              # too) to train instead of `network`: cut at its embedding layer
                              # (fc1), weights kept, fresh classifier
    # --- loss ---------------------------------------------------------------------------
    loss="arcface",           # margin preset: softmax | sphereface | cosface | arcface |
                              # combined. Their (s, m1, m2, m3): softmax (64, 1, 0, 0), sphereface
                              # (64, 1.35, 0, 0), arcface (64, 1, 0.5, 0), cosface
                              # (64, 1, 0, 0.35), combined (64, 1, 0.3, 0.2)
    margin_s=None,            # logit scale s (None: the `loss` preset's value)
    margin_m1=None,           # multiplicative angular margin, SphereFace (None: preset's)
    margin_m2=None,           # additive angular margin, ArcFace (None: preset's)
    margin_m3=None,           # additive cosine margin, CosFace (None: preset's)
    easy_margin=False,        # ArcFace: apply the margin only where cos(theta) > 0
    sample_rate=1.0,          # partial FC: fraction of negative class centres used per step
    center_loss_weight=0.0,   # lambda of center loss (Kumar et al.); 0 disables it
    center_loss_alpha=0.5,    # centre update c <- c - (1 - alpha) * (c - x) (Kumar et al.)
    attribute_weights=[1.0, 1.0],  # attribute networks (facialnet): weight of each output's
                              # cross-entropy against label columns 1, 2, ... (--pack-label)
    attribute_names=["gender", "age_group"],  # names of those outputs in logs and reports
    # --- optimisation (Chen and Ding: SGD lr 0.1, x0.1 at 100k/140k/160k, momentum 0.9, wd 5e-4)
    batch_size=128,           # images per worker per step
    lr=0.1,                   # base learning rate
    momentum=0.9,             # SGD momentum (backbone and classifier)
    weight_decay=5e-4,        # L2 weight decay (backbone and classifier)
    lr_schedule="step",       # step: x lr_factor at each of lr_steps | poly: lr * (1 - t) **
                              # lr_power | cosine: lr * (1 + cos(pi t)) / 2; t goes 0 -> 1 from
                              # the end of warm-up to max_steps (poly and cosine end at 0)
    lr_steps=[100000, 140000, 160000],  # step: steps where lr is multiplied by lr_factor
    lr_factor=0.1,            # step: lr multiplier at each of lr_steps
    lr_power=2.0,             # poly: the exponent (arcface_torch's PolyScheduler uses 2)
    max_steps=200000,         # total steps (Chen and Ding stop at 200k)
    reference_batch_size=512,  # global batch that lr_steps/max_steps refer to; 0: no scaling
    warmup_steps=0,           # linear warm-up from 0 to lr
    dtype="float32",          # float32 | float16 (GPU only: float16 backbone, float32 master
                              # weights, classifier and margin maths; checkpoints are float32)
    loss_scale=0.0,           # float16: static loss scale, or 0 for a dynamic one (skip the
                              # step and halve on overflow, double after 2,000 clean steps)
    seed=0,                   # seeds initialisation, data order and augmentation
    device="auto",            # auto: GPU local_rank when MXNet sees one, else the CPU | gpu |
                              # cpu | cpu:N (CPU context N: a stand-in that makes any array
                              # left on the default context fail, as on a GPU)
    # --- logging, verification, checkpoints ----------------------------------------------
    output=None,              # run folder; None: work_dirs/<config name>
    log_every=50,             # steps between log lines
    verify_every=2000,        # steps between verifications (0: never)
    val_data_dir="data/synthetic",  # folder holding <target>.bin
    val_targets=["verify"],   # .bin names verified during training
    best_target=None,         # target whose accuracy picks the best checkpoint (None: first;
                              # attribute networks: the mean of their outputs' accuracies)
    val_rec=None,             # attribute networks: held-out .rec packed with --pack-label,
                              # scored every verify_every steps (exact and 1-off accuracy)
    save_every=2000,          # steps between checkpoints (and always at the end)
    keep_checkpoints=2,       # how many step checkpoints to keep (best is kept apart)
    tensorboard=False,        # also write TensorBoard event files
    resume=False,             # continue from the last checkpoint in `output`
    pretrained=None,          # "prefix,epoch" of a backbone to fine-tune with a fresh classifier
)

# Types of the keys whose default is None (None stays allowed; `none` on the command line).
OPTIONAL = dict(
    num_classes=int, data_cache_dir=str, network_checkpoint=str, margin_s=float,
    margin_m1=float, margin_m2=float, margin_m3=float, output=str, best_target=str,
    val_rec=str, pretrained=str,
)
