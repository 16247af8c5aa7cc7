"""Synthetic face dataset: determinism, layout of the written files, the LFW-like pair split,
held-out identities, and that it is hard for raw pixels yet carries identity."""
import importlib.util
import json
import os

import cv2
import numpy as np
import pytest

from recognition.commands.demo import raw_pixel_accuracy
from recognition.commands.synth import main
from recognition.data.reading.pairs import decode_pair_images, load_pairs
from recognition.synthetic.generate import VERIFY_BASE, generate, read_attributes, verify_plan
from recognition.synthetic.identity import identity_params
from recognition.synthetic.nuisance import PRESETS, nuisance_settings
from recognition.synthetic.render import render_image
from recognition.errors import ConfigError
from tests.support import REPO

SMALL = dict(num_identities=6, images_per_identity=4, num_verify_identities=20, num_pairs=600,
             seed=3, quality=90)


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_synthetic", os.path.join(REPO, "benchmarks", "bench_synthetic.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _jpeg(img, quality):
    return cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("synth"))
    meta = generate(out, workers=2, **SMALL)
    return out, meta


def test_render_is_deterministic_and_identity_specific():
    a, b = render_image(0, 5, 2), render_image(0, 5, 2)
    assert a.shape == (112, 112, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render_image(0, 6, 2))      # other identity
    assert not np.array_equal(a, render_image(0, 5, 3))      # other image
    assert not np.array_equal(a, render_image(1, 5, 2))      # other seed
    assert identity_params(0, 5)["skin"] != identity_params(0, 6)["skin"]


def test_folder_attributes_and_meta(small):
    out, meta = small
    folders = sorted(os.listdir(os.path.join(out, "images")))
    assert folders == [f"id_{i:05d}" for i in range(6)]
    for f in folders:
        names = sorted(os.listdir(os.path.join(out, "images", f)))
        assert names == [f"{k:03d}.jpg" for k in range(4)]
    attrs = read_attributes(os.path.join(out, "attributes.tsv"))
    for label, f in enumerate(folders):
        p = identity_params(SMALL["seed"], label)
        assert attrs[f] == (label, p["gender"], p["age"])
        assert p["gender"] in (0, 1) and 0 <= p["age"] < 8
    with open(os.path.join(out, "meta.json")) as fh:
        assert json.load(fh) == meta
    assert meta["seed"] == 3 and meta["identities"] == 6 and meta["pairs"] == 600


def test_written_image_regenerates_alone(small):
    out, _ = small
    with open(os.path.join(out, "images", "id_00004", "002.jpg"), "rb") as fh:
        assert fh.read() == _jpeg(render_image(3, 4, 2), SMALL["quality"])


def test_same_seed_same_bytes_whatever_the_workers(small, tmp_path):
    out, _ = small
    generate(str(tmp_path), workers=1, **SMALL)
    images = [os.path.join("images", f"id_{i:05d}", f"{k:03d}.jpg")
              for i in range(6) for k in range(4)]
    for rel in ["verify.bin", "attributes.tsv", "verify_attributes.rec"] + images:
        with open(os.path.join(out, rel), "rb") as a, open(os.path.join(tmp_path, rel), "rb") as b:
            assert a.read() == b.read(), rel


def test_pairs_are_lfw_like_and_held_out(small):
    """Map every .bin image back to (identity, image) by re-rendering: genuine pairs share an
    identity, impostors do not, each fold uses its own identities, none is a training one."""
    out, meta = small
    pairs = load_pairs(os.path.join(out, "verify.bin"))
    folds, k = meta["folds"], meta["verify_images_per_identity"]
    assert (folds, k) == verify_plan(20, 600) == (10, 6)
    assert len(pairs) == 600 and pairs.issame.sum() == 300
    expected = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    assert np.array_equal(pairs.issame, expected)
    who = {_jpeg(render_image(3, VERIFY_BASE + j, i), 90): j for j in range(20) for i in range(k)}
    ids = np.array([who[b] for b in pairs.bins]).reshape(-1, 2)
    assert np.array_equal(ids[:, 0] == ids[:, 1], pairs.issame)
    fold_of_pair = np.repeat(np.arange(10), 60)
    assert np.all(ids % folds == fold_of_pair[:, None])
    keys = {tuple(sorted((a, b))) for a, b in zip(pairs.bins[0::2], pairs.bins[1::2])}
    assert len(keys) == 600                                   # no repeated pair
    train = set()
    for root, _, files in os.walk(os.path.join(out, "images")):
        train |= {open(os.path.join(root, f), "rb").read() for f in files}
    assert train.isdisjoint(pairs.bins)


