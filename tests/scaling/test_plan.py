"""The sizing model (recognition/scaling, tools/plan.py): arithmetic, CLI, and a measured run."""
import ctypes
import json
import subprocess
import sys

import numpy as np
import pytest
from mxnet import nd

from recognition.errors import ConfigError
from recognition.heads.parallel_fc import ParallelFC
from recognition.scaling.backbone_stats import BackboneStats, backbone_stats
from recognition.commands.plan import count, main
from recognition.scaling.fit import largest_batch, largest_classes
from recognition.scaling.memory import Setup, classifier_memory, total, worker_memory
from recognition.scaling.timing import GPU_FP32_TFLOPS, fc_work, gemm_seconds
from recognition.scaling.traffic import step_traffic
from tests.support import REPO

FAKE = BackboneStats("fake", 112, params=1000, aux=10, activations=500, embedding_size=4,
                     prelu_form="op")
SOFTMAX = "softmax: cosines, logits -> logit gradient"
FEATURES = "gathered features and labels, feature gradient"


def _bytes(items):
    return {item.name: item.bytes for item in items}


def test_full_fc_by_hand():
    # C=10 over W=3: ceil(10/3)=4 classes on worker 0; N = 3*2 = 6; D = 4
    items = _bytes(classifier_memory(Setup(10, workers=3, batch_size=2, embedding_size=4)))
    assert items == {"centres (weight)": 4 * 4 * 4, "momentum": 64, "centre gradient": 64,
                     SOFTMAX: 2 * 6 * 4 * 4,  # cosines + logits/gradient, N x K float32
                     FEATURES: 4 * 6 * 4 * 4 + 6 * 4}


def test_softmax_arrays_are_kept_between_steps():
    """ParallelFC reuses its two N x K arrays from step to step: they are persistent."""
    kept = {item.name for item in classifier_memory(Setup(10, workers=2)) if item.persistent}
    assert SOFTMAX in kept and FEATURES not in kept


def test_partial_fc_by_hand():
    # C=100 over W=2: c=50; N=2*4=8; rate 0.1 -> 5 rows wanted, but ParallelFC makes room
    # for every row of the global batch to be a positive held here: k = min(c, max(5, N)) = 8
    setup = Setup(100, workers=2, batch_size=4, embedding_size=4, sample_rate=0.1)
    assert (setup.num_local, setup.sampled_rows, setup.logit_columns) == (50, 8, 8)
    items = _bytes(classifier_memory(setup))
    assert items["sampled rows: weight, gradient, momentum"] == 3 * 8 * 4 * 4
    assert items[SOFTMAX] == 2 * 8 * 8 * 4
    # c float32 random scores + a c-long int32 inverse map, per step
    assert items["sampling: random scores, inverse map"] == 50 * 4 + 50 * 4
    assert "centre gradient" not in items
    # the sampled rows' own count wins once it exceeds the global batch
    assert Setup(10_000, workers=2, batch_size=8, sample_rate=0.1).sampled_rows == 500
    # at most c rows, still sampled (padding rows) when the batch outgrows the shard
    assert Setup(10, batch_size=20, sample_rate=0.5).sampled_rows == 10
    # a rate that rounds to every row is the full FC (ParallelFC does the same)
    assert Setup(10, batch_size=2, sample_rate=0.96).sampled_rows is None


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
    """Training gathers features and labels by all-reducing zero-padded N-row blocks."""
    setup = Setup(10, workers=3, batch_size=2, embedding_size=4, dtype="float16")
    sent = {t.name: t.bytes for t in step_traffic(setup, params=1000)}
    ring = 2 * 2 / 3  # 2(W-1)/W
    assert sent == pytest.approx({
        "backbone gradient all-reduce": ring * 1000 * 2,
        "feature all-reduce (zero-padded blocks)": ring * 6 * 4 * 4,
        "label all-reduce (zero-padded blocks)": ring * 6 * 4,
        "softmax max, sum and loss all-reduces": 3 * ring * 6 * 4,
        "feature-gradient all-reduce": ring * 6 * 4 * 4}, rel=1e-12)
    assert sum(t.bytes for t in step_traffic(Setup(10), params=1000)) == 0  # one worker


