"""The sharded FC against an independent float64 autograd reference (one process and two
Horovod workers): loss, feature gradient and centre gradient, partial FC, the SGD update."""
import math
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd

from recognition.heads import ParallelFC
from recognition.heads.margin import PRESETS
from recognition.heads.shards import load_shard, merge_shards, shard_path
from recognition.parallel.comm import LocalComm
from tests.support import REPO

WORKER = os.path.join(REPO, "tests", "hvd_scripts", "parallel_fc_worker.py")
MARGINS = ("softmax", "sphereface", "arcface", "cosface", "combined")


def reference(weight, feats, labels, s, m1, m2, m3):
    """Full-FC loss and gradients by MXNet autograd in float64, margin written out directly."""
    w, x = nd.array(weight, dtype="float64"), nd.array(feats, dtype="float64")
    lab = nd.array(labels, dtype="float64")
    w.attach_grad()
    x.attach_grad()
    limit = min(math.pi, (math.pi - m2) / m1)
    shift = m2 * math.sin(m2) if m1 == 1 else 1 + math.cos(limit)
    with autograd.record():
        x_hat = x / nd.norm(x, axis=1, keepdims=True)
        w_hat = w / nd.norm(w, axis=1, keepdims=True)
        cos = nd.dot(x_hat, w_hat, transpose_b=True)
        cos_t = nd.pick(cos, lab, axis=1)
        theta = nd.arccos(cos_t)
        phi = nd.where(theta < limit, nd.cos(theta * m1 + m2) - m3, cos_t - m3 - shift)
        onehot = nd.one_hot(lab, w.shape[0], dtype="float64")
        logits = s * (cos + onehot * (phi - cos_t).reshape(-1, 1))
        loss = -nd.pick(nd.log_softmax(logits, axis=1), lab, axis=1).mean()
    loss.backward()
    return float(loss.asscalar()), x.grad.asnumpy(), w.grad.asnumpy()


def assert_rel(got, ref, rtol=1e-5, what=""):
    """Max abs error relative to the reference's largest magnitude."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
    assert err <= rtol, f"{what}: relative error {err:.2e} > {rtol}"


def make_data(num_classes, n, dim=8, seed=0):
    rng = np.random.RandomState(seed)
    return (rng.randn(num_classes, dim).astype(np.float32),
            rng.randn(n, dim).astype(np.float32), rng.randint(0, num_classes, n))


def local_fc(num_classes, weight, **kw):
    fc = ParallelFC(num_classes, weight.shape[1], comm=LocalComm(), **kw)
    fc.set_full_weight(weight)
    return fc


@pytest.mark.parametrize("margin", MARGINS)
def test_single_process_matches_reference(margin):
    weight, feats, labels = make_data(11, 5)
    fc = local_fc(11, weight, margin=margin)
    loss, feat_grad = fc.forward_backward(nd.array(feats), nd.array(labels))
    ref_loss, ref_x, ref_w = reference(weight, feats, labels, **PRESETS[margin])
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert_rel(feat_grad.asnumpy(), ref_x, what="features")
    assert_rel(fc.weight_grad.asnumpy(), ref_w, what="centres")


def test_backbone_backward_through_feature_grad():
    """features.backward(feat_grad) gives the backbone the full model's gradient."""
    weight, feats, labels = make_data(7, 4, dim=6, seed=1)
    dense = gluon.nn.Dense(6, in_units=6)
    dense.initialize(mx.init.Xavier())
    fc = local_fc(7, weight, margin="cosface", s=16.0)
    with autograd.record():
        emb = dense(nd.array(feats))
    loss, feat_grad = fc.forward_backward(emb, nd.array(labels))
    emb.backward(feat_grad)
    spec = dict(PRESETS["cosface"], s=16.0)
    _, ref_x, _ = reference(weight, dense(nd.array(feats)).asnumpy(), labels, **spec)
    expected = np.dot(ref_x.T, feats)  # d loss / d W_dense for y = x W^T + b
    assert_rel(dense.weight.grad().asnumpy(), expected, rtol=1e-4, what="backbone")


def test_sample_rate_one_equals_full():
    weight, feats, labels = make_data(11, 5)
    outs = []
    for rate in (1.0, None):
        fc = local_fc(11, weight, **({} if rate is None else dict(sample_rate=rate, seed=0)))
        loss, grad = fc.forward_backward(nd.array(feats), nd.array(labels))
        outs.append((loss, grad.asnumpy(), fc.weight_grad.asnumpy(), fc.sampled_index))
    assert outs[0][0] == outs[1][0] and outs[0][3] is None
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    np.testing.assert_array_equal(outs[0][2], outs[1][2])


