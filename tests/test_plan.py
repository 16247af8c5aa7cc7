"""The sizing model (recognition/scaling, tools/plan.py): arithmetic, CLI, and a measured run."""
import ctypes
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from mxnet import nd

from recognition.errors import ConfigError
from recognition.heads.parallel_fc import ParallelFC
from recognition.scaling.backbone_stats import BackboneStats, backbone_stats
from recognition.scaling.cli import count, main
from recognition.scaling.fit import largest_batch, largest_classes
from recognition.scaling.memory import Setup, classifier_memory, total, worker_memory
from recognition.scaling.traffic import step_traffic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = BackboneStats("fake", 112, params=1000, aux=10, activations=500, embedding_size=4)


def _bytes(items):
    return {item.name: item.bytes for item in items}


def test_full_fc_by_hand():
    # C=10 over W=3: ceil(10/3)=4 classes on worker 0; N = 3*2 = 6; D = 4
    items = _bytes(classifier_memory(Setup(10, workers=3, batch_size=2, embedding_size=4)))
    assert items == {"centres (weight)": 4 * 4 * 4, "momentum": 64, "centre gradient": 64,
                     "logits and softmax temporaries": 4.5 * 6 * 4 * 4,  # 432
                     "all-gathered features, labels, feature gradient": 4 * 6 * 4 * 4 + 6 * 4}


def test_partial_fc_by_hand():
    # C=100 over W=2: c=50; rate 0.1 -> 5 rows; N=2*4=8 positives, about N/W=4 per worker
    setup = Setup(100, workers=2, batch_size=4, embedding_size=4, sample_rate=0.1)
    assert (setup.num_local, setup.sampled_rows, setup.logit_columns) == (50, 5, 5)
    items = _bytes(classifier_memory(setup))
    assert items["sampled rows: weight, gradient, momentum"] == 3 * 5 * 4 * 4
    assert items["logits and softmax temporaries"] == 4.5 * 8 * 5 * 4
    # more positives per worker than sampled rows: all positives are kept
    assert Setup(100, workers=2, batch_size=8, sample_rate=0.1).sampled_rows == 8
    assert "centre gradient" not in items
    # sampling every row is the full FC (ParallelFC does the same)
    assert Setup(10, batch_size=20, sample_rate=0.5).sampled_rows is None


def test_backbone_and_runtime_by_hand():
    setup = Setup(10, workers=2, batch_size=2, embedding_size=4, dtype="float16",
                  fusion_bytes=100, reserve_bytes=7)
    items = _bytes(worker_memory(setup, FAKE))
    assert items["weights (+ BatchNorm statistics)"] == 1000 * 2 + 10 * 4
    assert items["float32 master weights"] == 4000
    assert items["gradients"] == 2000 and items["SGD momentum (float32)"] == 4000
    assert items["activations kept for backward"] == 2 * 500 * 2 * 1.25
    assert items["Horovod fusion buffer"] == 100
    assert items["reserve (CUDA context, workspaces)"] == 7
    float32 = _bytes(worker_memory(Setup(10, embedding_size=4), FAKE))
    assert "float32 master weights" not in float32 and "Horovod fusion buffer" not in float32


def test_traffic_by_hand():
    setup = Setup(10, workers=3, batch_size=2, embedding_size=4, dtype="float16")
    sent = {t.name: t.bytes for t in step_traffic(setup, params=1000)}
    ring = 2 * 2 / 3  # 2(W-1)/W
    assert sent == pytest.approx({
        "backbone gradient all-reduce": ring * 1000 * 2,
        "feature all-gather": 2 / 3 * 6 * 4 * 4,
        "label all-gather": 2 / 3 * 6 * 4,
        "softmax max, sum and loss all-reduces": 3 * ring * 6 * 4,
        "feature-gradient all-reduce": ring * 6 * 4 * 4})
    assert sum(t.bytes for t in step_traffic(Setup(10), params=1000)) == 0  # one worker


def test_largest_batch_and_classes_are_the_edge_of_fitting():
    setup = Setup(1000, workers=4, batch_size=8, embedding_size=4)
    cap = total(worker_memory(setup, FAKE)) * 3
    b = largest_batch(setup, FAKE, cap)
    assert total(worker_memory(Setup(1000, 4, b, 4), FAKE)) <= cap
    assert total(worker_memory(Setup(1000, 4, b + 1, 4), FAKE)) > cap
    c = largest_classes(setup, FAKE, cap)
    assert total(worker_memory(Setup(c, 4, 8, 4), FAKE)) <= cap
    assert total(worker_memory(Setup(c + 1, 4, 8, 4), FAKE)) > cap
    assert largest_batch(setup, FAKE, 10) == 0


