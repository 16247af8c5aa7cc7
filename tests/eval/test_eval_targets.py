"""Evaluation targets: one registry for `face-verify` and training (a new kind added in one place
reaches both), and the ROC figure read as face verification reads it (log FAR, TAR marks)."""
import json
import os

import cv2
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from recognition.data.reading.pairs import save_pairs
from recognition.errors import DataError
from recognition.eval import metrics, plots, targets
from recognition.commands.verify import main
from recognition.training.verifier import Verifier


class ColourMinusGrey(nn.HybridBlock):
    """A parameter-free 'embedding': each image's mean colour less grey."""

    def hybrid_forward(self, F, x):
        return F.mean(x, axis=(2, 3)) - 128.0


def _write_bin(path, pairs=20, seed=0):
    """Genuine pairs share a colour (plus noise); impostors do not."""
    rng = np.random.default_rng(seed)
    bins, issame = [], []
    for i in range(pairs):
        a = rng.integers(0, 256, 3)
        b = a if i % 2 == 0 else rng.integers(0, 256, 3)
        for colour in (a, b):
            img = np.clip(colour + rng.normal(0, 4, (8, 8, 3)), 0, 255).astype(np.uint8)
            bins.append(cv2.imencode(".png", img)[1].tobytes())
        issame.append(i % 2 == 0)
    save_pairs(str(path), bins, issame)


def _export(prefix):
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    net = ColourMinusGrey()
    net.hybridize()
    net(mx.nd.zeros((1, 3, 8, 8)))
    net.export(prefix, 1)
    return f"{prefix},1"


class BrightTarget(targets.Target):
    """A toy benchmark: the mean embedding of random images, addressed as `bright`."""

    kind = "bright"

    @classmethod
    def claims(cls, name):
        return name == "bright"

    def load(self):
        return np.random.default_rng(0).integers(0, 256, (5, 3, 8, 8)).astype(np.uint8)

    def score(self, data, net):
        from recognition.eval.embed import Embedder

        emb, _ = Embedder(net, self.options.batch_size).embed_all(data, False, False)
        return {"mean": float(emb.mean()), "embeddings": emb}

    def metrics(self, result):
        return {self.name: result["mean"]}

    def summary(self, result):
        return f"{self.name} {result['mean']:.3f}"


@pytest.fixture()
def data_dir(tmp_path):
    _write_bin(tmp_path / "synth.bin")
    return tmp_path


def test_names_resolve_to_kinds_and_missing_sets_say_where(data_dir):
    opts = targets.Options()
    assert isinstance(targets.open_target("ijbc", str(data_dir), opts, ""), targets.IJBTarget)
    pair = targets.open_target("synth", str(data_dir), opts, "")
    assert isinstance(pair, targets.PairTarget) and pair.path.endswith("synth.bin")
    with pytest.raises(DataError, match=r"lfw.bin: pair set not found \(target 'lfw', here\)"):
        targets.open_target("lfw", str(data_dir), opts, "here")


def test_training_verifier_scores_pair_sets_as_the_cli_does(data_dir, capsys):
    verifier = Verifier(str(data_dir), ["synth"], (8, 8), mx.cpu(), batch_size=8)
    accuracy, line = verifier.score(ColourMinusGrey())
    assert verifier.target == "synth" and line.startswith("synth ") and "% +- " in line
    assert main(["--data-dir", str(data_dir), "--model", _export(str(data_dir / "colour")),
                 "--target", "synth", "--quiet", "--output", str(data_dir / "r.json")]) == 0
    report = json.loads((data_dir / "r.json").read_text())
    assert accuracy == {"synth": pytest.approx(report["results"][0]["acc"])}
    with pytest.raises(DataError, match=r"best_target='lfw' is not one of .*\['synth'\]"):
        Verifier(str(data_dir), ["synth"], (8, 8), mx.cpu(), best_target="lfw")