def test_partial_fc_keeps_positives_and_is_exact_on_its_subset():
    weight, feats, labels = make_data(200, 6, seed=2)
    fc = local_fc(200, weight, sample_rate=0.1, seed=5)
    loss, feat_grad = fc.forward_backward(nd.array(feats), nd.array(labels))
    index = fc.sampled_index
    assert len(index) == 20 and set(labels) <= set(index)
    assert np.all(np.diff(index) > 0)
    sub_labels = np.searchsorted(index, labels)
    ref_loss, ref_x, ref_w = reference(weight[index], feats, sub_labels, **PRESETS["arcface"])
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert_rel(feat_grad.asnumpy(), ref_x, what="features")
    assert_rel(fc.weight_grad.asnumpy(), ref_w, what="sampled centres")


def test_partial_fc_keeps_all_positives_beyond_the_rate():
    weight, feats, labels = make_data(20, 10, seed=3)
    labels = np.arange(10)
    fc = local_fc(20, weight, sample_rate=0.1, seed=0)
    fc.forward_backward(nd.array(feats), nd.array(labels))
    np.testing.assert_array_equal(fc.sampled_index, np.arange(10))


def test_update_is_mxnet_sgd_with_momentum():
    weight, feats, labels = make_data(11, 5, seed=4)
    fc = local_fc(11, weight)
    w, mom = weight.astype(np.float64), np.zeros_like(weight, dtype=np.float64)
    for _ in range(2):
        fc.forward_backward(nd.array(feats), nd.array(labels))
        grad = fc.weight_grad.asnumpy()
        fc.update(lr=0.1, momentum=0.9, wd=5e-4)
        mom = 0.9 * mom - 0.1 * (grad + 5e-4 * w)
        w = w + mom
    np.testing.assert_allclose(fc.weight.asnumpy(), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fc.momentum.asnumpy(), mom, rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError):
        fc.update(lr=0.1)


def test_partial_update_touches_sampled_rows_only():
    weight, feats, labels = make_data(100, 4, seed=6)
    fc = local_fc(100, weight, sample_rate=0.1, seed=1)
    momentum = np.random.RandomState(0).randn(100, 8).astype(np.float32)
    fc.set_full_weight(weight, momentum)
    fc.forward_backward(nd.array(feats), nd.array(labels))
    index, grad = fc.sampled_index, fc.weight_grad.asnumpy()
    fc.update(lr=0.1, momentum=0.9, wd=0.0)
    others = np.setdiff1d(np.arange(100), index)
    np.testing.assert_array_equal(fc.weight.asnumpy()[others], weight[others])
    np.testing.assert_array_equal(fc.momentum.asnumpy()[others], momentum[others])
    new_mom = 0.9 * momentum[index] - 0.1 * grad
    np.testing.assert_allclose(fc.momentum.asnumpy()[index], new_mom, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fc.weight.asnumpy()[index], weight[index] + new_mom,
                               rtol=1e-5, atol=1e-6)


def test_training_the_centres_lowers_the_loss():
    weight, feats, labels = make_data(11, 8, seed=7)
    fc = local_fc(11, weight, margin="arcface", s=8.0)
    losses = []
    for _ in range(15):
        loss, _ = fc.forward_backward(nd.array(feats), nd.array(labels))
        fc.update(lr=1.0, momentum=0.9, wd=0.0)
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]


def test_float16_features_and_bad_inputs():
    weight, feats, labels = make_data(11, 5, seed=8)
    fc = local_fc(11, weight)
    loss16, grad16 = fc.forward_backward(nd.array(feats, dtype="float16"), nd.array(labels))
    loss32, grad32 = fc.forward_backward(nd.array(feats), nd.array(labels))
    assert grad16.dtype == np.float16 and np.isfinite(grad16.asnumpy()).all()
    assert loss16 == pytest.approx(loss32, rel=1e-2)
    with pytest.raises(ValueError, match="labels must be in"):
        fc.forward_backward(nd.array(feats), nd.array([0, 1, 2, 3, 11]))
    with pytest.raises(ValueError, match="features must be"):
        fc.forward_backward(nd.ones((5, 3)), nd.array(labels))
    with pytest.raises(ValueError, match="sample_rate"):
        ParallelFC(11, 8, sample_rate=0.0, comm=LocalComm())


