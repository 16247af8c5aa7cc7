"""Loss, lr, img/s and held-out accuracy of training runs, read from `train.log` (the
`face-plot-run` figure; its command line is `recognition.commands.plot_run`).

`parse_log` reads the lines `recognition/train.py` writes through `monitor.Logger`
(`YYYY-MM-DD HH:MM:SS message`):

- `step 5/8 epoch 0 loss 4.3937 lr 0.05 72.3 img/s eta 00:00:00` (attribute networks add
  `acc[1] 0.812 acc[2] 0.455` before `lr`: training accuracy of each output);
- `step 4 verification: lfw 99.30% +- 0.20, ijbc TAR@FAR=1e-04 95.10%` (or, for attribute
  networks, `gender 93.10%, age_group 71.20% (1-off 92.40%)`);
- `N worker(s), ...`: a session starts (the log is appended to by every start of the run);
- `resumed from step N (lr ...)`: the session continues from checkpoint N, so the lines after
  step N of the earlier session (trained again now) are dropped; a step lower than one already
  read (a fresh start after a crash before the first checkpoint) drops them too.

Wall-clock time is the time spent in sessions since the first one began; the time a run was
stopped between two sessions is not counted. Anything else (config dump, checkpoints) is
skipped. TensorBoard is not needed.
"""
import math
import os
import re
from datetime import datetime

import numpy as np

from ..errors import DataError

__all__ = ["RunLog", "parse_log", "log_path", "run_figure"]

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)$")
_SESSION = re.compile(r"^\d+ worker\(s\), ")
_RESUMED = re.compile(r"^resumed from step (\d+)\b")
_AFRESH = re.compile(r"^resume: no checkpoint in .*, starting afresh")
_STEP = re.compile(r"^step (\d+)/(\d+) epoch (\d+) (.*)$")
_VERIFY = re.compile(r"^step (\d+) verification: (.*)$")
_SCORE = re.compile(r"^(.*?)\s+(-?\d+(?:\.\d*)?|nan|inf)%")
_NUMBER = r"(-?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf))"
_FIELDS = {"loss": re.compile(r"\bloss " + _NUMBER), "lr": re.compile(r"\blr " + _NUMBER),
           "speed": re.compile(_NUMBER + r" img/s")}
_ACC = re.compile(r"\bacc\[(\d+)\] " + _NUMBER)


class RunLog:
    """The series of one run. `train`: one dict per step line (`step`, `seconds`, `epoch`,
    `loss`, `lr`, `speed`, `acc` {output: training accuracy}); `verify`: one dict per
    verification line (`step`, `seconds`, `scores` {name: accuracy as a fraction})."""

    def __init__(self, name, path):
        self.name, self.path = name, path
        self.train, self.verify = [], []
        self.max_steps = None

    def _column(self, rows, key):
        return np.array([row[key] for row in rows], dtype=float)

    @property
    def steps(self):
        return self._column(self.train, "step").astype(int)

    @property
    def seconds(self):
        return self._column(self.train, "seconds")

    @property
    def losses(self):
        return self._column(self.train, "loss")

    @property
    def lrs(self):
        return self._column(self.train, "lr")

    @property
    def speeds(self):
        return self._column(self.train, "speed")

    @property
    def train_accuracy(self):
        """`{output: array over steps}` of attribute networks (NaN where a line lacks it)."""
        names = sorted({i for row in self.train for i in row["acc"]})
        return {i: np.array([row["acc"].get(i, math.nan) for row in self.train])
                for i in names}

    @property
    def verify_steps(self):
        return self._column(self.verify, "step").astype(int)

    @property
    def verify_seconds(self):
        return self._column(self.verify, "seconds")

    @property
    def accuracy(self):
        """`{score name: array over verify_steps}` (fractions; NaN where a line lacks it)."""
        names = list(dict.fromkeys(n for row in self.verify for n in row["scores"]))
        return {n: np.array([row["scores"].get(n, math.nan) for row in self.verify])
                for n in names}

    def _drop_from(self, step):
        """Forget the points at `step` and later (trained again by a later session)."""
        self.train = [row for row in self.train if row["step"] < step]
        self.verify = [row for row in self.verify if row["step"] < step]


def _float(text):
    return float(text) if text is not None else math.nan


def _field(pattern, text):
    match = pattern.search(text)
    return _float(match.group(1)) if match else math.nan


def _scores(text):
    scores = {}
    for part in text.split(", "):
        match = _SCORE.match(part.strip())
        if match:
            scores[match.group(1)] = float(match.group(2)) / 100
    return scores


