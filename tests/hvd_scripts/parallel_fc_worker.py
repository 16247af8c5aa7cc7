"""Run by tests/heads/test_parallel_fc.py under `horovodrun -np 2`: one process, every check.

Each rank builds the same seeded data, keeps its rows of the batch (rank r gets BATCH[r] rows)
and its slice of the classes, runs the sharded FC and writes OUTDIR/rank{r}.npz; the test then
compares them with a single-process reference.
"""
import os
import sys

import horovod.mxnet as hvd
import numpy as np
import mxnet as mx
from mxnet import autograd, gluon, nd

from recognition.heads.parallel_fc import ParallelFC
from recognition.parallel.comm import HorovodComm

MARGINS = ("softmax", "sphereface", "arcface", "cosface", "combined")
BATCH = (3, 2)  # uneven on purpose
DIM = 8


def data(num_classes, seed):
    """The same full classifier, global batch and labels on every rank."""
    rng = np.random.RandomState(seed)
    weight = rng.randn(num_classes, DIM).astype(np.float32)
    feats = rng.randn(sum(BATCH), DIM).astype(np.float32)
    labels = rng.randint(0, num_classes, sum(BATCH))
    return weight, feats, labels


def local_rows(rank):
    start = sum(BATCH[:rank])
    return slice(start, start + BATCH[rank])


def run_step(fc, feats, labels, rank, out, key, counts=None):
    """One step; with `counts` the training loop's path (rows per worker known: no host wait,
    features and labels gathered by an all-reduce)."""
    rows = local_rows(rank)
    if counts is None:
        loss, feat_grad = fc.forward_backward(nd.array(feats[rows]), nd.array(labels[rows]))
    else:
        loss, feat_grad = fc.forward_backward_async(nd.array(feats[rows]), labels[rows], counts)
        loss = loss.asscalar()
    out[f"{key}_loss"] = np.float64(loss)
    out[f"{key}_feat_grad"] = feat_grad.asnumpy()
    out[f"{key}_weight_grad"] = fc.weight_grad.asnumpy()
    out[f"{key}_class_start"] = np.int64(fc.class_start)
    index = fc.sampled_index
    out[f"{key}_index"] = np.arange(fc.num_local) if index is None else index


def main(outdir):
    hvd.init()
    comm = HorovodComm()
    rank, out = comm.rank, {}
    weight, feats, labels = data(11, seed=0)
    for margin in MARGINS:
        fc = ParallelFC(11, DIM, margin=margin, comm=comm)
        fc.set_full_weight(weight)
        run_step(fc, feats, labels, rank, out, margin)
    fc = ParallelFC(11, DIM, margin="arcface", comm=comm)
    fc.set_full_weight(weight)
    run_step(fc, feats, labels, rank, out, "fixed", counts=list(BATCH))
    fc = ParallelFC(11, DIM, margin="arcface", comm=comm, sample_rate=1.0, seed=1)
    fc.set_full_weight(weight)
    run_step(fc, feats, labels, rank, out, "sample1")
    fc.save(os.path.join(outdir, "fc"))

    big_weight, big_feats, big_labels = data(201, seed=2)
    fc = ParallelFC(201, DIM, margin="arcface", comm=comm, sample_rate=0.1, seed=3)
    fc.set_full_weight(big_weight)
    run_step(fc, big_feats, big_labels, rank, out, "sample01")
    fc.update(lr=0.1, momentum=0.9, wd=5e-4)
    out["sample01_weight_after"] = fc.weight.asnumpy()
    out["sample01_momentum_after"] = fc.momentum.asnumpy()
    out["backbone_weight_after"] = backbone_step(comm, weight, feats, labels)
    out["bad_input_error"] = np.array(bad_input_error(comm, weight, feats))
    np.savez(os.path.join(outdir, f"rank{rank}.npz"), **out)


def bad_input_error(comm, weight, feats):
    """Rank 1 passes an out-of-range label: both ranks must raise instead of hanging."""
    fc = ParallelFC(11, DIM, comm=comm)
    rows = local_rows(comm.rank)
    labels = np.full(BATCH[comm.rank], 11 if comm.rank == 1 else 0)
    try:
        fc.forward_backward(nd.array(feats[rows]), nd.array(labels))
    except ValueError as err:
        return str(err)
    return "no error"


def backbone_step(comm, weight, feats, labels):
    """The documented loop: DistributedTrainer.step(1/W) gives the single-process update."""
    net = gluon.nn.Dense(DIM, in_units=DIM)
    net.initialize(mx.init.Zero())
    net.weight.set_data(nd.array(np.random.RandomState(9).randn(DIM, DIM) * 0.3))
    trainer = hvd.DistributedTrainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    fc = ParallelFC(11, DIM, margin="arcface", comm=comm, s=8.0)
    fc.set_full_weight(weight)
    rows = local_rows(comm.rank)
    with autograd.record():
        emb = net(nd.array(feats[rows]))
    _, feat_grad = fc.forward_backward(emb, nd.array(labels[rows]))
    emb.backward(feat_grad)
    trainer.step(1.0 / comm.size)
    return net.weight.data().asnumpy()


if __name__ == "__main__":
    main(sys.argv[1])
