"""A tiny user working copy for tests/test_readme_commands.py.

`build_working_copy(root, scratch)` lays `root` out like a checkout in which the README's
commands are typed: `recognition/`, `tools/` and `configs/` are links to this repository, and
every input path the README names that no earlier README command creates holds a tiny stand-in:

    data/faces_emore/          InsightFace-layout train.rec/.idx + property, lfw.bin,
                               cfp_fp.bin, agedb_30.bin (tiny synthetic pairs)
    data/mine/photos/          a folder per identity of unaligned 160x160 photos, and
    data/mine/landmarks.tsv    their 5 landmarks (tools/align.py makes data/mine/aligned_faces/,
                               the folder im2rec then packs)
    data/mine/plain.rec        a plain-layout .rec (for rec_convert --layout insightface)
    data/mine/mine_pairs.bin   held-out pairs of the user's own faces (the small-CPU recipe)
    data/adience/val.rec       a held-out .rec packed with --pack-label ([id, gender, age])
    data/IJB_release/IJBB/     an IJB-B layout: loose_crop/ + meta/ (tid_mid, 5pts_score,
                               template_pair_label)
    models/r100/model-0001     an exported r_tiny standing in for a model-zoo checkpoint
    models/w600k_r50.onnx      that r_tiny as ONNX without metadata (a model-zoo ONNX file)
    work_dirs/adience_facialnet/best-45000   an exported FacialNet (75x75, two heads)
    work_dirs/run/fc-2000-rank{0,1}of2.params  the classifier shards of a 2-worker run

`data/synthetic/` and `work_dirs/synthetic/` are NOT made here: the README's own commands
(`python -m recognition.synthetic ...`, then the training commands) create them, in order.
"""
import os
import shutil

import cv2
import numpy as np

from tests.support import REPO

LINKED = ("recognition", "tools", "configs")
# tiny sizes (the synthetic generator renders 112x112 faces whatever the counts)
TINY_SYNTHETIC = dict(num_identities=4, images_per_identity=4, num_verify_identities=20,
                      num_pairs=40, seed=3, workers=1)


def build_working_copy(root, scratch):
    """Fill `root` (the users' checkout) using `scratch` for intermediate files."""
    from recognition.data.writing.packing import pack_image_folder
    from recognition.synthetic.generate import generate

    root, scratch = str(root), str(scratch)
    for name in LINKED:
        os.symlink(os.path.join(REPO, name), os.path.join(root, name))
    src = os.path.join(scratch, "faces")
    generate(src, **TINY_SYNTHETIC)
    images = os.path.join(src, "images")

    def path(*parts):
        full = os.path.join(root, *parts)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        return full

    quiet = dict(progress=False, log=None)
    # InsightFace's distribution: train.rec/.idx (+ property) and the three pair sets
    pack_image_folder(images, path("data", "faces_emore", "train"), layout="insightface",
                      **quiet)
    for target in ("lfw", "cfp_fp", "agedb_30"):
        shutil.copy(os.path.join(src, "verify.bin"), path("data", "faces_emore", f"{target}.bin"))
    # the user's own photos with landmarks (align.py aligns them), and a plain .rec of faces
    _write_photos(path("data", "mine", "photos", "x"), path("data", "mine", "landmarks.tsv"),
                  images)
    pack_image_folder(images, path("data", "mine", "plain"), **quiet)
    shutil.copy(os.path.join(src, "verify.bin"), path("data", "mine", "mine_pairs.bin"))
    # Adience's held-out fold packed with --pack-label
    for ext in (".rec", ".idx"):
        shutil.copy(os.path.join(src, "verify_attributes" + ext), path("data", "adience",
                                                                       "val" + ext))
    _write_ijbb(path("data", "IJB_release", "IJBB", "x"), images)
    _export("r_tiny", path("models", "r100", "model"), 1, 112, embedding_size=32)
    _export_onnx(path("models", "r100", "model"), 1, path("models", "w600k_r50.onnx"))
    _export("facialnet", path("work_dirs", "adience_facialnet", "best"), 45000, 75)
    _write_shards(path("work_dirs", "run", "fc-2000"), num_classes=4, dim=32, world_size=2)


def _export(name, prefix, epoch, size, **kwargs):
    """An initialised (untrained) registry network exported as `prefix-symbol.json` +
    `prefix-EPOCH.params`, the format training writes."""
    import mxnet as mx

    from recognition.backbones import get_model

    with mx.name.NameManager():
        net = get_model(name, **kwargs)
    net.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2))
    net.hybridize()
    net(mx.nd.zeros((1, 3, size, size)))
    net.export(prefix, epoch=epoch)


