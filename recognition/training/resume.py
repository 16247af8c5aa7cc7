"""The checkpoint side of a run: saving with its guards, resuming, and what a resume must check.

Saving refuses NaN/inf weights and writes float32 files with the BatchNorm statistics averaged
over workers. Resuming picks the last complete checkpoint of the run folder, refuses to replace
a run that was not asked to resume, restores the data position only for the same worker count,
and asks for the classifier to be re-cut when the count changed. A fresh run may start from a
pretrained backbone instead.
"""
import os

from ..errors import DataError, UserError
from ..model_spec import params_path, parse_prefix_epoch, require_file
from .checkpoint import Checkpointer
from .network import load_exported_params, materialize

__all__ = ["RunCheckpoints"]


class RunCheckpoints:
    """Saves and restores a `Run` (its network, trainer, classifier shards and state)."""

    def __init__(self, cfg, workers, log):
        self.cfg, self.workers, self.log = cfg, workers, log
        self.files = Checkpointer(cfg.output, workers.rank, workers.size, workers.any_flag,
                                  cfg.keep_checkpoints)

    def save(self, run):
        """Every worker calls it: BatchNorm statistics are averaged first."""
        run.sync_running_stats()
        run.check_weights_finite()
        with run.precision.float32(run.net, run.input_shape) as net:  # float32 checkpoints
            self.files.save(run.step, net, run.trainer, run.objective.save, run.state())
        run.last_checkpoint = run.step
        self.log.info(f"checkpoint step {run.step} saved in {self.cfg.output}")

    def save_best(self, net, step):
        self.files.save_best(net, step)

    def restore(self, run):
        """Resume from the last complete checkpoint of the run folder, if asked to."""
        latest = self.files.latest()
        if latest is not None and not self.cfg.resume:
            raise UserError(
                f"{self.cfg.output} already holds a run (checkpoint step {latest[0]}); continue "
                f"it with --resume true, or choose another --output (a fresh run there would "
                f"replace its checkpoints)")
        if latest is None:
            if self.cfg.resume:
                self.log.info(f"resume: no checkpoint in {self.cfg.output}, starting afresh")
            return self._load_pretrained(run)
        step, state, saved_world = latest
        load_exported_params(run.net, self.files.network_params(step), self.workers.ctx)
        materialize(run.net, self.cfg.image_size, self.workers.ctx,  # the trainer needs shapes
                    run.precision.dtype)
        run.trainer.load_states(self.files.trainer_states(step))
        self._check_world_size(run, step, saved_world)
        run.objective.load(self.files.shard_prefix(step))
        run.step, run.epoch = step, state["epoch"]
        # the data parts depend on the worker count: another count restarts the epoch
        run.batch_in_epoch = state["batch_in_epoch"] if saved_world == self.workers.size else 0
        run.history, run.best = state["history"], state["best"]
        run.precision.load_state(state.get("precision"))
        run.last_checkpoint = step
        self.log.info(f"resumed from step {step} (lr {run.schedule(step):g})")

    def _check_world_size(self, run, step, saved_world):
        """Another worker count needs the classifier re-cut for it (tools/shards.py split)."""
        if saved_world == self.workers.size or not run.objective.has_shards:
            return
        if not os.path.isfile(self.files.shard_path(step)):
            prefix = self.files.shard_prefix(step)
            raise DataError(
                f"{self.cfg.output}: checkpoint {step} was written by {saved_world} workers, this "
                f"run has {self.workers.size}; re-cut its classifier first: python "
                f"tools/shards.py split {prefix}-rank*of{saved_world}.params "
                f"--world-size {self.workers.size} --prefix {prefix}")
        self.log.info(f"resuming a {saved_world}-worker checkpoint on {self.workers.size} "
                      f"workers with the re-cut classifier")

    def _load_pretrained(self, run):
        if not self.cfg.pretrained:
            return
        path = require_file(params_path(*parse_prefix_epoch(self.cfg.pretrained, "pretrained")),
                            "pretrained backbone not found (pretrained='prefix,epoch')")
        count = load_exported_params(run.net, path, self.workers.ctx)
        self.log.info(f"fine-tuning from {path} ({count} tensors), fresh classifier")
