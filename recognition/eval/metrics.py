"""Pair-verification metrics with the protocol of InsightFace's published evaluation.

One implementation used by `tools/verify.py` and by training. For the same embeddings it gives
the same numbers as the published code: squared Euclidean distance of L2-normalised embeddings,
K folds in file order (no shuffle), the accuracy threshold picked on the training folds from
`np.arange(0, 4, 0.01)`, VAL@FAR with its threshold interpolated on the training folds' FAR
curve over `np.arange(0, 4, 0.001)`. The published code interpolates with SciPy's
`interp1d(far, thresholds, kind='slinear')`, which SciPy >= 1.12 refuses because the FAR curve
repeats values; `_interp_threshold` computes what older SciPy returned (the segment between
the last point with FAR <= target and the next one). Counts for every threshold come from one
`searchsorted` per fold instead of a Python loop over thresholds: 6,000 pairs take milliseconds.
TAR at fixed FARs (IJB-B/C's table, the marks on every ROC figure) reads sklearn's ROC as
InsightFace's IJB evaluation does.
"""
import numpy as np
from sklearn.model_selection import KFold

__all__ = ["ACC_THRESHOLDS", "VAL_THRESHOLDS", "l2_normalize", "pair_distances", "fold_splits",
           "accuracy_kfold", "val_at_far", "evaluate_embeddings", "verification_report",
           "roc_pr_curves", "FAR_LEVELS", "resolvable_fars", "tar_table", "tar_at_far"]

