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

import mxnet as mx
from mxnet import nd

from ..errors import DataError, NonFiniteLoss

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


def non_finite_error(what, value, step, last_checkpoint):
    """The NonFiniteLoss for `what` (the loss, the weights) being `value` at `step`."""
    kept = (f"the last good checkpoint (step {last_checkpoint}) is kept"
            if last_checkpoint is not None else "no checkpoint had been written yet")
    return NonFiniteLoss(
        f"{what} became {value} at step {step}; {kept}. Try a lower lr, a warm-up "
        f"(warmup_steps), or Chen and Ding's two stages: pre-train with plain softmax "
        f"(loss='softmax') and fine-tune with ArcFace from that checkpoint "
        f"(pretrained='prefix,epoch').")


def check_finite(loss, step, last_checkpoint):
    if not math.isfinite(loss):
        raise non_finite_error("the loss", loss, step, last_checkpoint)


class LossWindow:
    """The losses since the last log line, read from the device one step late.

    A step's loss is a 1-element NDArray the engine may still be computing. Step t's loss is
    read right after step t+1 has been queued, so the engine always has a step to work on:
    one host read per step, and a NaN stops training one step after it appears. Read with
    it, in the same transfer: how many labels of the step fell outside the classifier
    (counted on the device) and, under Horovod, the workers' stop vote of that step.
    """

    def __init__(self, num_classes=None):
        self.num_classes = num_classes
        self.last_checkpoint = None  # named by the NonFiniteLoss message
        self.stop_voted = False      # a stop vote was read: every worker has read the same
        self._pending, self._values = [], []

    def add(self, step, loss, label_errors=None, stop_vote=None):
        """Queue step `step`'s values and read the previous step's; True once a stop vote
        has been read."""
        parts = [_as_host_scalar(v) for v in (loss, label_errors, stop_vote)]
        self._pending.append((step, nd.concat(*parts, dim=0)))
        while len(self._pending) > 1:
            self._read(*self._pending.pop(0))
        return self.stop_voted

    def check(self, last_checkpoint=None):
        """Read the pending values; NonFiniteLoss at the first non-finite loss."""
        if last_checkpoint is not None:
            self.last_checkpoint = last_checkpoint
        while self._pending:
            self._read(*self._pending.pop(0))

    def take(self, last_checkpoint=None):
        """The losses since the last call (checked), and a fresh window."""
        self.check(last_checkpoint)
        values, self._values = self._values, []
        return values

    def _read(self, step, vector):
        loss, label_errors, stop_vote = (float(v) for v in vector.asnumpy())
        if label_errors > 0:
            raise DataError(
                f"{int(label_errors)} label(s) of the global batch of step {step} are outside "
                f"[0, {self.num_classes}): the data holds more identities than num_classes; "
                f"leave num_classes at None to take it from the .rec")
        check_finite(loss, step, self.last_checkpoint)
        self._values.append(loss)
        self.stop_voted = self.stop_voted or stop_vote > 0


def _as_host_scalar(value):
    """A float, a 1-element NDArray on any device, or None (0) as a (1,) float32 CPU array;
    the copy off the device is queued, not waited for."""
    if value is None:
        return nd.zeros((1,))
    if not isinstance(value, nd.NDArray):
        return nd.array([value])
    return value.reshape((1,)).as_in_context(mx.cpu()).astype("float32", copy=False)
