"""`face-verify` end to end on a small generated `.bin`: a network that sees identity scores far
above chance and a random one near 50 %; JSON report and plots; clear errors for bad input."""
import json
import os
import pickle
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from recognition.data.reading.pairs import save_pairs
from recognition.commands.verify import main
from tests.support import REPO

SIZE, GRID, PAIRS = 32, 4, 120


def _identity_patterns(n_ids, rng):
    """Each identity: the same 16 block colours in its own arrangement (so colour statistics
    alone, which a global-pooled network sees, say nothing about identity)."""
    blocks = rng.integers(30, 226, (GRID * GRID, 3))
    return [blocks[rng.permutation(GRID * GRID)].reshape(GRID, GRID, 3) for _ in range(n_ids)]


def _draw(pattern, rng):
    """The pattern under a random colour cast (a nuisance) and pixel noise."""
    img = np.kron(pattern, np.ones((SIZE // GRID, SIZE // GRID, 1)))
    img = img + rng.uniform(-40, 40, 3) + rng.normal(0, 12, img.shape)
    return cv2.imencode(".png", np.clip(img, 0, 255).astype(np.uint8)[:, :, ::-1])[1].tobytes()


def _make_bin(path, seed=0):
    rng = np.random.default_rng(seed)
    patterns = _identity_patterns(10, rng)
    bins, issame = [], []
    for i in range(PAIRS):
        same = i % 2 == 0
        a = int(rng.integers(10))
        b = a if same else int((a + 1 + rng.integers(9)) % 10)
        bins += [_draw(patterns[a], rng), _draw(patterns[b], rng)]
        issame.append(same)
    save_pairs(str(path), bins, issame)


class BlockMeans(nn.HybridBlock):
    """Sees identity: mean colour of each block, position by position, less the image mean."""

    def hybrid_forward(self, F, x):
        x = F.broadcast_sub(x, F.mean(x, axis=(2, 3), keepdims=True)) / 128
        return F.flatten(F.Pooling(x, kernel=(8, 8), stride=(8, 8), pool_type="avg"))


def _export(net, prefix, shape=(1, 3, SIZE, SIZE)):
    net.hybridize()
    net(mx.nd.zeros(shape))
    net.export(prefix, 1)
    return f"{prefix},1"


def _random_net():
    """Random weights over pointwise features, pooled globally: blind to block arrangement,
    so it mostly sees the colour cast."""
    mx.random.seed(0)
    net = nn.HybridSequential()
    net.add(nn.HybridLambda(lambda F, x: (x - 127.5) / 128), nn.Conv2D(16, 1, activation="relu"),
            nn.Conv2D(16, 1), nn.GlobalAvgPool2D(), nn.Flatten())
    net.initialize(mx.init.Normal(0.1))
    return net


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    _make_bin(root / "synth.bin")
    good = _export(BlockMeans(), str(root / "blocks"))
    rand = _export(_random_net(), str(root / "random"))
    return root, good, rand


def _run(*argv):
    return main([str(a) for a in argv] + ["--quiet", "--batch-size", "16"])


def test_identity_net_far_above_chance_random_net_near_it(setup, tmp_path, capsys):
    root, good, rand = setup
    report_path, plot_dir = tmp_path / "report.json", tmp_path / "plots"
    assert _run("--data-dir", root, "--model", good, "--model", rand, "--target", "synth",
                "--output", report_path, "--plot", plot_dir) == 0
    out = capsys.readouterr().out
    assert "[synth][blocks,1]" in out and "pairs/s" in out
    report = json.loads(report_path.read_text())
    by_model = {r["model"]: r for r in report["results"]}
    assert by_model["blocks,1"]["acc"] > 0.95
    assert by_model["blocks,1"]["val"] > 0.5
    assert 0.35 < by_model["random,1"]["acc"] < 0.65
    assert by_model["random,1"]["acc_std"] > 0  # folds differ: not the degenerate all-"different"
    for r in report["results"]:
        assert r["pairs"] == PAIRS and 0 <= r["threshold"] < 4 and "acc_noflip" in r
    names = sorted(os.listdir(plot_dir))
    assert names == ["synth_blocks_1_hist.png", "synth_pr.png", "synth_random_1_hist.png",
                     "synth_roc.png"]
    assert all(os.path.getsize(plot_dir / n) > 1000 for n in names)


def test_low_light_transform_is_reported_and_changes_the_numbers(setup, tmp_path):
    root, good, _ = setup
    plain, dark = tmp_path / "plain.json", tmp_path / "dark.json"
    assert _run("--data-dir", root, "--model", good, "--target", "synth", "--output", plain) == 0
    assert _run("--data-dir", root, "--model", good, "--target", "synth", "--output", dark,
                "--transform", "low_light", "--no-flip") == 0
    a, b = json.loads(plain.read_text()), json.loads(dark.read_text())
    assert b["transform"] == "low_light" and b["flip"] is False
    assert a["results"][0]["xnorm"] != pytest.approx(b["results"][0]["xnorm"])
    assert b["results"][0]["acc"] == b["results"][0]["acc_noflip"]


def _error(capsys, *argv):
    assert _run(*argv) == 2
    return capsys.readouterr().err


def test_bad_inputs_give_clear_errors(setup, tmp_path, capsys):
    root, good, _ = setup
    err = _error(capsys, "--data-dir", tmp_path, "--model", good, "--target", "lfw")
    assert "lfw.bin: pair set not found" in err
    (tmp_path / "junk.bin").write_bytes(b"this is not a pickle")
    assert "junk.bin: not a pair set" in _error(capsys, "--data-dir", tmp_path, "--model", good,
                                                "--target", "junk")
    with open(tmp_path / "tuple.bin", "wb") as f:
        pickle.dump({"a": 1}, f)
    assert "tuple.bin: not a pair set" in _error(capsys, "--data-dir", tmp_path, "--model",
                                                 good, "--target", "tuple")
    save_pairs(str(tmp_path / "broken.bin"), [b"\x89PNG garbage", b"nope"], [True])
    assert "broken.bin: image 0 (pair 0) does not decode" in _error(
        capsys, "--data-dir", tmp_path, "--model", good, "--target", "broken")
    err = _error(capsys, "--data-dir", root, "--model", good, "--target", "synth",
                 "--transform", "fog")
    assert "unknown transform 'fog'" in err and "low_light" in err
    err = _error(capsys, "--data-dir", root, "--model", f"{tmp_path}/missing,1",
                 "--target", "synth")
    assert "missing-symbol.json: checkpoint file not found" in err
    assert "--gpu 3: this MXNet sees" in _error(capsys, "--data-dir", root, "--model", good,
                                                "--target", "synth", "--gpu", "3")


def test_model_input_size_mismatch_names_bin_and_size(setup, tmp_path, capsys):
    root, _, _ = setup
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, strides=2), nn.Dense(8))
    net.initialize()
    fixed = _export(net, str(tmp_path / "fixed"), shape=(1, 3, 112, 112))
    err = _error(capsys, "--data-dir", root, "--model", fixed, "--target", "synth")
    assert "synth.bin: images are 32x32" in err and "expects 112x112" in err
    assert _run("--data-dir", root, "--model", fixed, "--target", "synth",
                "--image-size", "112,112") == 0


def test_tools_wrapper_help_lists_the_flags():
    out = subprocess.run([sys.executable, os.path.join(REPO, "tools", "verify.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--data-dir", "--model", "--target", "--nfolds", "--no-flip", "--gpu",
                 "--output", "--plot", "--transform", "--batch-size"):
        assert flag in out


# --------------------------------------------------------------------------- ROC plot
def _roc_at(separation, seed, negatives=3000):
    """A `plots.Roc` of Gaussian genuine/impostor scores `separation` standard deviations
    apart (5.6-5.7: a 99 % model at FAR 1e-3 on 3,000 impostor pairs)."""
    from recognition.eval import metrics, plots

    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(negatives, bool), np.zeros(negatives, bool)]
    scores = np.r_[rng.normal(separation, 1, negatives), rng.normal(0, 1, negatives)]
    result = metrics.tar_at_far(labels, scores)
    return plots.roc_data(result["fpr"], result["tpr"], result["auc"], negatives)


def test_roc_of_two_99_percent_models_is_zoomed_and_its_tar_labels_apart(tmp_path):
    from recognition.eval import plots

    curves = [("r50,1", _roc_at(5.6, 0)), ("r100,1", _roc_at(5.7, 1))]
    marks = [tar for _, roc in curves for tar in roc.tar_at_far.values()]
    assert min(marks) > 0.98  # both are 99 % models at every plotted FAR
    fig = plots.roc_figure(curves, "lfw ROC")
    ax = fig.axes[0]
    lower, upper = ax.get_ylim()
    shown = min(plots._tar_at(roc, 1 / 3000) for _, roc in curves)  # TAR at the left edge
    assert upper == 1.0 and shown - 0.01 < lower < shown  # zoomed: a little below the data
    assert lower > 0.95  # not the 0..1 axis that squeezed every curve into the top
    assert (lower, upper) == plots.tar_limits(curves, 1 / 3000)

    # every TAR-at-FAR value is printed once, each in a box of its own
    from matplotlib.text import Text

    texts = [t for a in fig.axes for t in a.findobj(Text)]
    texts += [cell.get_text() for a in fig.axes for table in a.tables
              for cell in table.get_celld().values()]  # a table cell's text is no child
    texts = [t for t in texts if t.get_visible() and t.get_text()]
    values = [t for t in texts if t.get_text().replace(".", "", 1).isdigit()]
    expected = sorted(f"{100 * tar:.2f}" for tar in marks)
    assert sorted(t.get_text() for t in values) == expected
    fig.tight_layout()
    fig.canvas.draw()  # a table places its cells' texts when drawn
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in values]
    for i, a in enumerate(boxes):
        assert a.width > 0 and a.height > 0
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), "two TAR labels print over each other"
    # the table lies under the ROC, not on it
    roc_box = ax.get_window_extent(renderer)
    assert all(b.y1 < roc_box.y0 for b in boxes)

    written = plots.write_plots("lfw", [(label, plots.PlotData(roc=roc)) for label, roc in curves],
                                str(tmp_path))
    assert written == [str(tmp_path / "lfw_roc.png")]
    png = cv2.imread(written[0])
    assert png is not None and png.shape[1] == 500 and png.shape[0] > 400  # 5 in x 4+ in
