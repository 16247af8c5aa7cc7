"""What a user watches during training: log lines, speed, ETA, and a clean stop on a signal.

Only rank 0 logs (the `Logger` of other ranks is silent); every rank installs the stop
handler so that all of them reach the same step, save and exit together.
"""
import logging
import math
import os
import signal
import sys
import time

__all__ = ["Logger", "SpeedMeter", "StopRequest", "format_eta", "NonFiniteLoss", "check_finite",
           "non_finite_error", "LossWindow"]


def format_eta(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


class SpeedMeter:
    """Global images/s over the steps since the last report, and the ETA to `max_steps`."""

    def __init__(self, global_batch, max_steps):
        self.global_batch, self.max_steps = global_batch, max_steps
        self._last_time, self._last_step = None, None

    def start(self, step):
        self._last_time, self._last_step = time.perf_counter(), step

    def report(self, step):
        """`(images/s, eta seconds)` since the previous call."""
        now = time.perf_counter()
        steps = step - self._last_step
        elapsed = max(now - self._last_time, 1e-9)
        self._last_time, self._last_step = now, step
        speed = steps * self.global_batch / elapsed
        per_step = elapsed / steps if steps else float("inf")
        return speed, per_step * (self.max_steps - step)


class Logger:
    """Rank-0 log to the terminal and `output/train.log`, optional TensorBoard scalars."""

    def __init__(self, output, rank=0, tensorboard=False):
        self.enabled = rank == 0
        self._log = logging.getLogger(f"recognition.train.{id(self)}")
        self._log.propagate = False
        self._writer = None
        if not self.enabled:
            return
        os.makedirs(output, exist_ok=True)
        self._log.setLevel(logging.INFO)
        fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        for handler in (logging.StreamHandler(sys.stdout),
                        logging.FileHandler(os.path.join(output, "train.log"))):
            handler.setFormatter(fmt)
            self._log.addHandler(handler)
        if tensorboard:
            from tensorboardX import SummaryWriter
            self._writer = SummaryWriter(os.path.join(output, "tensorboard"))

    def info(self, message):
        if self.enabled:
            self._log.info(message)

    def scalars(self, step, **values):
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(name, value, step)

    def close(self):
        for handler in list(self._log.handlers):
            handler.close()
            self._log.removeHandler(handler)
        if self._writer is not None:
            self._writer.close()


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks, so it saves before exiting."""

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame):
        if self.signal_name is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __bool__(self):
        return self.signal_name is not None

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf; training stops after keeping the last good checkpoint."""


def non_finite_error(what, value, step, last_checkpoint):
    """The NonFiniteLoss for `what` (the loss, the weights) being `value` at `step`."""
    kept = (f"the last good checkpoint (step {last_checkpoint}) is kept"
            if last_checkpoint is not None else "no checkpoint had been written yet")
    return NonFiniteLoss(
        f"{what} became {value} at step {step}; {kept}. Try a lower lr, a warm-up "
        f"(warmup_steps), or seed 000's recipe: pre-train with plain softmax (loss='softmax') "
        f"and fine-tune with ArcFace from that checkpoint (pretrained='prefix,epoch').")


def check_finite(loss, step, last_checkpoint):
    if not math.isfinite(loss):
        raise non_finite_error("the loss", loss, step, last_checkpoint)


class LossWindow:
    """The losses since the last log line, read from the device only when needed.

    A step's loss may be a 1-element NDArray still being computed: reading it every step
    would make the loop wait for each step to finish before queueing the next. They are read
    together when the loop logs, saves or verifies; the first non-finite one raises
    NonFiniteLoss naming its step.
    """

    def __init__(self):
        self._pending, self._values = [], []

    def add(self, step, loss):
        self._pending.append((step, loss))

    def check(self, last_checkpoint):
        """Read the pending losses; NonFiniteLoss at the first non-finite one."""
        for step, loss in self._pending:
            value = float(loss.asscalar()) if hasattr(loss, "asscalar") else float(loss)
            check_finite(value, step, last_checkpoint)
            self._values.append(value)
        self._pending = []

    def take(self, last_checkpoint):
        """The losses since the last call (checked), and a fresh window."""
        self.check(last_checkpoint)
        values, self._values = self._values, []
        return values
