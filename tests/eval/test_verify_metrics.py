"""The verification protocol: hand-made distances with known answers, and equality with a
straightforward loop-over-thresholds NumPy re-computation of the published protocol."""
import numpy as np
import pytest
from sklearn.model_selection import KFold

from recognition.eval import metrics


def _reference(emb, issame, nfolds=10, far_target=1e-3):
    """The published protocol written plainly: one threshold at a time, boolean masks."""
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    dist = np.sum((emb[0::2] - emb[1::2]) ** 2, 1)
    folds = list(KFold(n_splits=nfolds, shuffle=False).split(np.arange(len(dist))))

    def rates(th, d, same):
        pred = d < th
        tp, fp = np.sum(pred & same), np.sum(pred & ~same)
        tn, fn = np.sum(~pred & ~same), np.sum(~pred & same)
        return (tp + tn) / d.size, fp / (fp + tn)

    acc, best, val = [], [], []
    th_acc, th_val = np.arange(0, 4, 0.01), np.arange(0, 4, 0.001)
    for train, test in folds:
        train_acc = [rates(t, dist[train], issame[train])[0] for t in th_acc]
        best.append(th_acc[np.argmax(train_acc)])
        acc.append(rates(best[-1], dist[test], issame[test])[0])
        far_train = np.array([rates(t, dist[train], issame[train])[1] for t in th_val])
        # np.interp: the published SciPy 'slinear' call, which SciPy >= 1.12 refuses on repeats
        th = np.interp(far_target, far_train, th_val) if far_train.max() >= far_target else 0.0
        pred = dist[test] < th
        val.append(np.sum(pred & issame[test]) / np.sum(issame[test]))
    return np.array(acc), np.array(best), np.array(val), dist


def test_separable_distances_give_perfect_accuracy_and_first_separating_threshold():
    dist = np.r_[np.full(10, 0.5), np.full(10, 1.5)][np.argsort(np.tile([0, 1], 10))]
    issame = dist < 1.0
    res = metrics.accuracy_kfold(dist, issame, nfolds=5)
    np.testing.assert_array_equal(res["accuracy"], np.ones(5))
    np.testing.assert_allclose(res["thresholds"], 0.51)  # first grid value above 0.5


def test_one_wrong_genuine_pair_costs_its_fold_a_tenth():
    dist = np.where(np.arange(20) % 2 == 0, 0.4, 1.2)
    issame = np.arange(20) % 2 == 0
    dist[4] = 3.0  # a genuine pair far apart, in the first fold
    res = metrics.accuracy_kfold(dist, issame, nfolds=2)
    np.testing.assert_allclose(res["accuracy"], [0.9, 1.0])
    np.testing.assert_allclose(res["thresholds"], [0.41, 0.41])
    assert np.mean(res["accuracy"]) == pytest.approx(0.95)
    assert np.std(res["accuracy"]) == pytest.approx(0.05)


def test_val_is_one_when_every_genuine_distance_is_below_every_impostor():
    rng = np.random.default_rng(1)
    dist = np.r_[rng.uniform(0.1, 0.9, 1000), rng.uniform(1.0, 3.0, 1000)]
    issame = np.r_[np.ones(1000, bool), np.zeros(1000, bool)]
    order = rng.permutation(2000)
    val, far = metrics.val_at_far(dist[order], issame[order], 1e-3, nfolds=10)
    np.testing.assert_array_equal(val, np.ones(10))
    assert far.mean() < 3e-3  # each test fold holds ~100 impostors: one accepted is 1e-2


@pytest.mark.parametrize("noise", [0.6, 1.0])
def test_protocol_equals_plain_numpy_recomputation(noise):
    rng = np.random.default_rng(7)
    n, dim = 600, 32
    a = rng.normal(size=(n, dim))
    issame = rng.random(n) < 0.5
    b = np.where(issame[:, None], a + noise * rng.normal(size=(n, dim)), rng.normal(size=(n, dim)))
    emb = np.empty((2 * n, dim))
    emb[0::2], emb[1::2] = a, b
    acc, best, val, dist = _reference(emb, issame)
    res = metrics.evaluate_embeddings(emb, issame, nfolds=10)
    np.testing.assert_allclose(res["dist"], dist, rtol=1e-12)
    np.testing.assert_array_equal(res["fold_acc"], acc)
    np.testing.assert_array_equal(res["fold_thresholds"], best)
    assert res["acc"] == np.mean(acc) and res["acc_std"] == np.std(acc)
    assert res["val"] == np.mean(val) and res["val_std"] == np.std(val)
    assert 0.5 < res["acc"] < 1.0  # neither trivial nor chance: the comparison means something


def test_bad_shapes_and_folds_are_clear_errors():
    with pytest.raises(ValueError, match="2 \\* pairs"):
        metrics.pair_distances(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="nfolds"):
        metrics.accuracy_kfold(np.zeros(4), np.zeros(4, bool), nfolds=5)
    with pytest.raises(ValueError, match="labels"):
        metrics.evaluate_embeddings(np.ones((8, 2)), np.zeros(3, bool), nfolds=2)


def test_roc_and_pr_curves_match_sklearn_on_negated_distance():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    issame = rng.random(200) < 0.5
    dist = np.where(issame, rng.uniform(0, 2, 200), rng.uniform(1, 3, 200))
    curves = metrics.roc_pr_curves(dist, issame)
    assert curves["roc_auc"] == pytest.approx(roc_auc_score(issame, -dist))
    assert 0.5 < curves["pr_auc"] <= 1.0