def log_path(run):
    """The `train.log` of a run folder (or the path itself when it is a file)."""
    path = run if os.path.isfile(run) else os.path.join(run, "train.log")
    if not os.path.isfile(path):
        raise DataError(f"{path}: no train.log here (a run folder of recognition/train.py "
                        f"holds one)")
    return path


def parse_log(path, name=None):
    """Read a `train.log` into a `RunLog` (see the module docstring for the lines read)."""
    run = RunLog(name or os.path.basename(os.path.dirname(os.path.abspath(path))), path)
    done, session_start, last = 0.0, None, None  # seconds of finished sessions
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    for line in lines:
        match = _LINE.match(line.rstrip("\n"))
        if not match:
            continue  # a continuation line (the config dump) or foreign text
        when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        message = match.group(2)
        if session_start is None:
            session_start = when
        elif _SESSION.match(message):
            done += last - session_start
            session_start = when
        last = when
        seconds = done + when - session_start
        if _AFRESH.match(message):
            run._drop_from(1)
        elif (resumed := _RESUMED.match(message)):
            run._drop_from(int(resumed.group(1)) + 1)
        elif (step := _STEP.match(message)):
            number, rest = int(step.group(1)), step.group(4)
            if run.train and run.train[-1]["step"] >= number:
                run._drop_from(number)
            run.max_steps = int(step.group(2))
            run.train.append({
                "step": number, "seconds": seconds, "epoch": int(step.group(3)),
                **{key: _field(pattern, rest) for key, pattern in _FIELDS.items()},
                "acc": {int(i): float(v) for i, v in _ACC.findall(rest)}})
        elif (verify := _VERIFY.match(message)):
            number = int(verify.group(1))
            if run.verify and run.verify[-1]["step"] >= number:
                run.verify = [row for row in run.verify if row["step"] < number]
            run.verify.append({"step": number, "seconds": seconds,
                               "scores": _scores(verify.group(2))})
    if not run.train:
        raise DataError(f"{path}: no training step lines ('... step N/M epoch E loss ...'); "
                        f"is it a train.log of recognition/train.py?")
    return run


def _time_unit(seconds):
    top = max(seconds) if seconds else 0
    if top <= 300:
        return 1.0, "s"
    if top <= 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


_STYLES = ["-", "--", ":", "-."]


def run_figure(runs):
    """`[RunLog]` -> a Figure: rows loss, lr, img/s, held-out accuracy; columns against step
    and against wall-clock time; one colour per run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 12))
    FigureCanvasAgg(fig)
    axes = fig.subplots(4, 2)
    scale, unit = _time_unit([s for r in runs for s in list(r.seconds) + list(r.verify_seconds)])
    colors = [f"C{i % 10}" for i in range(len(runs))]
    accuracy_drawn = False
    for run, color in zip(runs, colors):
        for col, x in ((0, run.steps), (1, run.seconds / scale)):
            axes[0, col].plot(x, run.losses, color=color, label=run.name)
            axes[1, col].plot(x, run.lrs, color=color, drawstyle="steps-pre")
            axes[2, col].plot(x, run.speeds, color=color)
            for n, (output, acc) in enumerate(run.train_accuracy.items()):
                axes[3, col].plot(x, 100 * acc, color=color, alpha=0.5, linewidth=1,
                                  linestyle=_STYLES[n % len(_STYLES)],
                                  label=f"{run.name} train acc[{output}]")
                accuracy_drawn = True
        for n, (score, acc) in enumerate(run.accuracy.items()):
            for col, x in ((0, run.verify_steps), (1, run.verify_seconds / scale)):
                axes[3, col].plot(x, 100 * acc, color=color, marker="o", markersize=3,
                                  linestyle=_STYLES[n % len(_STYLES)],
                                  label=f"{run.name} {score}")
            accuracy_drawn = True
    for row, what in enumerate(("loss", "lr", "img/s", "accuracy (%)")):
        for col, xlabel in enumerate(("step", f"wall-clock time ({unit})")):
            ax = axes[row, col]
            ax.set(xlabel=xlabel, ylabel=what)
            ax.grid(True, alpha=0.3)
    lrs = np.concatenate([r.lrs for r in runs])
    lrs = lrs[np.isfinite(lrs)]
    if lrs.size and lrs.min() > 0 and lrs.max() / lrs.min() >= 10:
        for ax in axes[1]:
            ax.set_yscale("log")
    if accuracy_drawn:
        axes[3, 0].legend(fontsize=7, loc="lower right")
    else:
        for ax in axes[3]:
            ax.text(0.5, 0.5, "no verification lines", ha="center", va="center",
                    transform=ax.transAxes, color="0.5")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(runs), 4), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig
