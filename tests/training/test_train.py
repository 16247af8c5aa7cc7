"""Training: loss goes down, two Horovod workers agree, kill-and-resume, NaN guard, bad input."""
import json
import os
import signal

import numpy as np
import pytest

from recognition.commands.train import main
from recognition.config import load_config
from recognition.errors import DataError
from recognition.parallel.distributed import init_workers
from recognition.training.monitor import NonFiniteLoss, StopRequest
from recognition.training.run import Run
from tests.support import REPO
from tests.support.images import garble
from tests.support.tiny_faces import tiny_faces, write_config

TWO_WORKERS = os.path.join(REPO, "tests", "hvd_scripts", "train_two_workers.py")
TINY = dict(network="r_tiny", embedding_size=32, batch_size=8, loss="cosface", margin_s=16.0,
            margin_m2=0.0, margin_m3=0.1, lr=0.05, warmup_steps=0, reference_batch_size=0,
            log_every=5, verify_every=0, augment={}, preprocess_threads=1)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tiny_faces(str(tmp_path_factory.mktemp("synthetic")), 6, 6, seed=1)
    return out, write_config(out, TINY)


def make_run(config, **overrides):
    return Run(load_config(config, overrides), init_workers())


def test_loss_goes_down(tiny_data, tmp_path):
    _, config = tiny_data
    run = make_run(config, output=str(tmp_path), max_steps=30, lr_steps=[25], save_every=0)
    losses = []
    step = run.train_step
    run.train_step = lambda batch: losses.append(step(batch)) or losses[-1]
    run.train(stop=False)
    losses = [float(loss.asscalar()) for loss, _ in losses]  # read from the device at the end
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.8 * first, (first, last)
    assert os.path.isfile(tmp_path / "model-0030.params")


def test_damaged_image_is_named_once_in_the_log(tiny_data, tmp_path):
    """libjpeg decodes a garbled JPEG with a warning naming nothing: the run names the record
    once (it is read in every epoch), goes on, and counts it at the end."""
    out, config = tiny_data
    rec, offset = garble(os.path.join(out, "train.rec"), tmp_path, key=5, name="train")
    run = make_run(config, rec=rec, output=str(tmp_path / "run"), max_steps=10, save_every=0)
    run.train(stop=False)
    run.log.close()
    log = open(tmp_path / "run" / "train.log").read()
    assert run.epoch >= 2 and run.step == 10
    assert log.count(f"damaged record 5 at byte {offset}: libjpeg: Corrupt JPEG data") == 1, log
    assert f"list all damaged records with: python tools/rec_check.py {rec}" in log
    assert "damaged records met in training: 1 (named above)" in log


def weights(run):
    backbone = {k: v.data().asnumpy() for k, v in run.net.collect_params().items()}
    return backbone, run.objective.fc.weight.asnumpy(), run.objective.fc.momentum.asnumpy()


class StopAt:
    """Stands for SIGTERM arriving at a given step (the same flag StopRequest raises)."""

    def __init__(self, run, step):
        self.run, self.step = run, step

    def __bool__(self):
        return self.run.step >= self.step


def test_kill_and_resume_matches_uninterrupted_run(tiny_data, tmp_path):
    _, config = tiny_data
    common = dict(max_steps=16, lr_steps=[9], save_every=4, keep_checkpoints=1)
    straight = make_run(config, output=str(tmp_path / "straight"), **common)
    straight.train(stop=False)
    first = make_run(config, output=str(tmp_path / "resumed"), **common)
    first.train(stop=StopAt(first, 7))  # 7 = mid-epoch (4.5 batches per epoch)
    assert json.load(open(tmp_path / "resumed" / "checkpoint.json"))["step"] == 7
    second = make_run(config, output=str(tmp_path / "resumed"), resume=True, **common)
    second.restore()
    assert (second.step, second.schedule(second.step)) == (7, 0.05)
    second.train(stop=False)
    (bb_a, fc_a, mom_a), (bb_b, fc_b, mom_b) = weights(straight), weights(second)
    for name in bb_a:
        np.testing.assert_allclose(bb_b[name], bb_a[name], rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(fc_b, fc_a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mom_b, mom_a, rtol=1e-4, atol=1e-6)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tiny_data, tmp_path):
    _, config = tiny_data
    run = make_run(config, output=str(tmp_path), max_steps=10, save_every=3)
    run.train(stop=StopAt(run, 4))  # saves 3 and 4
    run.objective.fc.weight[:] = float("nan")
    with pytest.raises(NonFiniteLoss, match=r"nan at step 5; the last good checkpoint \(step 4\)"):
        run.train(stop=False)
    assert json.load(open(tmp_path / "checkpoint.json"))["step"] == 4


def test_signal_sets_the_stop_flag():
    with StopRequest() as stop:
        assert not stop
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop and stop.signal_name == "SIGTERM"


def test_unknown_key_and_missing_rec_are_clear_errors(tiny_data, capsys):
    _, config = tiny_data
    assert main([config, "--netwrk", "r18"]) == 2
    assert "unknown config key 'netwrk'" in capsys.readouterr().err
    assert main([config, "--rec", "/nowhere/train.rec"]) == 2
    assert "/nowhere/train.rec: record file not found" in capsys.readouterr().err


