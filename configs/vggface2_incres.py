"""Peng et al. 2020's VGGFace2 family (softmax loss, 160x160 input with the stem max-pool, 512-d):
lr 0.05 x0.2 every 20 epochs of 1,000 iterations, 100 epochs, batch 85. The twelve variants
(`vggface2_incres_v{1,2}_{plain,trsf,leaky,prelu,trsf_leaky,trsf_prelu}.py`) change only the
network options. VGGFace2 packed with tools/im2rec.py (9,131 identities)."""
config = dict(
    rec="data/vggface2",
    val_data_dir="data/vggface2",
    val_targets=["lfw"],
    image_size=[160, 160],
    network="incres_v1",
    network_kwargs={"act": "relu", "trsf": False, "stem_pool": True},
    loss="softmax",
    batch_size=85,
    lr=0.05,
    lr_steps=[20000, 40000, 60000, 80000],
    lr_factor=0.2,
    max_steps=100000,
    reference_batch_size=85,
    verify_every=1000,
    save_every=1000,
)