ACC_THRESHOLDS = np.arange(0, 4, 0.01)
VAL_THRESHOLDS = np.arange(0, 4, 0.001)
FAR_LEVELS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def l2_normalize(x):
    """Rows scaled to unit L2 norm in float64 (zero rows stay zero, like sklearn's normalize)."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    norm[norm == 0] = 1.0
    return x / norm[:, None]


def pair_distances(embeddings):
    """Squared Euclidean distance of rows 2i and 2i+1 (the `.bin` pair order)."""
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2 or len(emb) % 2:
        raise ValueError(f"embeddings must be (2 * pairs, dim), got shape {emb.shape}")
    diff = emb[0::2] - emb[1::2]
    return np.einsum("ij,ij->i", diff, diff)


def fold_splits(n, nfolds):
    """(train, test) index arrays: KFold in file order; one fold means train = test = all."""
    if nfolds < 1 or nfolds > n:
        raise ValueError(f"nfolds must be in 1..{n} for {n} pairs, got {nfolds}")
    if nfolds == 1:
        idx = np.arange(n)
        return [(idx, idx)]
    return list(KFold(n_splits=nfolds, shuffle=False).split(np.arange(n)))


def _counts_below(dist, issame, thresholds):
    """Genuine and impostor counts with distance < each threshold (prediction 'same')."""
    gen = np.sort(dist[issame])
    imp = np.sort(dist[~issame])
    return (np.searchsorted(gen, thresholds, side="left"),
            np.searchsorted(imp, thresholds, side="left"), len(gen), len(imp))


def _acc_rates(dist, issame, thresholds):
    """Accuracy, TPR and FPR at each threshold (0 where a rate has an empty denominator)."""
    tp, fp, n_gen, n_imp = _counts_below(dist, issame, thresholds)
    tn = n_imp - fp
    acc = (tp + tn) / dist.size
    tpr = tp / n_gen if n_gen else np.zeros(len(thresholds))
    fpr = fp / n_imp if n_imp else np.zeros(len(thresholds))
    return acc, tpr, fpr


def accuracy_kfold(dist, issame, nfolds=10, thresholds=ACC_THRESHOLDS):
    """Per-fold test accuracy at the threshold best on the other folds, plus the mean ROC.

    Returns dict(accuracy (folds,), thresholds (folds,), tpr, fpr (mean over test folds)).
    """
    dist = np.asarray(dist, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    splits = fold_splits(len(dist), nfolds)
    acc = np.zeros(len(splits))
    best = np.zeros(len(splits))
    tprs = np.zeros((len(splits), len(thresholds)))
    fprs = np.zeros((len(splits), len(thresholds)))
    for k, (train, test) in enumerate(splits):
        acc_train, _, _ = _acc_rates(dist[train], issame[train], thresholds)
        i = int(np.argmax(acc_train))
        test_acc, tprs[k], fprs[k] = _acc_rates(dist[test], issame[test], thresholds)
        acc[k], best[k] = test_acc[i], thresholds[i]
    return {"accuracy": acc, "thresholds": best, "tpr": tprs.mean(0), "fpr": fprs.mean(0)}


def _val_far(dist, issame, threshold):
    """Validation rate and false accept rate at one threshold."""
    same = dist < threshold
    n_gen, n_imp = int(issame.sum()), int((~issame).sum())
    val = np.logical_and(same, issame).sum() / n_gen if n_gen else 0.0
    far = np.logical_and(same, ~issame).sum() / n_imp if n_imp else 0.0
    return float(val), float(far)


def _interp_threshold(far, thresholds, target):
    """Threshold where the nondecreasing FAR curve reaches `target`, linearly interpolated."""
    i = int(np.searchsorted(far, target, side="right")) - 1
    if i + 1 >= len(far) or far[i] == target:
        return float(thresholds[i])
    slope = (thresholds[i + 1] - thresholds[i]) / (far[i + 1] - far[i])
    return float(thresholds[i] + (target - far[i]) * slope)


def val_at_far(dist, issame, far_target=1e-3, nfolds=10, thresholds=VAL_THRESHOLDS):
    """VAL per fold at the threshold whose training-fold FAR interpolates to `far_target`.

    As published: linear interpolation of threshold against training FAR; threshold 0 when the
    training FAR never reaches the target. Returns (val, far) arrays.
    """
    dist = np.asarray(dist, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    splits = fold_splits(len(dist), nfolds)
    val, far = np.zeros(len(splits)), np.zeros(len(splits))
    for k, (train, test) in enumerate(splits):
        _, fp, _, n_imp = _counts_below(dist[train], issame[train], thresholds)
        far_train = fp / n_imp if n_imp else np.zeros(len(thresholds))
        if np.max(far_train) >= far_target:
            threshold = _interp_threshold(far_train, thresholds, far_target)
        else:
            threshold = 0.0
        val[k], far[k] = _val_far(dist[test], issame[test], threshold)
    return val, far


def evaluate_embeddings(emb, issame, nfolds=10, far_target=1e-3):
    """The full protocol on (2 * pairs, dim) embeddings; they are L2-normalised here.

    Returns a JSON-ready dict: acc/acc_std, threshold (mean of fold thresholds), val/val_std,
    far, and the distances (under key `dist`, a NumPy array, for plots).
    """
    issame = np.asarray(issame, dtype=bool)
    dist = pair_distances(l2_normalize(emb))
    if len(dist) != len(issame):
        raise ValueError(f"{len(dist)} pairs of embeddings but {len(issame)} labels")
    roc = accuracy_kfold(dist, issame, nfolds)
    val, far = val_at_far(dist, issame, far_target, nfolds)
    return {"acc": float(np.mean(roc["accuracy"])), "acc_std": float(np.std(roc["accuracy"])),
            "fold_acc": roc["accuracy"].tolist(), "threshold": float(np.mean(roc["thresholds"])),
            "fold_thresholds": roc["thresholds"].tolist(), "val": float(np.mean(val)),
            "val_std": float(np.std(val)), "far": float(np.mean(far)),
            "far_target": far_target, "dist": dist}


def verification_report(plain, flipped, issame, nfolds=10, far_target=1e-3):
    """What `face-verify` reports from raw embeddings of the images and of their mirrors.

    The protocol's numbers use plain + flipped (or plain alone when `flipped` is None);
    `acc_noflip` uses plain alone; `xnorm` is the mean norm of the raw embeddings.
    """
    plain = np.asarray(plain, dtype=np.float64)  # summed in float64, as published
    both = plain + flipped if flipped is not None else plain
    res = evaluate_embeddings(both, issame, nfolds, far_target)
    noflip = evaluate_embeddings(plain, issame, nfolds, far_target)
    norms = [np.linalg.norm(e, axis=1) for e in (plain, flipped) if e is not None]
    res.update(acc_noflip=noflip["acc"], acc_noflip_std=noflip["acc_std"],
               xnorm=float(np.mean(np.concatenate(norms))))
    return res


def roc_pr_curves(dist, issame):
    """ROC and precision-recall curves with a smaller distance meaning 'same' (sklearn)."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    score = -np.asarray(dist, dtype=np.float64)
    fpr, tpr, _ = roc_curve(issame, score)
    precision, recall, _ = precision_recall_curve(issame, score)
    return {"fpr": fpr, "tpr": tpr, "roc_auc": float(auc(fpr, tpr)),
            "precision": precision, "recall": recall, "pr_auc": float(auc(recall, precision))}


def resolvable_fars(negatives, levels=FAR_LEVELS):
    """The FAR levels that `negatives` impostor pairs can measure (at least one accepted)."""
    return [far for far in levels if far * negatives >= 1]


def tar_table(fpr, tpr, fars=FAR_LEVELS):
    """`{"1e-04": TAR}`: TAR at the ROC point whose FAR is nearest each level (highest TAR
    among ties)."""
    rev_fpr, rev_tpr = np.asarray(fpr)[::-1], np.asarray(tpr)[::-1]
    return {f"{far:.0e}": float(rev_tpr[int(np.argmin(np.abs(rev_fpr - far)))]) for far in fars}


def tar_at_far(labels, scores, fars=FAR_LEVELS):
    """TAR at each FAR level (a larger score meaning 'same'), plus the ROC and its AUC."""
    from sklearn.metrics import auc, roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    return {"tar_at_far": tar_table(fpr, tpr, fars), "fpr": fpr, "tpr": tpr,
            "auc": float(auc(fpr, tpr))}
