"""benchmarks/gpu_smoke.py (`make gpu-check`): a clean, fast skip without a GPU, and the pieces
its verdict is built from (the GPU runs themselves have never run in this project)."""
import subprocess
import sys
import time

import pytest

from benchmarks import gpu_smoke
from tests.support import REPO

LOG = """\
2026-12-05 11:29:27 1 worker(s), 100 classes, 1000 images, global batch 64, 50 steps
2026-12-05 11:29:33 step 5/50 epoch 0 loss 24.0408 lr 0.1 49.6 img/s eta 00:00:58
2026-12-05 11:29:40 step 10/50 epoch 0 loss 21.5006 lr 0.1 47.1 img/s eta 00:00:54
2026-12-05 11:29:45 step 15/50 epoch 0 loss 20.3233 lr 0.1 59.3 img/s eta 00:00:37
2026-12-05 11:29:51 step 20/50 epoch 1 loss 17.7918 lr 0.1 57.3 img/s eta 00:00:33
2026-12-05 11:29:56 step 25/50 epoch 1 loss 17.0629 lr 0.1 61.8 img/s eta 00:00:25
2026-12-05 11:30:41 checkpoint step 50 saved in /tmp/run1
"""


def test_without_a_gpu_it_says_why_and_exits_0_at_once():
    if gpu_smoke.skip_reason() is None:
        pytest.skip("this machine has a GPU: gpu_smoke would train")
    started = time.time()
    proc = subprocess.run([sys.executable, "benchmarks/gpu_smoke.py"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_smoke: skipped: "), proc.stdout
    assert "CPU build" in lines[0] or "sees no GPU" in lines[0]
    assert time.time() - started < 30  # `make bench` runs it on every machine


def test_the_skip_reason_names_the_cpu_wheel(monkeypatch):
    monkeypatch.setattr(gpu_smoke, "mxnet_wheels", lambda: {"mxnet"})
    reason = gpu_smoke.skip_reason()
    assert "CPU build (pip package mxnet)" in reason and "make install GPU=cu112" in reason


def test_log_lines_speed_and_a_falling_loss(tmp_path):
    (tmp_path / "train.log").write_text(LOG)
    lines = gpu_smoke.parse_log(str(tmp_path / "train.log"))
    assert lines[0] == (5, 24.0408, 49.6) and len(lines) == 5
    assert gpu_smoke.loss_fell(lines) == (True, "loss 22.771 -> 17.427")
    assert gpu_smoke.steady_speed(lines) == 59.3  # median after the first two (start-up)
    assert gpu_smoke.parse_log(str(tmp_path / "missing.log")) == []


def test_a_flat_or_broken_loss_fails():
    flat = [(s, 5.0, 100.0) for s in range(4)]
    assert gpu_smoke.loss_fell(flat) == (False, "loss did not fall: 5.000 -> 5.000")
    assert not gpu_smoke.loss_fell([(1, float("nan"), 1.0)] * 4)[0]
    assert gpu_smoke.loss_fell(flat[:3]) == (False, "only 3 loss line(s) in train.log")


def test_runs_are_one_then_all_workers_float32_then_float16(monkeypatch):
    monkeypatch.setattr(gpu_smoke, "gpu_count", lambda: 4)
    args = gpu_smoke._parser().parse_args([])
    assert gpu_smoke.runs_to_do(args, on_gpu=True) == [
        (1, "float32"), (1, "float16"), (4, "float32"), (4, "float16")]
    monkeypatch.setattr(gpu_smoke, "gpu_count", lambda: 1)
    assert gpu_smoke.runs_to_do(args, on_gpu=True) == [(1, "float32"), (1, "float16")]
    assert gpu_smoke.runs_to_do(args, on_gpu=False) == [(1, "float32"), (2, "float32")]


def test_multi_gpu_runs_go_through_horovodrun_on_localhost():
    command = gpu_smoke.train_command("d/train.rec", "out", "float16", 4, 50, 5)
    assert command[1:6] == ["-np", "4", "-H", "localhost:4", "--gloo"]
    assert command[command.index("--dtype") + 1] == "float16"
    assert command[command.index("--max_steps") + 1] == "50"
    assert gpu_smoke.train_command("d/train.rec", "out", "float32", 1, 50, 5)[0] == sys.executable


def test_the_plan_for_the_same_setup_is_read(tmp_path):
    prediction = gpu_smoke.plan(2, "float16")
    assert prediction["memory_peak_bytes"] > 0, prediction
    assert prediction["setup"]["workers"] == 2 and prediction["setup"]["dtype"] == "float16"
    run = dict(workers=2, dtype="float16", ok=True, why="loss 9.000 -> 4.000", speed=1280.0,
               memory=None, plan=prediction)
    line = gpu_smoke.report(run)
    assert line.startswith("PASS 2 worker(s) float16: loss 9.000 -> 4.000; 1,280.0 img/s "
                           "(100.0 ms/step), peak GPU memory n/a; plan: peak ")
