"""Work of one classifier step and a time model for it, calibrated on the machine at hand.

One sharded-FC step (forward_backward + update, heads/parallel_fc.py) on worker 0, with
K = the rows it uses (c, or k sampled) and N the global batch:

- streaming passes over the K x D centres: row norms (1 read), the centre gradient's first
  pass (1 read + 1 write), the SGD update (3 reads + 2 writes): ``STREAM_PASSES`` = 8;
- three GEMMs: logits x^W^T and feature gradient dcos.W (each reads the centres once) and the
  centre gradient dcos^T.x^ (reads and writes it): 4 passes, or 2*N*K*D flops each when that
  takes longer (large N);
- about ``LOGIT_PASSES`` element-wise passes over N x K float32 arrays, each into fresh memory
  (cosines, clip, margin, max, exp, sum, softmax and margin gradients, scaling);
- partial FC: the gather of the sampled weight and momentum rows and their scatter back
  (``GATHER_PASSES`` over k x D), and on the host c random keys drawn and partitioned;
- under Horovod ``COLLECTIVES`` collectives (latency each: features, labels, softmax max,
  sum and loss, feature gradient; training fixes the row counts, so none asks for them) and
  the step's bytes over the link.

:func:`calibrate` measures the rate of each kind of work with the same MXNet operators on
calibration arrays, on every worker at once (so shared memory bandwidth and cores count), and
:func:`predict_seconds` adds the parts up. It is a first-order model: right for the order of
magnitude and for ratios (full vs partial FC, W workers vs 1), not for the last 10 %.

On a GPU nothing here has been calibrated or run. :func:`gemm_seconds` gives the one figure
that needs no calibration: the three GEMMs' flops at a stated peak rate, a lower bound on
the classifier's compute time (``GPU_FP32_TFLOPS``: the H100 SXM5's dense float32 peak).
"""
import time
from collections import namedtuple

import numpy as np

__all__ = ["FcWork", "Calibration", "fc_work", "gemm_seconds", "predict_seconds", "calibrate",
           "STREAM_PASSES", "GEMM_PASSES", "GATHER_PASSES", "LOGIT_PASSES", "COLLECTIVES",
           "GPU_FP32_TFLOPS"]

STREAM_PASSES = 8    # row norms 1, centre gradient 2, SGD update 5 (reads + writes)
GEMM_PASSES = 4      # logits 1, feature gradient 1, centre gradient 2
GATHER_PASSES = 8    # partial FC: take + scatter of weight and momentum rows (read + write)
LOGIT_PASSES = 36    # element-wise reads + writes of N x K float32 arrays
COLLECTIVES = 6      # features, labels, max, sum, loss, feature gradient
# NVIDIA H100 SXM5 float32 peak without tensor cores (dense), TFLOP/s, from NVIDIA's H100
# Tensor Core GPU datasheet (the PCIe card: 51; TF32 tensor cores: 495 dense).
GPU_FP32_TFLOPS = 67.0

FcWork = namedtuple("FcWork", "stream_bytes gemm_bytes gemm_flops gather_bytes logit_bytes "
                              "sampled_keys collectives bytes flops")
Calibration = namedtuple("Calibration", "stream gemm_memory gemm_flops gather logits "
                                        "sample_cost latency link")


def fc_work(setup):
    """:class:`FcWork` of one classifier step on worker 0 (bytes moved in memory, flops).

    ``flops`` counts the three GEMMs only, 2*N*K*D each (a multiply-add is 2 flops): logits,
    feature gradient, centre gradient. The element-wise softmax work (a few tens of flops per
    N x K element) and the row norms are left out: under 2 % of it at D = 512.
    """
    d, n, k = setup.embedding_size, setup.global_batch, setup.logit_columns
    sampled = setup.sampled_rows is not None
    rows = k * d * 4
    stream, gemm, flops = STREAM_PASSES * rows, GEMM_PASSES * rows, 3 * 2 * n * k * d
    gather = GATHER_PASSES * rows if sampled else 0
    logits = LOGIT_PASSES * n * k * 4
    return FcWork(stream, gemm, flops, gather, logits, setup.num_local if sampled else 0,
                  COLLECTIVES if setup.workers > 1 else 0, stream + gemm + gather + logits,
                  flops)


def gemm_seconds(setup, tflops=GPU_FP32_TFLOPS):
    """Seconds of the classifier's GEMMs at ``tflops`` TFLOP/s: a lower bound (peak rate,
    nothing else of the step counted)."""
    return fc_work(setup).gemm_flops / (tflops * 1e12)


