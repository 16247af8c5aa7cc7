"""Where arrays live: the worker's own device, never the default one, never a shared GPU.

No GPU is needed: CPU context 1 is the same memory as CPU context 0 under another name, and
Gluon refuses a parameter used from a context it was not placed on, so a run on `cpu:1`
fails wherever something is left on the default context, as it would on GPU 1.
"""
import json
import os

import mxnet as mx
import pytest

from recognition.config import load_config
from recognition.data.reading.iterator import FaceRecordIter, pinned_device_id
from recognition.data.reading.shared_order import SharedOrderReader
from recognition.errors import ConfigError
from recognition.parallel.distributed import init_workers, worker_device
from recognition.training.run import Run
from tests.support.tiny_faces import tiny_faces, write_config

TINY = dict(network="r_tiny", embedding_size=32, batch_size=8, loss="cosface", margin_s=16.0,
            margin_m2=0.0, margin_m3=0.1, lr=0.05, warmup_steps=0, reference_batch_size=0,
            log_every=4, augment={}, preprocess_threads=1, image_size=[56, 56])


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    out = tiny_faces(str(tmp_path_factory.mktemp("placement")), 6, 6, seed=4)
    return write_config(out, TINY)


def test_train_verify_resume_and_export_on_another_context(tiny_config, tmp_path):
    common = dict(output=str(tmp_path), device="cpu:1", verify_every=4, save_every=4,
                  lr_steps=[10])
    workers = init_workers("cpu:1")
    assert workers.ctx == mx.cpu(1)
    first = Run(load_config(tiny_config, dict(common, max_steps=8)), workers)
    first.restore()
    first.train(stop=False)
    assert all(ctx == [mx.cpu(1)] for ctx in
               (p.list_ctx() for p in first.net.collect_params().values()))
    assert first.objective.fc.weight.context == mx.cpu(1)
    second = Run(load_config(tiny_config, dict(common, max_steps=12, resume=True)), workers)
    second.restore()
    assert second.step == 8
    second.train(stop=False)
    state = json.load(open(tmp_path / "state-12.json"))
    assert [h["step"] for h in state["history"]] == [4, 8, 12]
    sym, args, aux = mx.model.load_checkpoint(str(tmp_path / "model"), 12)  # exported network
    assert args and all(v.context == mx.cpu() for v in args.values())


def test_device_setting():
    assert worker_device("cpu", 0, 1) == mx.cpu()
    assert worker_device("cpu:1", 0, 1) == mx.cpu(1)
    assert worker_device("auto", 0, 2, num_gpus=0) == mx.cpu()
    assert worker_device("auto", 3, 4, num_gpus=4) == mx.gpu(3)
    assert worker_device("gpu", 1, 2, num_gpus=2) == mx.gpu(1)
    for bad in ("gpu:1", "tpu", "cpu:x", "auto:0"):
        with pytest.raises(ConfigError, match="device must be one of"):
            worker_device(bad, 0, 1, num_gpus=1)
    with pytest.raises(ConfigError, match="sees no GPU"):
        worker_device("gpu", 0, 1, num_gpus=0)


def test_more_local_workers_than_gpus_is_refused():
    """Before: worker 2 of 3 on a 2-GPU host was put on GPU 0 beside worker 0."""
    with pytest.raises(ConfigError, match=r"3 workers on host .* 2 GPU\(s\): two workers would "
                                          r"share a GPU"):
        worker_device("auto", 2, 3, num_gpus=2)


def test_config_rejects_an_unknown_device(tiny_config):
    with pytest.raises(ConfigError, match="'device' must be"):
        load_config(tiny_config, {"device": "cuda"})


def test_reader_pins_host_memory_for_the_workers_own_gpu(tiny_config, monkeypatch):
    """ImageRecordIter's device_id defaults to 0: every worker of a node would pin its
    batches for GPU 0 (and open a CUDA context there). The reader is given the worker's."""
    assert pinned_device_id(mx.gpu(3)) == 3
    assert pinned_device_id(mx.cpu()) == -1 and pinned_device_id(mx.cpu(1)) == -1
    made = []
    real = mx.io.ImageRecordIter
    monkeypatch.setattr(mx.io, "ImageRecordIter",
                        lambda **kw: made.append(kw) or real(**dict(kw, device_id=-1)))
    rec = os.path.join(os.path.dirname(tiny_config), "train.rec")
    reader = FaceRecordIter(rec, 4, (3, 56, 56), device=mx.gpu(1))
    assert not made  # MXNet's reader is made when the first epoch starts
    next(iter(reader))
    assert made[-1]["device_id"] == 1


def test_global_order_reader_stages_batches_for_the_workers_own_gpu(tiny_config, monkeypatch):
    """The shared-order reader copies each batch into host memory pinned for the worker's GPU
    (cpu_pinned(1) for gpu(1)), plain memory on a CPU context."""
    made = []
    real = mx.nd.array
    monkeypatch.setattr(mx.nd, "array", lambda *a, ctx=None, **kw: made.append(ctx) or real(
        *a, ctx=mx.cpu() if ctx.device_type == "cpu_pinned" else ctx, **kw))
    rec = os.path.join(os.path.dirname(tiny_config), "train.rec")
    for device, staged in [(mx.gpu(1), mx.Context("cpu_pinned", 1)), (mx.cpu(1), mx.cpu())]:
        made.clear()
        reader = SharedOrderReader(rec, 4, (3, 56, 56), device=device, preprocess_threads=1)
        next(reader)
        reader.close()
        assert made == [staged, staged]  # images and labels
