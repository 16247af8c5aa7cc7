"""Verification figures as PNG (matplotlib's Agg canvas: no display, no pyplot state).

The ROC is drawn as face verification reads it (IJB-B/C papers, InsightFace): TAR on a linear
axis against FAR on a log axis from the smallest FAR the impostor pairs can resolve up to 1,
with dots marking TAR at the reported FAR levels; one curve per model on a figure per target.
Pair sets also get a precision-recall figure and a genuine vs impostor distance histogram.
"""
import os
from typing import NamedTuple, Optional

import numpy as np

from .metrics import FAR_LEVELS, resolvable_fars, tar_table

__all__ = ["Roc", "Pr", "Hist", "PlotData", "roc_data", "lowest_far", "roc_figure", "pr_figure",
           "histogram_figure", "write_plots", "safe_name"]


class Roc(NamedTuple):
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float
    negatives: int
    tar_at_far: dict  # {"1e-03": TAR} at the FAR levels the negatives resolve


class Pr(NamedTuple):
    recall: np.ndarray
    precision: np.ndarray
    auc: float


class Hist(NamedTuple):
    dist: np.ndarray
    labels: np.ndarray
    threshold: Optional[float]


class PlotData(NamedTuple):
    """What a target can draw for one model; None where a figure does not apply."""

    roc: Optional[Roc] = None
    pr: Optional[Pr] = None
    hist: Optional[Hist] = None


def roc_data(fpr, tpr, auc, negatives):
    """A `Roc` whose marks are `metrics.tar_table` at the resolvable FAR levels."""
    return Roc(np.asarray(fpr), np.asarray(tpr), auc, int(negatives),
               tar_table(fpr, tpr, resolvable_fars(negatives)))


def lowest_far(negatives):
    """The FAR axis' lower limit: one accepted impostor pair, but not below 1e-6."""
    return max(FAR_LEVELS[0], 1.0 / negatives) if negatives else FAR_LEVELS[0]


def safe_name(text):
    """A file-name fragment from a model or target name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _axes():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def roc_figure(curves, title):
    """curves: [(label, Roc)] -> a Figure, FAR on a log axis, TAR marked at the FAR levels."""
    fig, ax = _axes()
    low = lowest_far(min(roc.negatives for _, roc in curves))
    for label, roc in curves:
        (line,) = ax.plot(np.maximum(roc.fpr, low), roc.tpr, label=f"{label} (AUC {roc.auc:.4f})")
        fars = [float(level) for level in roc.tar_at_far]
        tars = list(roc.tar_at_far.values())
        ax.plot(fars, tars, "o", color=line.get_color(), markersize=4, clip_on=False)
        for far, tar in zip(fars, tars):
            ax.annotate(f"{100 * tar:.2f}", (far, tar), textcoords="offset points",
                        xytext=(2, -9), fontsize=6, color=line.get_color())
    ax.set_xscale("log")
    ax.set(xlim=(low, 1), ylim=(0, 1.02), xlabel="false accept rate (FAR)",
           ylabel="true accept rate (TAR)", title=title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    return fig


def pr_figure(curves, title):
    """curves: [(label, Pr)] -> a Figure."""
    fig, ax = _axes()
    for label, pr in curves:
        ax.plot(pr.recall, pr.precision, label=f"{label} (AUC {pr.auc:.4f})")
    ax.set(xlabel="recall", ylabel="precision", title=title, ylim=(0, 1.02))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=7)
    return fig


def histogram_figure(hist, title):
    """Genuine vs impostor squared distances, with the chosen threshold as a line."""
    fig, ax = _axes()
    dist, same = np.asarray(hist.dist), np.asarray(hist.labels, dtype=bool)
    bins = np.linspace(0, max(4.0, float(dist.max()) if dist.size else 4.0), 81)
    ax.hist(dist[same], bins=bins, alpha=0.6, label="genuine", color="tab:green")
    ax.hist(dist[~same], bins=bins, alpha=0.6, label="impostor", color="tab:red")
    if hist.threshold is not None:
        ax.axvline(hist.threshold, color="k", linestyle="--",
                   label=f"threshold {hist.threshold:.2f}")
    ax.set(xlabel="squared L2 distance", ylabel="pairs", title=title)
    ax.legend(fontsize=7)
    return fig


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def write_plots(target, rows, plot_dir):
    """rows: [(model label, PlotData or None)] for one target; the PNG paths written (a
    histogram per model, then the ROC and precision-recall figures overlaying every model)."""
    rows = [(label, data) for label, data in rows if data is not None]
    written = []
    for label, data in rows:
        if data.hist is not None:
            name = f"{target}_{safe_name(label)}_hist.png"
            written.append(_save(histogram_figure(data.hist, f"{target} {label}"),
                                 os.path.join(plot_dir, name)))
    for kind, build in (("roc", roc_figure), ("pr", pr_figure)):
        curves = [(label, getattr(data, kind)) for label, data in rows
                  if getattr(data, kind) is not None]
        if curves:
            written.append(_save(build(curves, f"{target} {kind.upper()}"),
                                 os.path.join(plot_dir, f"{target}_{kind}.png")))
    return written