def predict_seconds(setup, cal, traffic_bytes=0.0):
    """Seconds of one classifier step from :func:`fc_work` and a :class:`Calibration`."""
    work = fc_work(setup)
    gemm = max(work.gemm_bytes / cal.gemm_memory, work.gemm_flops / cal.gemm_flops)
    seconds = (work.stream_bytes / cal.stream + gemm + work.gather_bytes / cal.gather
               + work.logit_bytes / cal.logits + work.sampled_keys * cal.sample_cost
               + work.collectives * cal.latency)
    return seconds + (traffic_bytes / cal.link if cal.link else 0.0)


def _timed(fn, sync, repeats=5):
    """Median seconds of ``fn`` over ``repeats`` runs after one warm-up; ``sync()`` before
    each run lines the workers up, so that every run competes with the others as a training
    step does (a best-of would pick a moment when the others were idle)."""
    fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _rates(rows, dim, sync):
    """Bytes/s of the streaming, GEMM-memory, gather and fresh element-wise kinds of work, and
    flop/s of a compute-bound GEMM, on ``rows x dim`` float32 calibration arrays."""
    from mxnet import nd

    w, g, m = (nd.random.normal(shape=(rows, dim)) for _ in range(3))
    x, s = nd.random.normal(shape=(8, dim)), nd.random.normal(shape=(8, rows))
    ones = nd.ones((rows, 1))
    size = rows * dim * 4

    def stream():
        nd.batch_dot(w.reshape((rows, 1, dim)), w.reshape((rows, dim, 1))).wait_to_read()
        nd.broadcast_mul(w, ones, out=g).wait_to_read()
        nd.sgd_mom_update(w, g, m, out=w, lr=1e-3, momentum=0.9, wd=0.0).wait_to_read()

    def gemm():
        nd.dot(x, w, transpose_b=True).wait_to_read()
        nd.dot(s, w).wait_to_read()
        nd.linalg.gemm(s, x, g, transpose_a=True, beta=1.0, out=g).wait_to_read()

    index = nd.array(np.arange(0, rows, 10), dtype="int64")
    part = nd.empty((index.shape[0], dim))

    def gather():
        nd.take(w, index, out=part).wait_to_read()
        w[index] = part
        w.wait_to_read()

    def fresh():
        (w * 0.5).wait_to_read()

    a, b = nd.ones((1024, dim)), nd.ones((dim, 4096))
    flops = 2 * 1024 * dim * 4096 / _timed(lambda: nd.dot(a, b).wait_to_read(), sync)
    gathered = 4 * index.shape[0] * dim * 4
    return (STREAM_PASSES * size / _timed(stream, sync), GEMM_PASSES * size / _timed(gemm, sync),
            flops, gathered / _timed(gather, sync), 2 * size / _timed(fresh, sync))


def calibrate(comm=None, rows=65536, dim=512):
    """A :class:`Calibration` of this worker: rates of each kind of FC work (on ``rows x dim``
    float32 arrays, 128 MiB by default), the host's cost per sampled key (s) and, under
    Horovod, the latency of a tiny all-reduce (s) and the all-reduce throughput (bytes/s).
    Every worker must call it: it runs collectives, and figures measured with all workers
    busy are each worker's share of the machine."""
    from mxnet import nd

    def sync():
        if comm is not None and comm.size > 1:
            comm.allreduce(nd.zeros((1,)), name="cal.sync").wait_to_read()

    stream, gemm_memory, gemm_flops, gather, logits = _rates(rows, dim, sync)
    rng, keys_n = np.random.RandomState(0), 1 << 20

    def sample():
        keys = rng.random_sample(keys_n)
        np.sort(np.argpartition(-keys, keys_n // 10)[:keys_n // 10])

    sample_cost = _timed(sample, sync) / keys_n
    latency, link = 0.0, 0.0
    if comm is not None and comm.size > 1:
        tiny, big = nd.ones((8,)), nd.ones((2 ** 20,))
        latency = _timed(lambda: comm.allreduce(tiny, name="cal.tiny").wait_to_read(), sync, 5)
        secs = _timed(lambda: comm.allreduce(big, name="cal.big").wait_to_read(), sync)
        link = 2 * (comm.size - 1) / comm.size * big.size * 4 / max(secs - latency, 1e-9)
    return Calibration(stream, gemm_memory, gemm_flops, gather, logits, sample_cost, latency,
                       link)
