"""The demo: the embedded synthetic faces on 2 CPU workers (`make demo`)."""
config = dict(
    rec="data/synthetic/train.rec",
    val_data_dir="data/synthetic",
    val_targets=["verify"],
    network="r_tiny",
    embedding_size=128,
    loss="arcface",           # m=0.5 (the preset's); s=32 suits a few hundred identities
    margin_s=32.0,
    batch_size=64,
    lr=0.1,
    lr_steps=[2000, 2400],
    max_steps=2600,
    reference_batch_size=0,
    warmup_steps=100,
    log_every=20,
    verify_every=1000,
    save_every=500,
)