def _check_sampled_run(ranks):
    weight, feats, labels = make_data(201, 5, seed=2)
    classes = np.concatenate([r["sample01_class_start"] + r["sample01_index"] for r in ranks])
    assert [len(r["sample01_index"]) for r in ranks] == [10, 10]
    assert set(labels) <= set(classes), "a positive class was not sampled"
    sub_labels = np.searchsorted(classes, labels)
    loss, ref_x, ref_w = reference(weight[classes], feats, sub_labels, **PRESETS["arcface"])
    for r in ranks:
        assert float(r["sample01_loss"]) == pytest.approx(loss, rel=1e-5)
    assert_rel(np.concatenate([r["sample01_feat_grad"] for r in ranks]), ref_x, what="feat")
    assert_rel(np.concatenate([r["sample01_weight_grad"] for r in ranks]), ref_w, what="w")
    for r in ranks:  # SGD touched the sampled rows only
        start, index = int(r["sample01_class_start"]), r["sample01_index"]
        before = weight[start:start + len(r["sample01_weight_after"])]
        mom = -0.1 * (r["sample01_weight_grad"] + 5e-4 * before[index])
        after, mom_after = r["sample01_weight_after"], r["sample01_momentum_after"]
        np.testing.assert_allclose(mom_after[index], mom, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(after[index], before[index] + mom, rtol=1e-5, atol=1e-7)
        others = np.setdiff1d(np.arange(len(after)), index)
        np.testing.assert_array_equal(after[others], before[others])
        assert not mom_after[others].any()


def test_two_horovod_workers_match_single_process(run_horovod, tmp_path):
    run_horovod([WORKER, str(tmp_path)], np=2)
    ranks = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(2)]
    assert [int(r["arcface_class_start"]) for r in ranks] == [0, 6]
    weight, feats, labels = make_data(11, 5)
    for margin in MARGINS + ("sample1", "fixed"):
        spec = PRESETS["arcface" if margin in ("sample1", "fixed") else margin]
        loss, ref_x, ref_w = reference(weight, feats, labels, **spec)
        for r in ranks:
            assert float(r[f"{margin}_loss"]) == pytest.approx(loss, rel=1e-5), margin
        feat_grad = np.concatenate([r[f"{margin}_feat_grad"] for r in ranks])
        assert_rel(feat_grad, ref_x, what=f"{margin} features")
        weight_grad = np.concatenate([r[f"{margin}_weight_grad"] for r in ranks])
        assert_rel(weight_grad, ref_w, what=f"{margin} centres")
    _check_sampled_run(ranks)
    dense = np.random.RandomState(9).randn(8, 8) * 0.3  # backbone_step's Dense weight
    _, ref_x, _ = reference(weight, feats @ dense.T, labels, **dict(PRESETS["arcface"], s=8.0))
    for r in ranks:
        assert_rel(r["backbone_weight_after"], dense - 0.1 * ref_x.T @ feats, what="backbone")
    assert str(ranks[0]["bad_input_error"]) == "bad features or labels on another worker"
    assert str(ranks[1]["bad_input_error"]).startswith("labels must be in [0, 11)")
    merged = merge_shards([load_shard(shard_path(str(tmp_path / "fc"), r, 2)) for r in (0, 1)])
    np.testing.assert_array_equal(merged.weight, weight)


def _draws(fc, labels, trials):
    """Sets of local rows the device sampler picks for `labels`, `trials` times."""
    y = nd.array(labels, dtype="int32")
    held = (y >= 0) * (y < fc.num_local)
    capacity = fc._sample_capacity(len(labels))
    draws = []
    for _ in range(trials):
        index, valid = fc._sample(y, held, capacity)
        used = int(valid.sum().asscalar())
        draws.append(index[:used].asnumpy())
    return capacity, draws


