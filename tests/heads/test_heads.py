"""Margin formulas and the sharded FC's loss against direct NumPy, center loss, attribute loss."""
import math

import numpy as np
import pytest
from mxnet import autograd, nd

from recognition.heads import AttributeLoss, CenterLoss, ParallelFC, margin_spec
from recognition.heads.margin import PRESETS, target_logit, target_logit_grad
from recognition.parallel.comm import LocalComm

# cos values from theta = 0 to theta = pi, dense near both ends.
# float32 values, so the NumPy reference sees exactly the input the float32 code sees.
COS = np.concatenate([[1.0, 0.999999, 0.9999], np.linspace(0.99, -0.99, 199),
                      [-0.9999, -0.999999, -1.0]]).astype(np.float32).astype(np.float64)


def numpy_target(cos, m1, m2, m3, easy=False):
    """cos(m1*theta + m2) - m3, with InsightFace's fallback past theta + m = pi."""
    theta = np.arccos(np.clip(cos, -1, 1))
    margin = np.cos(m1 * theta + m2) - m3
    if easy:
        return np.where(cos > 0, margin, cos - m3)
    limit = min(math.pi, (math.pi - m2) / m1)
    shift = m2 * math.sin(m2) if m1 == 1 else 1 + math.cos(limit)
    return np.where(theta < limit, margin, cos - m3 - shift)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_target_logit_matches_numpy_and_is_monotonic(name):
    spec = margin_spec(name)
    got = target_logit(nd.array(COS), spec).asnumpy()
    want = numpy_target(COS, spec.m1, spec.m2, spec.m3)
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert np.all(np.diff(got) <= 1e-6), "target logit must decrease as theta grows"


def test_arcface_near_pi_uses_the_insightface_fallback():
    spec = margin_spec("arcface")
    cos = np.array([-0.9999, -0.999999, -1.0, math.cos(math.pi - 0.5) - 1e-4])
    got = target_logit(nd.array(cos), spec).asnumpy()
    np.testing.assert_allclose(got, cos - 0.5 * math.sin(0.5), atol=1e-6)
    just_inside = math.cos(math.pi - 0.5) + 1e-3
    value = target_logit(nd.array([just_inside]), spec).asnumpy()[0]
    assert value == pytest.approx(math.cos(math.acos(just_inside) + 0.5), abs=1e-5)


def test_easy_margin_and_overrides():
    spec = margin_spec("arcface", easy_margin=True, m2=0.4, s=30.0)
    assert (spec.s, spec.m2, spec.easy_margin) == (30.0, 0.4, True)
    got = target_logit(nd.array(COS), spec).asnumpy()
    np.testing.assert_allclose(got, numpy_target(COS, 1.0, 0.4, 0.0, easy=True), atol=2e-6)


@pytest.mark.parametrize("name", ["sphereface", "arcface", "cosface", "combined"])
def test_target_logit_grad_matches_finite_differences(name):
    spec = margin_spec(name)
    cos = np.linspace(-0.95, 0.95, 39)
    limit = math.cos(spec.theta_limit)
    cos = cos[np.abs(cos - limit) > 1e-2]  # away from the branch point
    h = 1e-6
    numeric = (numpy_target(cos + h, spec.m1, spec.m2, spec.m3)
               - numpy_target(cos - h, spec.m1, spec.m2, spec.m3)) / (2 * h)
    got = target_logit_grad(nd.array(cos, dtype="float64"), spec).asnumpy()
    np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-5)


def test_gradient_is_finite_at_theta_zero_and_pi():
    for name in PRESETS:
        grad = target_logit_grad(nd.array([1.0, -1.0]), margin_spec(name)).asnumpy()
        assert np.isfinite(grad).all(), name
    # sin(m1*theta)/sin(theta) -> m1 as theta -> 0, so d/dcos -> m1**2 for SphereFace.
    spec = margin_spec("sphereface")
    assert target_logit_grad(nd.array([1.0]), spec).asnumpy()[0] == pytest.approx(1.35 ** 2)


def test_float16_input_is_clipped_and_computed_in_float32():
    spec = margin_spec("combined")
    cos16 = nd.array([1.0009765625, -1.0009765625, 0.5, -0.999], dtype="float16")
    got = target_logit(cos16, spec)
    assert got.dtype == np.float32 and np.isfinite(got.asnumpy()).all()
    want = numpy_target(np.clip(cos16.asnumpy().astype(np.float64), -1, 1), 1.0, 0.3, 0.2)
    np.testing.assert_allclose(got.asnumpy(), want, atol=1e-6)


def test_margin_spec_rejects_bad_values():
    with pytest.raises(ValueError, match="valid: arcface"):
        margin_spec("nope")
    for bad in (dict(s=0.0), dict(m1=0.5), dict(m2=-0.1), dict(m2=4.0), dict(m3=-1.0)):
        with pytest.raises(ValueError):
            margin_spec("arcface", **bad)


