"""Verification figures as PNG (matplotlib's Agg canvas: no display, no pyplot state).

The ROC is drawn as face verification reads it (IJB-B/C papers, InsightFace): TAR on a linear
axis against FAR on a log axis from the smallest FAR the impostor pairs can resolve up to 1,
with dots marking TAR at the reported FAR levels; one curve per model on a figure per target.
The TAR axis is zoomed to the data (a little below the lowest TAR drawn, up to 1) so that
models at 99 % are told apart, and the marks' values are a table under the plot.
Pair sets also get a precision-recall figure and a genuine vs impostor distance histogram.
"""
import os
from typing import NamedTuple, Optional

import numpy as np

from .metrics import FAR_LEVELS, resolvable_fars, tar_table

__all__ = ["Roc", "Pr", "Hist", "PlotData", "roc_data", "lowest_far", "tar_limits", "roc_figure", "pr_figure",
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
    fig = _figure((5, 4))
    return fig, fig.add_subplot()


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _tar_at(roc, far):
    """The highest TAR the curve reaches at a FAR of at most `far`."""
    fpr, tpr = np.asarray(roc.fpr), np.asarray(roc.tpr)
    inside = fpr <= far
    return float(tpr[inside].max()) if inside.any() else float(tpr.min())


def tar_limits(curves, low):
    """`(lower, 1.0)`: the TAR axis zoomed to the data, as the IJB papers draw it. `lower` sits
    a little (8 % of the range shown, at least 0.002) below the lowest TAR drawn at the plotted
    FARs: each curve's TAR at the axis' left edge `low` and its marks."""
    lowest = min(min([_tar_at(roc, low)] + list(roc.tar_at_far.values())) for _, roc in curves)
    lowest = min(max(lowest, 0.0), 1.0)
    return max(0.0, lowest - max(0.08 * (1.0 - lowest), 0.002)), 1.0


def roc_figure(curves, title):
    """curves: [(label, Roc)] -> a Figure, FAR on a log axis, TAR on an axis zoomed to the
    curves (`tar_limits`), TAR marked with dots at the FAR levels and listed in a table under
    the plot (a row per model in its curve's colour, a column per FAR level)."""
    fars = sorted({far for _, roc in curves for far in roc.tar_at_far}, key=float)
    table_height = 0.25 * (len(curves) + 1) if fars else 0.0
    fig = _figure((5, 4 + table_height))
    grid = fig.add_gridspec(2, 1, height_ratios=[4, table_height]) if fars else None
    ax = fig.add_subplot(grid[0]) if fars else fig.add_subplot()
    low = lowest_far(min(roc.negatives for _, roc in curves))
    colors = []
    for label, roc in curves:
        (line,) = ax.plot(np.maximum(roc.fpr, low), roc.tpr, label=f"{label} (AUC {roc.auc:.4f})")
        colors.append(line.get_color())
        ax.plot([float(far) for far in roc.tar_at_far], list(roc.tar_at_far.values()), "o",
                color=line.get_color(), markersize=4, clip_on=False)
    ax.set_xscale("log")
    ax.set(xlim=(low, 1), ylim=tar_limits(curves, low), xlabel="false accept rate (FAR)",
           ylabel="true accept rate (TAR)", title=title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    if fars:
        _tar_table(fig.add_subplot(grid[1]), curves, fars, colors)
    return fig


def _tar_table(ax, curves, fars, colors):
    """TAR (%) at each FAR level, a row per model: the marks' values, each in a cell of its
    own (labels on the curves would print over each other when models are close)."""
    ax.axis("off")
    cells = [[label] + [f"{100 * roc.tar_at_far[far]:.2f}" if far in roc.tar_at_far else "-"
                        for far in fars] for label, roc in curves]
    first = min(0.5, max(0.2, 0.014 * max(len(label) for label, _ in curves)))
    table = ax.table(cellText=cells, colLabels=["model"] + [f"FAR {far}" for far in fars],
                     colWidths=[first] + [(1 - first) / len(fars)] * len(fars),
                     cellLoc="center", edges="horizontal", bbox=[0, 0, 1, 1])
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    for (row, _col), cell in table.get_celld().items():
        if row > 0:
            cell.get_text().set_color(colors[row - 1])
    ax.set_title("TAR (%) at FAR", fontsize=7, loc="left")


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