def test_device_sampler_draws_what_the_host_sampler_did():
    """Before, a NumPy sampler on the host kept every positive and drew the other
    max(round(rate * C), P) - P rows uniformly without replacement. The device sampler (random
    scores, positives lifted, top-k) must give the same distribution: positives always, that
    many rows, each negative with probability k / (C - P), and pairs of negatives together
    with probability k (k - 1) / ((C - P)(C - P - 1)), as a uniform subset does."""
    mx.random.seed(11)
    num_classes, rate, trials = 40, 0.25, 3000
    fc = ParallelFC(num_classes, 4, sample_rate=rate, seed=0)
    labels = np.array([3, 17, 17, 30, 3, 8])            # 4 positives among 6 rows
    capacity, draws = _draws(fc, labels, trials)
    positives = np.unique(labels)
    negatives = np.setdiff1d(np.arange(num_classes), positives)
    k = int(round(rate * num_classes)) - positives.size  # 6 negatives of 36
    assert capacity == 10
    hits = np.zeros(num_classes)
    together = np.zeros((negatives.size, negatives.size))
    for rows in draws:
        assert rows.size == k + positives.size and np.all(np.diff(rows) > 0)
        assert set(positives) <= set(rows)
        hits[rows] += 1
        drawn = np.isin(negatives, rows).astype(float)
        together += np.outer(drawn, drawn)
    p = k / negatives.size
    freq = hits[negatives] / trials
    sigma = math.sqrt(p * (1 - p) / trials)
    assert np.all(np.abs(freq - p) < 5 * sigma), (freq, p)
    assert abs(freq.mean() - p) < 5 * sigma / math.sqrt(negatives.size)
    pair_p = k * (k - 1) / (negatives.size * (negatives.size - 1))
    pair_freq = together[np.triu_indices(negatives.size, 1)] / trials
    pair_sigma = math.sqrt(pair_p * (1 - pair_p) / trials)
    assert np.all(np.abs(pair_freq - pair_p) < 5 * pair_sigma), (pair_freq.min(),
                                                                  pair_freq.max(), pair_p)
    # a uniform subset: every negative equally likely (chi-square, 35 dof, p ~ 1e-4 bound)
    chi2 = np.sum((hits[negatives] - trials * p) ** 2 / (trials * p * (1 - p)))
    assert chi2 < 70, chi2


def test_more_positives_than_the_rate_keeps_them_all_and_nothing_else():
    mx.random.seed(12)
    fc = ParallelFC(50, 4, sample_rate=0.1, seed=0)     # round(0.1 * 50) = 5 < 8 positives
    labels = np.array([1, 4, 9, 16, 25, 36, 49, 2])
    _, draws = _draws(fc, labels, 20)
    for rows in draws:
        np.testing.assert_array_equal(rows, np.sort(labels))


def test_padding_rows_are_neither_scored_nor_updated():
    """With a batch larger than the sampled rows the device gathers `batch` rows and ignores
    the ones past what the step uses: the loss, gradients and update are those of the rows
    the step uses (reference: the same step on that subset)."""
    mx.random.seed(13)
    weight, feats, labels = make_data(60, 12, seed=8)
    labels = np.array([5, 5, 7, 7, 9, 9, 5, 7, 9, 5, 7, 9])   # 3 positives, 6 rows wanted
    momentum = np.random.RandomState(1).randn(60, 8).astype(np.float32)
    fc = local_fc(60, weight, sample_rate=0.1, seed=0)
    fc.set_full_weight(weight, momentum)
    loss, feat_grad = fc.forward_backward_async(nd.array(feats), labels, [12])
    index = fc.sampled_index
    assert fc._sample_capacity(12) == 12 and len(index) == 6 and {5, 7, 9} <= set(index)
    sub_labels = np.searchsorted(index, labels)
    ref_loss, ref_x, ref_w = reference(weight[index], feats, sub_labels, **PRESETS["arcface"])
    assert float(loss.asscalar()) == pytest.approx(ref_loss, rel=1e-5)
    assert_rel(feat_grad.asnumpy(), ref_x, what="features")
    grad = fc.weight_grad.asnumpy()
    assert_rel(grad[:6], ref_w, what="sampled centres")
    assert np.all(grad[6:] == 0)
    fc.update(lr=0.1, momentum=0.9, wd=5e-4)
    others = np.setdiff1d(np.arange(60), index)
    np.testing.assert_array_equal(fc.weight.asnumpy()[others], weight[others])
    np.testing.assert_array_equal(fc.momentum.asnumpy()[others], momentum[others])
    new_mom = 0.9 * momentum[index] - 0.1 * (grad[:6] + 5e-4 * weight[index])
    np.testing.assert_allclose(fc.momentum.asnumpy()[index], new_mom, rtol=1e-5, atol=1e-6)


def test_out_of_range_labels_are_counted_on_the_device():
    weight, feats, _ = make_data(11, 4, seed=9)
    fc = local_fc(11, weight)
    fc.forward_backward_async(nd.array(feats), np.array([0, 11, -1, 10]), [4])
    assert fc.label_errors.asscalar() == 2
