"""Liu et al. (FacialNet paper): FacialNet (8 convolutions) with a gender (2-way) and an
age-group (8-way) head on Adience, packed with `--pack-label` so each record's label is
[identity, gender, age group].
The paper's recipe: SGD lr 0.01, momentum 0.9, weight decay 0.01, batch 25, 100 epochs
(Adience has about 17k faces, so about 70k steps; the paper lowers the lr on a loss plateau,
here x0.1 at 40k and 60k). The held-out fold, packed the same way into `val.rec`, is scored
every 5k steps (gender and age-group accuracy, 1-off for age); the best checkpoint follows the
mean of the two. On the synthetic set: --rec data/synthetic/train.rec (packed with face-synth
--pack-label) --val_rec data/synthetic/verify_attributes.rec.

The paper's values are kept: they train once FacialNet's heads have BatchNorm after each hidden
FC (the default `batch_norm=True`; see recognition/backbones/facialnet.py for why plain FC ->
ReLU heads collapsed to constant outputs at any of these settings). The paper's grey input is
kept too (right for Adience); the synthetic faces carry much of their gender in lip colour, so
there `--network_kwargs '{"gray": false}'` learns gender faster (docs/benchmarks.md).
The paper itself quotes lr 0.01 in its introduction and 2e-3 as its best in section III; 0.01 is
kept."""
config = dict(
    rec="data/adience/train.rec",
    network="facialnet",
    image_size=[75, 75],
    attribute_weights=[1.0, 1.0],
    batch_size=25,
    lr=0.01,
    weight_decay=0.01,
    lr_steps=[40000, 60000],
    max_steps=70000,
    reference_batch_size=0,
    val_rec="data/adience/val.rec",
    verify_every=5000,
    save_every=5000,
)
