"""What the training loop does between steps, one small hook per job: log, verify, save.

A hook's `after_step(run, lr)` runs after every step and acts when its period comes round;
`at_end(run, stopped)` runs once when the loop ends (`stopped`: a stop was requested before
`max_steps`). Hooks run in the order given, so a checkpoint saved at a step holds that step's
verification. Work that is not training (verifying, saving) restarts the speed meter, so the
img/s figure counts training time only. A new periodic job is one hook class here plus one
line in :func:`default_hooks`.
"""
import numpy as np

from .monitor import SpeedMeter, format_eta

__all__ = ["LogHook", "PeriodicHook", "VerifyHook", "SaveHook", "default_hooks"]


class LogHook:
    """Every `every` steps and at the last: mean loss, the objective's figures, lr, img/s, ETA."""

    def __init__(self, every, speed):
        self.every, self.speed = every, speed

    def after_step(self, run, lr):
        if run.step % self.every and run.step != run.max_steps:
            return
        mean_loss = float(np.mean(run.losses.take()))
        images_per_s, eta = self.speed.report(run.step)
        fields = [f"step {run.step}/{run.max_steps}", f"epoch {run.epoch}",
                  f"loss {mean_loss:.4f}", run.objective.report(), f"lr {lr:.5g}",
                  f"{images_per_s:.1f} img/s", f"eta {format_eta(eta)}"]
        run.log.info(" ".join(field for field in fields if field))
        run.log.scalars(run.step, loss=mean_loss, lr=lr, speed=images_per_s)

    def at_end(self, run, stopped):
        """Every step was logged as it came."""


class PeriodicHook:
    """Acts every `every` steps (0: never), then restarts the speed meter."""

    def __init__(self, every, speed):
        self.every, self.speed = every, speed

    def after_step(self, run, lr):
        if self.every and run.step % self.every == 0:
            self.act(run)
            self.speed.start(run.step)

    def act(self, run):
        raise NotImplementedError


class VerifyHook(PeriodicHook):
    """Scores the network, and once more at the end unless that step was just scored (a
    stopped run is saved, not scored: its last scores stand)."""

    def act(self, run):
        run.verify()

    def at_end(self, run, stopped):
        if not stopped and self.every and run.step % self.every:
            run.verify()


class SaveHook(PeriodicHook):
    """Saves a checkpoint, and at the end unless the last step is saved already."""

    def act(self, run):
        run.save()

    def at_end(self, run, stopped):
        if run.last_checkpoint != run.step and run.step > 0:  # step 0: nothing trained
            run.save()


def default_hooks(run):
    """Log, then verify, then save, sharing one speed meter started at the run's step."""
    speed = SpeedMeter(run.global_batch, run.max_steps)
    speed.start(run.step)
    cfg = run.cfg
    return [LogHook(cfg.log_every, speed), VerifyHook(cfg.verify_every, speed),
            SaveHook(cfg.save_every, speed)]