@pytest.mark.parametrize("center_loss", [0.0, 0.01])
def test_two_workers_share_the_work(tiny_data, tmp_path, run_horovod, center_loss):
    _, config = tiny_data
    overrides = json.dumps({"center_loss_weight": center_loss})
    run_horovod([TWO_WORKERS, config, str(tmp_path), "6", overrides], np=2)
    ranks = [np.load(tmp_path / f"backbone-rank{r}.npz") for r in range(2)]
    assert ("center_loss_centres" in ranks[0].files) == bool(center_loss)
    for name in ranks[0].files:  # backbone, BN statistics and center-loss centres agree
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)
    seen = [json.load(open(tmp_path / f"seen-rank{r}.json")) for r in range(2)]
    assert [(s["class_start"], s["num_local"]) for s in seen] == [(0, 3), (3, 3)]
    first_batches = [set(np.round(s["sums"][0], 1)) for s in seen]
    assert not first_batches[0] & first_batches[1]  # each worker reads its own part
    names = os.listdir(tmp_path)
    assert "fc-6-rank0of2.params" in names and "fc-6-rank1of2.params" in names
    assert "model-0006.params" in names


def test_a_dying_worker_ends_the_run(tiny_data, tmp_path, run_horovod):
    _, config = tiny_data
    proc = run_horovod([TWO_WORKERS, config, str(tmp_path), "50"], np=2, check=False, timeout=180,
                       env={"CRASH_RANK1_AT_STEP": "3"})
    assert proc.returncode != 0
    assert "simulated death of rank 1 at step 3" in proc.stdout + proc.stderr


def test_resume_a_two_worker_run_on_one_worker(tiny_data, tmp_path, run_horovod, capsys):
    from recognition.commands.shards import main as shards_main

    _, config = tiny_data
    run_horovod([TWO_WORKERS, config, str(tmp_path), "4"], np=2)
    common = dict(output=str(tmp_path), resume=True, max_steps=8, verify_every=0)
    with pytest.raises(DataError, match=r"written by 2 workers.*tools/shards.py split"):
        make_run(config, **common).restore()
    prefix = str(tmp_path / "fc-4")
    assert shards_main(["split", f"{prefix}-rank0of2.params", f"{prefix}-rank1of2.params",
                        "--world-size", "1", "--prefix", prefix]) == 0
    run = make_run(config, **common)
    run.restore()
    assert run.step == 4 and run.objective.fc.num_local == 6
    run.train(stop=False)
    assert run.step == 8 and json.load(open(tmp_path / "checkpoint.json"))["world_size"] == 1


def _gpus():
    import mxnet as mx

    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:
        return 0


def test_float16_on_the_cpu_is_a_clear_error(tiny_data, tmp_path):
    if _gpus():
        pytest.skip("a GPU is present: float16 is allowed")
    _, config = tiny_data
    with pytest.raises(ValueError, match="dtype='float16' needs a GPU"):
        make_run(config, output=str(tmp_path), dtype="float16")


@pytest.mark.skipif(not _gpus(), reason="float16 training needs a GPU (none here)")
def test_float16_training_on_a_gpu(tiny_data, tmp_path):
    """float16 backbone with float32 master weights: the loss falls like float32's, the
    checkpoint is a float32 model, verification runs, and kill + resume matches."""
    _, config = tiny_data
    common = dict(max_steps=16, lr_steps=[9], save_every=4, keep_checkpoints=1, verify_every=8)
    losses = {}
    for dtype in ("float32", "float16"):
        run = make_run(config, output=str(tmp_path / dtype), dtype=dtype, **common)
        history = []
        step = run.train_step
        run.train_step = lambda batch, step=step, history=history: (
            history.append(step(batch)) or history[-1])
        run.train(stop=False)
        losses[dtype] = [float(loss.asscalar()) for loss, _ in history]
        assert run.precision.skipped <= 4          # the dynamic scale settles within a few steps
    assert np.mean(losses["float16"][-4:]) < 0.8 * np.mean(losses["float16"][:4])
    np.testing.assert_allclose(losses["float16"][:3], losses["float32"][:3], rtol=0.05)
    import mxnet as mx

    saved = mx.nd.load(str(tmp_path / "float16" / "model-0016.params"))
    assert all(v.dtype == np.float32 for v in saved.values())
    state = json.load(open(tmp_path / "float16" / "state-16.json"))
    assert [h["step"] for h in state["history"]] == [8, 16]
    assert state["precision"]["scale"] >= 1
    first = make_run(config, output=str(tmp_path / "resumed"), dtype="float16", **common)
    first.train(stop=StopAt(first, 7))
    second = make_run(config, output=str(tmp_path / "resumed"), dtype="float16", resume=True,
                      **common)
    second.restore()
    second.train(stop=False)
    straight = make_run(config, output=str(tmp_path / "straight16"), dtype="float16", **common)
    straight.train(stop=False)
    (bb_a, fc_a, _), (bb_b, fc_b, _) = weights(straight), weights(second)
    for name in bb_a:
        np.testing.assert_allclose(bb_b[name].astype(np.float32), bb_a[name].astype(np.float32),
                                   rtol=1e-2, atol=1e-3, err_msg=name)
    np.testing.assert_allclose(fc_b, fc_a, rtol=1e-3, atol=1e-4)