def test_bad_setups_are_config_errors():
    with pytest.raises(ConfigError, match="cannot be split into 64"):
        Setup(10, workers=64)
    with pytest.raises(ConfigError, match="sample_rate"):
        Setup(10, sample_rate=0.0)
    with pytest.raises(ConfigError, match="dtype"):
        Setup(10, dtype="bfloat16")


def test_backbone_stats_count_the_trained_parameters():
    import mxnet as mx

    from recognition.backbones import get_model
    from recognition.backbones.summary import count_params

    stats = backbone_stats("r_tiny")
    net = get_model("r_tiny")
    net.initialize(mx.init.Xavier())
    net(nd.zeros((1, 3, 112, 112)))
    trainable, everything = count_params(net)
    assert (stats.params, stats.params + stats.aux) == (trainable, everything)
    assert stats.embedding_size == 128 and stats.activations > 3 * 112 * 112


def _rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))


def test_classifier_memory_matches_a_measured_run():
    """200k classes x 512-d on one worker: the model's persistent classifier memory equals
    ParallelFC.state_bytes() and is within 10 % of the RSS the FC adds over two steps."""
    setup = Setup(200_000, batch_size=8, embedding_size=512)
    rng = np.random.RandomState(0)
    feats = nd.array(rng.randn(8, 512).astype(np.float32))
    labels = nd.array(rng.randint(0, 200_000, 8))
    nd.waitall()
    try:  # a baseline without freed heap pages that glibc still holds
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    before = _rss()
    fc = ParallelFC(200_000, 512, sample_rate=1.0, seed=0)
    for _ in range(2):
        fc.forward_backward(feats, labels)
        fc.update(0.1)
    nd.waitall()
    grown = _rss() - before
    predicted = total(classifier_memory(setup), persistent_only=True)
    assert predicted == fc.state_bytes() == 3 * 200_000 * 512 * 4
    assert abs(predicted - grown) <= 0.1 * grown, (predicted, grown)


def test_count_accepts_suffixes():
    assert [count(t) for t in ("200000", "200k", "10M", "1e7", "2.5k")] == [
        200_000, 200_000, 10_000_000, 10_000_000, 2500]


def test_cli_help_names_every_flag(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--classes", "--workers", "--network", "--batch-size", "--embedding-size",
                 "--dtype", "--sample-rate", "--gpu-memory", "--reserve-gb", "--json",
                 "--activation-factor", "--fusion-mb", "--link-gbps", "--step-time"):
        assert flag in text


@pytest.mark.parametrize("argv, message", [
    ([], "--classes"),
    (["--classes", "ten"], "expected a positive count"),
    (["--classes", "0"], "positive whole count"),
    (["--classes", "10", "--workers", "64", "--network", "none"], "cannot be split"),
    (["--classes", "1000", "--sample-rate", "1.5", "--network", "none"], "--sample-rate"),
    (["--classes", "1000", "--network", "r99"], "unknown backbone 'r99'"),
    (["--classes", "1000", "--dtype", "int8"], "invalid choice"),
    (["--classes", "1000", "--gpu-memory", "-3"], "must be > 0"),
])
def test_cli_bad_input_is_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_cli_json_and_table(capsys):
    argv = ["--classes", "1M", "--workers", "8", "--network", "none", "--batch-size", "64",
            "--sample-rate", "0.1", "--gpu-memory", "32"]
    assert main(argv + ["--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["derived"] == {"global_batch": 512, "classes_per_worker": 125_000,
                               "sampled_rows": 12_500, "logit_columns": 12_500}
    assert plan["memory_peak_bytes"] == sum(m["bytes"] for m in plan["memory"])
    assert plan["fit"]["fits"] and plan["fit"]["largest_classes"] > 1_000_000
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "partial FC 0.1: 12,500 rows sampled" in text and "largest batch per worker" in text


def test_tools_plan_wrapper_runs():
    proc = subprocess.run([sys.executable, "tools/plan.py", "--classes", "10M", "--workers",
                           "64", "--network", "r100", "--batch-size", "128", "--dtype",
                           "float16", "--sample-rate", "0.1", "--gpu-memory", "80"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "r100 (65.16M params" in proc.stdout and "fits" in proc.stdout
