"""Verification figures as PNG (matplotlib, Agg backend: no display needed).

ROC and precision-recall curves as in seed 003, one curve per model on a figure per target, and
a histogram of genuine vs impostor distances per model and target.
"""
import os

import numpy as np

__all__ = ["plot_roc", "plot_pr", "plot_histogram", "safe_name"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def safe_name(text):
    """A file-name fragment from a model or target name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_roc(curves, path, title, log_far=False):
    """curves: [(label, fpr, tpr, auc)]. `log_far` for IJB-style low-FAR axes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for label, fpr, tpr, area in curves:
        keep = fpr > 0 if log_far else slice(None)
        ax.plot(np.asarray(fpr)[keep], np.asarray(tpr)[keep], label=f"{label} (AUC {area:.4f})")
    if log_far:
        ax.set_xscale("log")
        ax.set_xlim(1e-6, 1)
    else:
        ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    ax.set(xlabel="false positive rate (FAR)", ylabel="true positive rate (TAR)", title=title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_pr(curves, path, title):
    """curves: [(label, recall, precision, auc)]."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for label, recall, precision, area in curves:
        ax.plot(recall, precision, label=f"{label} (AUC {area:.4f})")
    ax.set(xlabel="recall", ylabel="precision", title=title, ylim=(0, 1.02))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=7)
    out = _save(fig, path)
    plt.close(fig)
    return out


def plot_histogram(dist, issame, path, title, threshold=None):
    """Genuine vs impostor squared distances, with the chosen threshold as a line."""
    plt = _pyplot()
    dist, issame = np.asarray(dist), np.asarray(issame, dtype=bool)
    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(0, max(4.0, float(dist.max()) if dist.size else 4.0), 81)
    ax.hist(dist[issame], bins=bins, alpha=0.6, label="genuine", color="tab:green")
    ax.hist(dist[~issame], bins=bins, alpha=0.6, label="impostor", color="tab:red")
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set(xlabel="squared L2 distance", ylabel="pairs", title=title)
    ax.legend(fontsize=7)
    out = _save(fig, path)
    plt.close(fig)
    return out