def test_classifier_gemm_time_at_a_stated_peak():
    """10M classes at 128 images/GPU, 512-d: 3 GEMMs of 2*N*c*D flops = 3.93 TFLOP per GPU
    per step (N*c = 128*10M whatever W), 58.7 ms at the H100's 67 TFLOP/s float32."""
    for workers in (8, 64):
        setup = Setup(10_000_000, workers=workers, batch_size=128, embedding_size=512)
        flops = fc_work(setup).gemm_flops
        assert flops == pytest.approx(3 * 2 * 128 * 10_000_000 * 512, rel=1e-6)
        assert gemm_seconds(setup) == pytest.approx(flops / 67e12, rel=1e-12)
    assert GPU_FP32_TFLOPS == 67.0
    assert gemm_seconds(setup, tflops=134.0) == pytest.approx(gemm_seconds(setup) / 2)


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


def test_activations_are_counted_for_the_prelu_form_each_device_builds():
    """IResNet-100 at 112x112: 48.1M values per image with the four-op PReLU (CPU), 31.8M with
    MXNet's one-op PReLU (GPU); the PReLU-free r_tiny is the same either way."""
    conv, op = backbone_stats("r100"), backbone_stats("r100", prelu_form="op")
    assert (conv.prelu_form, op.prelu_form) == ("conv", "op")
    assert conv.params == op.params and conv.aux == op.aux
    assert round(conv.activations / 1e6, 1) == 48.1 and round(op.activations / 1e6, 1) == 31.8
    # each PReLU keeps one output instead of four: the difference is 3x the PReLU outputs.
    # The stem's at 112x112x64; a unit's sits after its stride-1 conv, so a stage's first
    # unit has it at the stage's input side, the others at its output side.
    stages = [(64, 112, 56, 3), (128, 56, 28, 13), (256, 28, 14, 30), (512, 14, 7, 3)]
    prelu = 64 * 112 * 112 + sum(c * (first ** 2 + (units - 1) * rest ** 2)
                                 for c, first, rest, units in stages)
    assert conv.activations - op.activations == 3 * prelu
    tiny = backbone_stats("r_tiny")
    assert tiny.activations == backbone_stats("r_tiny", prelu_form="op").activations


def _status():
    """(VmRSS, VmHWM) of this process in bytes."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                fields[line.split(":")[0]] = int(line.split()[1]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def _trim():
    """A baseline without freed heap pages that glibc still holds."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _state_items(items):
    """The items ParallelFC.state_bytes() counts: persistent, less the softmax arrays."""
    return total([item for item in items if item.name != SOFTMAX], persistent_only=True)


def _run_fc(classes, dim, batch, steps, sample_rate=1.0):
    """A fresh ParallelFC after ``steps`` steps, with (RSS growth, peak RSS growth)."""
    rng = np.random.RandomState(0)
    feats = nd.array(rng.randn(batch, dim).astype(np.float32))
    labels = nd.array(rng.randint(0, classes, batch))
    nd.waitall()
    _trim()
    before, _ = _status()
    with open("/proc/self/clear_refs", "w") as refs:  # reset VmHWM to the current RSS
        refs.write("5")
    fc = ParallelFC(classes, dim, sample_rate=sample_rate, seed=0)
    for _ in range(steps):
        fc.forward_backward(feats, labels)
        fc.update(0.1)
    nd.waitall()
    rss, peak = _status()
    return fc, rss - before, peak - before


def test_classifier_memory_matches_a_measured_run():
    """200k classes x 512-d on one worker: the model's classifier state equals
    ParallelFC.state_bytes() and its persistent memory is within 10 % of the RSS the FC adds
    over two steps."""
    setup = Setup(200_000, batch_size=8, embedding_size=512)
    fc, grown, _ = _run_fc(200_000, 512, 8, steps=2)
    items = classifier_memory(setup)
    assert _state_items(items) == fc.state_bytes() == 3 * 200_000 * 512 * 4
    predicted = total(items, persistent_only=True)
    assert abs(predicted - grown) <= 0.1 * grown, (predicted, grown)


