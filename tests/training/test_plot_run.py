"""`tools/plot_run.py`: the series parsed from `train.log` (a resumed run joined at its
checkpoint, an attribute run's `acc[i]`), and the figure of several runs."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from recognition.commands.plot_run import main
from recognition.errors import DataError
from recognition.training.run_plot import parse_log, run_figure
from tests.support import REPO


# two sessions: stopped after the line of step 6 with checkpoint 4, resumed 30 minutes later
RESUMED = """\
2026-12-05 11:26:00 1 worker(s), 4 classes, 16 images, global batch 8, 8 steps, step lr
2026-12-05 11:26:00 loss: arcface s=32 m1=1 m2=0.5 m3=0
2026-12-05 11:26:00 config:
  lr: 0.1
  step 9/9 epoch 9 loss 9.9 lr 9 9 img/s eta 0  (a config line, not a log line)
2026-12-05 11:26:10 step 2/8 epoch 0 loss 5.1000 lr 0.1 70.0 img/s eta 00:00:30
2026-12-05 11:26:20 step 4/8 epoch 1 loss 4.8000 lr 0.1 71.0 img/s eta 00:00:20
2026-12-05 11:26:21 step 4 verification: verify 40.00% +- 20.00, ijbc TAR@FAR=1e-04 12.50%
2026-12-05 11:26:21 best verify so far: 40.00% (best-0004.params)
2026-12-05 11:26:22 checkpoint step 4 saved in work_dirs/a
2026-12-05 11:26:30 step 6/8 epoch 1 loss 4.5000 lr 0.01 72.0 img/s eta 00:00:10
2026-12-05 11:26:31 step 7: float16 overflow: both optimisers skipped
2026-12-05 12:00:00 1 worker(s), 4 classes, 16 images, global batch 8, 8 steps, step lr
2026-12-05 12:00:01 resumed from step 4 (lr 0.1)
2026-12-05 12:00:11 step 6/8 epoch 1 loss 4.4000 lr 0.01 72.5 img/s eta 00:00:10
2026-12-05 12:00:21 step 8/8 epoch 2 loss 4.3000 lr 0.01 73.0 img/s eta 00:00:00
2026-12-05 12:00:22 step 8 verification: verify 60.00% +- 10.00, ijbc TAR@FAR=1e-04 25.00%
2026-12-05 12:00:23 checkpoint step 8 saved in work_dirs/a
2026-12-05 12:00:23 done at step 8; checkpoints in work_dirs/a
"""

ATTRIBUTES = """\
2026-12-06 09:00:00 1 worker(s), 4 classes, 16 images, global batch 8, 4 steps, step lr
2026-12-06 09:00:00 loss: cross-entropy per attribute output, weights [1.0, 1.0]
2026-12-06 09:00:05 step 2/4 epoch 0 loss 1.9000 acc[1] 0.500 acc[2] 0.250 lr 0.05 60.0 img/s eta 00:00:05
2026-12-06 09:00:09 step 4/4 epoch 0 loss 1.5000 acc[1] 0.750 acc[2] 0.375 lr 0.05 61.0 img/s eta 00:00:00
2026-12-06 09:00:12 step 4 verification: gender 93.10%, age_group 71.20% (1-off 92.40%)
"""


def _run(tmp_path, name, text):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "train.log").write_text(text)
    return str(folder)


def test_resumed_run_is_joined_at_its_checkpoint(tmp_path):
    run = parse_log(os.path.join(_run(tmp_path, "r50", RESUMED), "train.log"))
    assert run.name == "r50" and run.max_steps == 8
    np.testing.assert_array_equal(run.steps, [2, 4, 6, 8])  # the first session's 6 is dropped
    np.testing.assert_allclose(run.losses, [5.1, 4.8, 4.4, 4.3])
    np.testing.assert_allclose(run.lrs, [0.1, 0.1, 0.01, 0.01])
    np.testing.assert_allclose(run.speeds, [70.0, 71.0, 72.5, 73.0])
    # seconds in sessions: the first lasted 31 s (to 11:26:31); the 33-minute stop is not counted
    np.testing.assert_allclose(run.seconds, [10, 20, 31 + 11, 31 + 21])
    np.testing.assert_array_equal(run.verify_steps, [4, 8])
    np.testing.assert_allclose(run.verify_seconds, [21, 31 + 22])
    assert list(run.accuracy) == ["verify", "ijbc TAR@FAR=1e-04"]
    np.testing.assert_allclose(run.accuracy["verify"], [0.4, 0.6])
    np.testing.assert_allclose(run.accuracy["ijbc TAR@FAR=1e-04"], [0.125, 0.25])
    assert run.train_accuracy == {}


def test_attribute_run_reads_training_and_held_out_accuracy(tmp_path):
    run = parse_log(os.path.join(_run(tmp_path, "facialnet", ATTRIBUTES), "train.log"))
    np.testing.assert_array_equal(run.steps, [2, 4])
    np.testing.assert_allclose(run.losses, [1.9, 1.5])
    np.testing.assert_allclose(run.lrs, [0.05, 0.05])  # acc[i] before lr does not hide it
    assert sorted(run.train_accuracy) == [1, 2]
    np.testing.assert_allclose(run.train_accuracy[1], [0.5, 0.75])
    np.testing.assert_allclose(run.train_accuracy[2], [0.25, 0.375])
    assert {k: list(v) for k, v in run.accuracy.items()} == {"gender": [pytest.approx(0.931)],
                                                             "age_group": [pytest.approx(0.712)]}
    np.testing.assert_allclose(run.seconds, [5, 9])


def test_fresh_start_after_a_crash_drops_the_lost_steps(tmp_path):
    crashed = RESUMED.split("2026-12-05 12:00:00")[0]
    fresh = ("2026-12-05 13:00:00 1 worker(s), 4 classes, 16 images, global batch 8, 8 steps\n"
             "2026-12-05 13:00:09 step 2/8 epoch 0 loss 5.0000 lr 0.1 80.0 img/s eta 00:00:30\n")
    run = parse_log(os.path.join(_run(tmp_path, "again", crashed + fresh), "train.log"))
    np.testing.assert_array_equal(run.steps, [2])
    np.testing.assert_allclose(run.losses, [5.0])
    assert len(run.verify) == 0


def test_several_runs_overlaid_in_one_png(tmp_path, capsys):
    runs = [_run(tmp_path, "r50", RESUMED), _run(tmp_path, "facialnet", ATTRIBUTES)]
    out = tmp_path / "plots" / "run.png"
    assert main(runs + ["-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "r50: 4 log points to step 8/8" in printed and "best verify 60.00%" in printed
    image = cv2.imread(str(out))
    assert out.stat().st_size > 10000 and image.shape[:2] == (12 * 90, 11 * 90)
    fig = run_figure([parse_log(os.path.join(r, "train.log")) for r in runs])
    assert len(fig.axes) == 8  # loss, lr, img/s, accuracy x (step, wall-clock)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["r50", "facialnet"]
    step_loss, time_loss = fig.axes[0], fig.axes[1]
    np.testing.assert_array_equal(step_loss.get_lines()[0].get_xdata(), [2, 4, 6, 8])
    np.testing.assert_allclose(time_loss.get_lines()[0].get_xdata(), [10, 20, 42, 52])  # seconds
    assert fig.axes[2].get_yscale() == "log"  # lr fell tenfold


def test_bad_runs_are_named(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), "-o", str(tmp_path / "x.png")]) == 2
    assert os.path.join(str(tmp_path / "missing"), "train.log") in capsys.readouterr().err
    other = tmp_path / "other.log"
    other.write_text("2026-12-05 11:26:00 something else\nhello\n")
    with pytest.raises(DataError, match="other.log: no training step lines"):
        parse_log(str(other))
    assert not (tmp_path / "x.png").exists()


def test_tool_runs_as_a_script(tmp_path):
    out = tmp_path / "run.png"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "plot_run.py"),
                           _run(tmp_path, "a", RESUMED), "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10000