def numpy_margin_loss(feats, weight, labels, s, m1, m2, m3):
    """Mean softmax CE of the logits s*cos, with s*(cos(m1*theta + m2) - m3) on each row's
    target class only (float64)."""
    x_hat = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    w_hat = weight / np.linalg.norm(weight, axis=1, keepdims=True)
    cos = x_hat @ w_hat.T
    rows = np.arange(len(labels))
    logits = s * cos
    logits[rows, labels] = s * numpy_target(cos[rows, labels], m1, m2, m3)
    logits -= logits.max(axis=1, keepdims=True)
    log_prob = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_prob[rows, labels].mean()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_parallel_fc_matches_numpy_margin_logits(name):
    """The training classifier: loss and feature gradient of the NumPy margin logits."""
    rng = np.random.RandomState(0)
    feats, labels = rng.randn(4, 6).astype(np.float32), np.array([0, 2, 4, 2])
    weight = rng.randn(5, 6).astype(np.float32)
    fc = ParallelFC(5, 6, margin=name, comm=LocalComm())
    fc.set_full_weight(weight)
    loss, feat_grad = fc.forward_backward(nd.array(feats), nd.array(labels))
    x, w = feats.astype(np.float64), weight.astype(np.float64)
    assert loss == pytest.approx(numpy_margin_loss(x, w, labels, **PRESETS[name]), rel=1e-5)
    h, numeric = 1e-6, np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = h
        numeric[index] = (numpy_margin_loss(x + step, w, labels, **PRESETS[name])
                          - numpy_margin_loss(x - step, w, labels, **PRESETS[name])) / (2 * h)
    np.testing.assert_allclose(feat_grad.asnumpy(), numeric, rtol=1e-3,
                               atol=1e-4 * np.abs(numeric).max())
    assert fc.weight_grad.shape == (5, 6)


def test_center_loss_value_gradient_and_moving_average():
    loss_fn = CenterLoss(3, 2, alpha=0.9, loss_weight=0.5)
    loss_fn.initialize()
    centers = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, -2.0]], np.float32)
    loss_fn.centers.set_data(nd.array(centers))
    feats = np.array([[1.0, 0.0], [3.0, 1.0], [1.0, 3.0]], np.float32)
    labels = np.array([0, 1, 1])
    x = nd.array(feats)
    x.attach_grad()
    with autograd.record():
        loss = loss_fn(x, nd.array(labels))
    loss.backward()
    diff = feats - centers[labels]
    np.testing.assert_allclose(loss.asnumpy(), 0.25 * (diff ** 2).sum(1), rtol=1e-6)
    np.testing.assert_allclose(x.grad.asnumpy(), 0.5 * diff, rtol=1e-6)
    loss_fn.update_centers(nd.array(feats), nd.array(labels))
    want = centers.copy()
    want[0] -= 0.1 * (centers[0] - feats[0])
    want[1] -= 0.1 * (centers[1] - feats[1:].mean(0))
    np.testing.assert_allclose(loss_fn.centers.data().asnumpy(), want, rtol=1e-6)


def test_center_update_on_the_device_equals_numpy_with_repeated_classes():
    """A global batch of 64 over 10 classes (most repeated), float32 on the device against
    the float64 per-class NumPy reference."""
    rng = np.random.default_rng(4)
    loss_fn = CenterLoss(12, 8, alpha=0.6, loss_weight=1.0)
    loss_fn.initialize()
    centers = rng.normal(size=(12, 8)).astype(np.float32)
    loss_fn.centers.set_data(nd.array(centers))
    feats = rng.normal(size=(64, 8)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    loss_fn.update_centers(nd.array(feats), nd.array(labels))
    want = centers.astype(np.float64)
    for c in np.unique(labels):
        want[c] -= 0.4 * (want[c] - feats[labels == c].astype(np.float64).mean(0))
    np.testing.assert_allclose(loss_fn.centers.data().asnumpy(), want, rtol=1e-5,
                               atol=1e-6 * np.abs(want).max())


def test_attribute_loss_is_the_weighted_sum_of_task_cross_entropies():
    labels = nd.array([[0, 7], [1, 3]])
    logits = (nd.array([[0.0, 1.0], [2.0, 0.0]]), nd.zeros((2, 8)))
    want = np.array([-np.log(np.exp(0) / (1 + np.e)), -np.log(1 / (1 + np.exp(2)))]) \
        + 0.5 * np.log(8)
    np.testing.assert_allclose(AttributeLoss((1.0, 0.5))(logits, labels).asnumpy(), want,
                               rtol=1e-5)