def test_softmax_temporaries_match_a_measured_peak():
    """Logits-bound (N x c = 256 x 50k, 16-d, one process): the peak RSS the FC adds over two
    steps is within 10 % of state + 2 N x K float32 arrays (the old model's 4.5 arrays would
    be 2x off)."""
    setup = Setup(50_000, batch_size=256, embedding_size=16)
    _, grown, peak = _run_fc(50_000, 16, 256, steps=2)
    items = classifier_memory(setup)
    assert abs(total(items) - peak) <= 0.1 * peak, (total(items), peak)
    assert abs(total(items, persistent_only=True) - grown) <= 0.1 * grown


def test_partial_fc_state_matches_parallel_fc():
    """The sampled rows are sized as ParallelFC sizes them, also when the batch outgrows the
    wanted rows (100 classes, rate 0.5, 128 rows: k = 100, still the sampled path)."""
    for classes, rate, batch in ((1000, 0.1, 16), (100, 0.5, 128)):
        setup = Setup(classes, batch_size=batch, embedding_size=8, sample_rate=rate)
        fc = ParallelFC(classes, 8, sample_rate=rate, seed=0)
        rng = np.random.RandomState(1)
        feats = nd.array(rng.randn(batch, 8).astype(np.float32))
        fc.forward_backward(feats, nd.array(rng.randint(0, classes, batch)))
        fc.update(0.1)
        assert _state_items(classifier_memory(setup)) == fc.state_bytes(), (classes, rate)


def test_count_accepts_suffixes():
    assert [count(t) for t in ("200000", "200k", "10M", "1e7", "2.5k")] == [
        200_000, 200_000, 10_000_000, 10_000_000, 2500]


def test_cli_help_names_every_flag(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--classes", "--workers", "--network", "--batch-size", "--embedding-size",
                 "--dtype", "--sample-rate", "--gpu-memory", "--reserve-gb", "--json",
                 "--activation-factor", "--fusion-mb", "--link-gbps", "--step-time",
                 "--device", "--gpu-tflops"):
        assert flag in text
    assert "67" in text and "H100" in text and "datasheet" in text  # the peak and its source


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
    assert set(plan["traffic_seconds_lower_bound"]) == {"100", "25"}
    work = plan["classifier_work"]
    assert work["gemm_seconds_lower_bound"] == pytest.approx(work["flops"] / 67e12, rel=1e-12)
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "partial FC 0.1: 12,500 rows sampled" in text and "largest batch per worker" in text
    assert "line rate (bytes / rate: a lower bound)" in text
    assert "memory only: its classifier GEMMs alone take at least" in text


def test_tools_plan_wrapper_runs():
    proc = subprocess.run([sys.executable, "tools/plan.py", "--classes", "10M", "--workers",
                           "64", "--network", "r100", "--batch-size", "128", "--dtype",
                           "float16", "--sample-rate", "0.1", "--gpu-memory", "80"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "r100 (65.16M params, 48.1M activations/image" in proc.stdout and "fits" in proc.stdout
    assert "PReLU counted as four ops (minimum, 1x1 depthwise conv, relu, add), what training " \
        "builds (48.1M activations/image, factor 1.25); as one op (MXNet's PReLU, not built " \
        "yet: its slope gradient is wrong in MXNet 1.9.1 graphs): 31.8M (factor 1.6)" \
        in proc.stdout
    assert "b*A*s*1.25" in proc.stdout


def test_cli_device_cpu_counts_the_conv_form(capsys):
    argv = ["--classes", "1000", "--network", "r100", "--batch-size", "2", "--json"]
    assert main(argv + ["--device", "cpu"]) == 0
    backbone = json.loads(capsys.readouterr().out)["backbone"]
    assert backbone["prelu_form"] == "conv" and backbone["other_form"]["prelu_form"] == "op"
    assert backbone["activations"] > backbone["other_form"]["activations"]
    assert main(argv + ["--device", "cpu", "--activation-factor", "1.1"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["setup"]["activation_factor"] == 1.1
    acts = next(m["bytes"] for m in plan["memory"] if m["name"] == "activations kept for backward")
    assert acts == pytest.approx(2 * backbone["activations"] * 4 * 1.1, rel=1e-8)  # ceil
