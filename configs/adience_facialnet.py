"""Seed 001: FacialNet (8 convolutions) with a gender (2-way) and an age-group (8-way) head on
Adience, packed with `--pack-label` so each record's label is [identity, gender, age group].
SGD momentum 0.9, weight decay 0.01, 100 epochs of Adience (~17k images, batch 64)."""
config = dict(
    rec="data/adience/train.rec",
    network="facialnet",
    image_size=[75, 75],
    attribute_weights=[1.0, 1.0],
    batch_size=64,
    lr=0.01,
    weight_decay=0.01,
    lr_steps=[15000, 22000],
    max_steps=27000,
    reference_batch_size=0,
    verify_every=0,
    save_every=2700,
)