def test_verify_attributes_rec_holds_the_held_out_images_and_their_attributes(small):
    """verify_attributes.rec (the attribute networks' val_rec): read back by stock MXNet, the
    images are verify.bin's, labelled [identity, gender, age group] from the generator."""
    import mxnet as mx

    out, meta = small
    k = meta["verify_images_per_identity"]
    reader = mx.recordio.MXIndexedRecordIO(os.path.join(out, "verify_attributes.idx"),
                                           os.path.join(out, "verify_attributes.rec"), "r")
    assert sorted(reader.keys) == list(range(20 * k))
    for key in (0, 7, 20 * k - 1):
        header, payload = mx.recordio.unpack(reader.read_idx(key))
        j, i = divmod(key, k)
        p = identity_params(SMALL["seed"], VERIFY_BASE + j)
        assert list(header.label) == [j, p["gender"], p["age"]]
        assert payload == _jpeg(render_image(SMALL["seed"], VERIFY_BASE + j, i), 90)
    reader.close()


def test_raw_pixels_score_well_below_80_percent(small):
    out, _ = small
    assert raw_pixel_accuracy(os.path.join(out, "verify.bin"))["acc"] < 0.75


def test_identity_is_learnable_by_a_linear_probe():
    """PCA+LDA on 32x32 pixels of 10 identities, half of each one's images held out."""
    bench = _bench()
    x = np.array([bench._small(render_image(7, i, k)) for i in range(10) for k in range(16)])
    y = np.repeat(np.arange(10), 16)
    train = np.tile(np.arange(16) < 8, 10)
    acc = (bench.lda_model(x[train], y[train], dims=40).predict(x[~train]) == y[~train]).mean()
    assert acc > 0.4                                          # chance is 0.1


def test_cli_packs_rec_with_attribute_labels(tmp_path):
    import mxnet as mx

    out = str(tmp_path / "ds")
    assert main(["--out", out, "--identities", "3", "--images-per-identity", "2",
                 "--verify-identities", "4", "--pairs", "20", "--workers", "1",
                 "--pack-label"]) == 0
    attrs = read_attributes(os.path.join(out, "attributes.tsv"))
    rec = mx.recordio.MXIndexedRecordIO(os.path.join(out, "train.idx"),
                                        os.path.join(out, "train.rec"), "r")
    assert len(rec.keys) == 6
    for key in rec.keys:
        header, img = mx.recordio.unpack_img(rec.read_idx(key))
        label = int(header.label[0])
        _, g, a = attrs[f"id_{label:05d}"]
        assert list(header.label) == [label, g, a] and img.shape == (112, 112, 3)
    assert len(load_pairs(os.path.join(out, "verify.bin"))) == 20


def test_cli_errors_are_clean(tmp_path, capsys):
    out = str(tmp_path / "ds")
    assert main(["--out", out, "--pairs", "7", "--no-pack"]) == 2
    assert "error:" in capsys.readouterr().err
    args = ["--out", out, "--identities", "1", "--images-per-identity", "1",
            "--verify-identities", "2", "--pairs", "2", "--workers", "1", "--no-pack"]
    assert main(args) == 0
    assert main(args) == 2                                    # images/ exists: refuse
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    with pytest.raises(ValueError):
        verify_plan(1, 100)


def test_nuisance_presets_change_images_not_identities(tmp_path):
    """`wild` is another capture of the same people: identity parameters are shared, images
    differ, the default is `aligned`, and an unknown preset is a clear error."""
    wild = PRESETS["wild"]
    assert np.array_equal(render_image(0, 5, 2), render_image(0, 5, 2, PRESETS["aligned"]))
    assert not np.array_equal(render_image(0, 5, 2), render_image(0, 5, 2, wild))
    assert np.array_equal(render_image(0, 5, 2, wild), render_image(0, 5, 2, wild))
    assert wild.max_yaw > PRESETS["aligned"].max_yaw
    with pytest.raises(ConfigError, match="unknown nuisance preset 'blurry'.*aligned, wild"):
        nuisance_settings("blurry")
    out = str(tmp_path / "wild")
    assert main(["--out", out, "--identities", "3", "--images-per-identity", "2",
                 "--verify-identities", "20", "--pairs", "600", "--workers", "1",
                 "--nuisance", "wild", "--no-pack"]) == 0
    meta = json.load(open(os.path.join(out, "meta.json")))
    assert meta["nuisance"] == "wild" and meta["nuisance_settings"]["max_yaw"] == wild.max_yaw
    with open(os.path.join(out, "images", "id_00001", "001.jpg"), "rb") as fh:
        assert fh.read() == _jpeg(render_image(0, 1, 1, wild), 95)
