"""The training step does not wait on the host: NDArray reads per step, counted.

A host read stalls Python until the engine has caught up, so the next step cannot be queued
while the device works. The loop may read one value per step, the previous step's loss (with
its label check and stop vote), which by then is (nearly) computed; partial FC adds none.
"""
import pytest

from recognition.config import load_config
from recognition.parallel.distributed import init_workers
from recognition.training.host_reads import HostReads
from recognition.training.run import Run
from tests.support.tiny_faces import tiny_faces, write_config

TINY = dict(network="r_tiny", embedding_size=32, batch_size=8, loss="arcface", margin_s=16.0,
            lr=0.05, warmup_steps=0, reference_batch_size=0, augment={}, preprocess_threads=1,
            num_classes=1000, log_every=1000, verify_every=0, save_every=0, image_size=[56, 56])


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    out = tiny_faces(str(tmp_path_factory.mktemp("reads")), 6, 6, seed=3)
    return write_config(out, TINY)


def reads_in_a_run(config, output, steps, **overrides):
    run = Run(load_config(config, dict(overrides, output=str(output), max_steps=steps,
                                       lr_steps=[steps + 1])), init_workers())
    with HostReads() as reads:
        run.train(stop=False)
    return reads.count


@pytest.mark.parametrize("options", [dict(sample_rate=1.0), dict(sample_rate=0.1),
                                     dict(center_loss_weight=0.01)])
def test_at_most_one_host_read_per_step(tiny_config, tmp_path, options):
    """Reads of a 30-step run minus those of a 10-step run: what 20 steps cost (start-up,
    the last log line and the final checkpoint cancel out). Before: 2 per step with the full
    FC (the labels copied back for the FC, then the loss), 3 with partial FC (its sampler),
    4 with center loss (features and labels for the centre update, then the old centres)."""
    short = reads_in_a_run(tiny_config, tmp_path / "short", 10, **options)
    long = reads_in_a_run(tiny_config, tmp_path / "long", 30, **options)
    per_step = (long - short) / 20
    assert per_step <= 1.0, (short, long)


def test_host_reads_are_counted():
    import mxnet as mx

    with HostReads() as reads:
        a = mx.nd.ones((2,))
        a.asnumpy()
        a.sum().asscalar()
        a.wait_to_read()
        mx.nd.waitall()
    assert reads.count == 4
    a.asnumpy()
    assert reads.count == 4