def _export_onnx(prefix, epoch, out):
    """The checkpoint as ONNX with no metadata, as InsightFace's zoo files come."""
    import onnx

    from recognition.eval.embed import load_model
    from recognition.eval.export_onnx import export

    export(load_model(prefix, epoch), out)
    model = onnx.load(out)
    del model.metadata_props[:]
    onnx.save(model, out)


def _write_shards(prefix, num_classes, dim, world_size):
    from recognition.heads.shards import Shard, save_shard, shard_path, shard_range

    rng = np.random.default_rng(0)
    for rank in range(world_size):
        start, count = shard_range(num_classes, world_size, rank)
        weight = rng.normal(0, 0.1, (count, dim)).astype(np.float32)
        save_shard(shard_path(prefix, rank, world_size),
                   Shard(weight, np.zeros_like(weight), num_classes, world_size, rank, start))


def _write_photos(anything_inside, landmark_file, images):
    """Each aligned face scaled 1.25 and rotated 10 degrees about the photo's centre in a
    160x160 grey photo, its landmarks the ArcFace template moved the same way; same folders."""
    from recognition.data.writing.align import ARCFACE_TEMPLATE

    photos = os.path.dirname(anything_inside)
    move = cv2.getRotationMatrix2D((56.0, 56.0), 10.0, 1.25)
    move[:, 2] += 80.0 - 56.0
    points = np.hstack([ARCFACE_TEMPLATE, np.ones((5, 1))]) @ move.T
    rows = []
    for folder in sorted(os.listdir(images)):
        os.makedirs(os.path.join(photos, folder), exist_ok=True)
        for name in sorted(os.listdir(os.path.join(images, folder))):
            face = cv2.imread(os.path.join(images, folder, name))
            photo = cv2.warpAffine(face, move, (160, 160), borderValue=(127, 127, 127))
            cv2.imwrite(os.path.join(photos, folder, name), photo)
            rows.append("\t".join([f"{folder}/{name}"] + [f"{v:.3f}" for v in points.ravel()]))
    with open(landmark_file, "w") as out:
        out.write("\n".join(rows) + "\n")


def _write_ijbb(anything_inside, images):
    """IJB-B layout from the aligned faces: each face pasted into a 150x150 loose crop with its
    5 landmarks at the ArcFace template (scaled 1.2, shifted 10), one template per image (two
    media each for the first identity), genuine pairs within an identity and impostor pairs
    across identities."""
    from recognition.eval.ijb import ARCFACE_TEMPLATE

    base = os.path.dirname(anything_inside)
    os.makedirs(os.path.join(base, "loose_crop"), exist_ok=True)
    os.makedirs(os.path.join(base, "meta"), exist_ok=True)
    scale, shift = 1.2, 10.0
    landmarks = ARCFACE_TEMPLATE * scale + shift
    tid, lmk, templates = [], [], []
    for i, folder in enumerate(sorted(os.listdir(images))):
        for k, name in enumerate(sorted(os.listdir(os.path.join(images, folder)))[:2]):
            face = cv2.imread(os.path.join(images, folder, name))
            loose = np.full((150, 150, 3), 127, np.uint8)
            big = cv2.resize(face, (int(112 * scale), int(112 * scale)))
            s = int(shift)
            loose[s:s + big.shape[0], s:s + big.shape[1]] = big
            crop = f"{i}_{k}.jpg"
            cv2.imwrite(os.path.join(base, "loose_crop", crop), loose)
            template = 10 * (i + 1) + k
            tid.append(f"{crop} {template} {100 * (i + 1) + k}")
            lmk.append(crop + " " + " ".join(f"{v:.2f}" for v in landmarks.ravel()) + " 0.9")
            templates.append((template, i))
    pairs = [f"{a} {b} {int(ia == ib)}" for n, (a, ia) in enumerate(templates)
             for b, ib in templates[n + 1:]]
    with open(os.path.join(base, "meta", "ijbb_face_tid_mid.txt"), "w") as f:
        f.write("\n".join(tid) + "\n")
    with open(os.path.join(base, "meta", "ijbb_name_5pts_score.txt"), "w") as f:
        f.write("\n".join(lmk) + "\n")
    with open(os.path.join(base, "meta", "ijbb_template_pair_label.txt"), "w") as f:
        f.write("\n".join(pairs) + "\n")