def test_a_new_kind_in_the_registry_reaches_the_cli_and_training(data_dir, monkeypatch, capsys):
    monkeypatch.setattr(targets, "KINDS", (BrightTarget,) + targets.KINDS)
    verifier = Verifier(str(data_dir), ["bright", "synth"], (8, 8), mx.cpu(),
                        best_target="bright")
    accuracy, line = verifier.score(ColourMinusGrey())
    assert set(accuracy) == {"bright", "synth"} and verifier.target == "bright"
    assert line.startswith(f"bright {accuracy['bright']:.3f}, synth ")
    out = data_dir / "r.json"
    assert main(["--data-dir", str(data_dir), "--model", _export(str(data_dir / "colour")),
                 "--target", "bright", "--quiet", "--output", str(out),
                 "--plot", str(data_dir / "plots")]) == 0
    assert f"[bright][colour,1] bright {accuracy['bright']:.3f}" in capsys.readouterr().out
    result = json.loads(out.read_text())["results"][0]
    assert result["target"] == "bright" and "embeddings" not in result  # arrays are dropped
    assert json.loads(out.read_text())["plots"] == []  # no plot_data, no figures


def _pair_result(seed, negatives=3000, separation=3.0):
    """A pair-set result as PairTarget.score returns it (distances, labels, threshold)."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(negatives, bool), np.zeros(negatives, bool)]
    dist = np.r_[rng.normal(1.0, 0.3, negatives), rng.normal(1.0 + separation * 0.3, 0.3,
                                                             negatives)]
    return {"dist": dist, "labels": labels, "threshold": 1.5}


def test_roc_figure_log_far_marks_and_one_curve_per_model():
    target = targets.PairTarget("lfw", "lfw.bin", targets.Options())
    results = [_pair_result(0), _pair_result(1, separation=2.0)]
    fig = plots.roc_figure([(f"r50,{i + 1}", target.plot_data(r).roc)
                            for i, r in enumerate(results)], "lfw ROC")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_xlim() == pytest.approx((1 / 3000, 1))  # 3,000 impostor pairs resolve 1/3000
    curves = [ln for ln in ax.get_lines() if ln.get_marker() in ("None", None, "")]
    marks = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert len(curves) == 2 and len(marks) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()][0].startswith("r50,1 (AUC ")
    for res, mark in zip(results, marks):
        table = metrics.tar_at_far(res["labels"], -res["dist"])["tar_at_far"]
        np.testing.assert_allclose(mark.get_xdata(), [1e-3, 1e-2, 1e-1])  # resolvable only
        np.testing.assert_allclose(mark.get_ydata(), [table[k] for k in ("1e-03", "1e-02",
                                                                          "1e-01")])
    assert "roc_auc" in results[0] and "pr_auc" in results[0]  # reported with --plot, as before


def test_far_axis_starts_at_1e6_for_ijb_sized_pair_counts():
    assert plots.lowest_far(8_000_000) == 1e-6 and plots.lowest_far(1000) == 1e-3
    ijb = targets.IJBTarget("ijbb", ".", targets.Options())
    labels = np.r_[np.ones(4, bool), np.zeros(10, bool)]
    scores = np.r_[[0.9, 0.8, 0.7, 0.3], np.linspace(0, 0.6, 10)]
    result = metrics.tar_at_far(labels, scores)
    result["labels"] = labels
    roc = ijb.plot_data(result).roc
    assert roc.negatives == 10 and roc.tar_at_far == {"1e-01": result["tar_at_far"]["1e-01"]}


def test_write_plots_writes_the_files(tmp_path):
    target = targets.PairTarget("lfw", "lfw.bin", targets.Options())
    rows = [(label, target.plot_data(_pair_result(seed, negatives=200)))
            for seed, label in enumerate(["a,1", "b,1"])]
    written = plots.write_plots("lfw", rows, str(tmp_path))
    assert [p.split("/")[-1] for p in written] == ["lfw_a_1_hist.png", "lfw_b_1_hist.png",
                                                   "lfw_roc.png", "lfw_pr.png"]
    assert all((tmp_path / p.split("/")[-1]).stat().st_size > 1000 for p in written)


def test_models_with_one_name_get_their_folders_in_legend_and_file_names(data_dir, capsys):
    models = [_export(str(data_dir / run / "colour")) for run in ("a", "b")]
    out = data_dir / "r.json"
    argv = ["--data-dir", str(data_dir), "--target", "synth", "--quiet", "--output", str(out),
            "--plot", str(data_dir / "plots")]
    assert main(argv + ["--model", models[0], "--model", models[1]]) == 0
    names = sorted(p.split("/")[-1] for p in json.loads(out.read_text())["plots"])
    assert names == ["synth_a_colour_1_hist.png", "synth_b_colour_1_hist.png", "synth_pr.png",
                     "synth_roc.png"]
