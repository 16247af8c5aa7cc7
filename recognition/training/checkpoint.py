"""Rank-safe, atomic checkpoints that a run can resume from.

A checkpoint at step N in the run folder is:
- `model-symbol.json` + `model-%04d.params` (N): the embedding network, MXNet's own format
  (`mx.model.load_checkpoint('model', N)`), written by rank 0;
- `trainer-N.states` (backbone optimizer state, rank 0), `state-N.json` (step, config, history);
- `fc-N-rank{r}of{W}.params`: each worker's classifier shard, written by that worker;
- `checkpoint.json`: the pointer to the last complete checkpoint, replaced by rank 0 only after
  every worker has written its part. Each file is written to a temporary name and renamed, so a
  kill at any moment leaves the previous checkpoint whole and pointed to.

A write that fails (disk full, permissions) on any worker fails the save on every worker: the
parts of the new checkpoint are removed, the pointer stays on the previous one, and the error
says what happened (`CheckpointWriteError`). The best network is written before the old best
is removed, so a failure never leaves a run without one.
"""
import json
import os
import re

import mxnet as mx

from ..errors import UserError
from ..fileio import atomic_write, atomic_write_text, write_failure_message
from ..heads.shards import shard_path
from ..model_spec import export_network, params_path, saved_epochs

__all__ = ["Checkpointer", "CheckpointWriteError", "read_pointer", "export_network",
           "remove_stale_temporaries"]

POINTER = "checkpoint.json"
_TEMPORARY = re.compile(r"\.tmp\d+")  # fileio.atomic_write, model_spec.export_network temporaries


class CheckpointWriteError(UserError):
    """A checkpoint could not be written; the previous complete one is kept."""


def read_pointer(output):
    """The last complete checkpoint's pointer dict, or None when the run has none."""
    path = os.path.join(output, POINTER)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def remove_stale_temporaries(output):
    """Delete temporaries a killed run left behind; returns their names. Call it only while
    holding the run folder (training.runlock), when nobody else can be writing there."""
    stale = [name for name in os.listdir(output) if _TEMPORARY.search(name)]
    for name in stale:
        os.remove(os.path.join(output, name))
    return stale


def _attempt(write, folder, what):
    """Run `write()`; the failure message (None on success) for an I/O error."""
    try:
        write()
    except (OSError, mx.base.MXNetError) as exc:
        return write_failure_message(exc, folder, what)
    return None


class Checkpointer:
    """Writes and reads checkpoints of one run folder for one worker.

    Parameters
    ----------
    output : str
        Run folder.
    rank, world_size : int
        This worker and the number of workers.
    any_flag : callable
        `any_flag(flag)` is True on every worker when `flag` is True on any of them (an
        all-reduce; it doubles as a barrier). `bool` for one process.
    keep : int
        Step checkpoints to keep; older ones are deleted after a new one is complete.
    """

    def __init__(self, output, rank=0, world_size=1, any_flag=bool, keep=2):
        self.output, self.rank, self.world_size = output, rank, world_size
        self.any_flag, self.keep = any_flag, keep
        self._model_prefix = os.path.join(output, "model")
        self._best_prefix = os.path.join(output, "best")
        os.makedirs(output, exist_ok=True)

    def shard_prefix(self, step):
        """Prefix of the classifier shards of checkpoint `step` (see heads.shards.shard_path)."""
        return os.path.join(self.output, f"fc-{step}")

    def shard_path(self, step, rank=None, world_size=None):
        rank = self.rank if rank is None else rank
        world_size = self.world_size if world_size is None else world_size
        return shard_path(self.shard_prefix(step), rank, world_size)

    def save(self, step, net, trainer, save_shard, state):
        """Write checkpoint `step`: network and optimizer (rank 0), own shard (every rank).

        `save_shard(prefix)` writes this worker's classifier shard under `shard_prefix(step)`.
        """
        what = f"checkpoint step {step}"

        def write_parts():
            save_shard(self.shard_prefix(step))
            if self.rank == 0:
                export_network(net, self._model_prefix, step)
                atomic_write(os.path.join(self.output, f"trainer-{step}.states"),
                             trainer.save_states)
                atomic_write_text(os.path.join(self.output, f"state-{step}.json"),
                                  json.dumps(dict(state, step=step), indent=1, default=str))

        self._agree(_attempt(write_parts, self.output, what), step)
        pointer = json.dumps({"step": step, "world_size": self.world_size})
        failure = None
        if self.rank == 0:  # every shard is on disk: the pointer may move
            failure = _attempt(lambda: atomic_write_text(os.path.join(self.output, POINTER),
                                                         pointer), self.output, what)
        self._agree(failure, step)
        self._prune(step)

    def _agree(self, failure, step):
        """Every worker raises when any failed, after removing its parts of `step`."""
        if not self.any_flag(failure is not None):
            return
        self._remove_step(step)
        raise CheckpointWriteError(
            (failure or f"another worker could not write its part of checkpoint step {step}")
            + f"; the last complete checkpoint ({self._pointed_step()}) is kept")

    def _pointed_step(self):
        pointer = read_pointer(self.output)
        return "none yet" if pointer is None else f"step {pointer['step']}"

    def _remove_step(self, step):
        """Remove this worker's files of an incomplete checkpoint `step` (never the pointed)."""
        pointer = read_pointer(self.output)
        if pointer is not None and pointer["step"] == step:
            return
        self._remove(self.shard_path(step))
        if self.rank == 0:
            self._remove_rank0_files(step)

    def _remove_rank0_files(self, step):
        """The network parameters, optimizer state and run state of checkpoint `step`."""
        for path in (self.network_params(step), self.trainer_states(step),
                     os.path.join(self.output, f"state-{step}.json")):
            self._remove(path)

    def save_best(self, net, step):
        """Export the network as `best-symbol.json` + `best-%04d.params` (rank 0), then drop
        the previous best; raises CheckpointWriteError (old best kept) when it cannot."""
        if self.rank != 0:
            return
        failure = _attempt(lambda: export_network(net, self._best_prefix, step),
                           self.output, f"best network of step {step}")
        if failure:
            raise CheckpointWriteError(failure + "; the previous best network is kept")
        for old in saved_epochs(self._best_prefix):
            if old != step:
                os.remove(params_path(self._best_prefix, old))

    def _steps_on_disk(self, pattern):
        """Steps of the files matching `pattern` (a regex with one group for the step)."""
        steps = set()
        for name in os.listdir(self.output):
            match = re.fullmatch(pattern, name)
            if match:
                steps.add(int(match.group(1)))
        return sorted(steps)

    def _prune(self, current):
        """Keep `keep` checkpoints (the current one included); each rank prunes its own files."""
        def older(pattern):
            steps = [s for s in self._steps_on_disk(pattern) if s < current]
            return steps[:max(0, len(steps) - (self.keep - 1))]

        for step in older(rf"fc-(\d+)-rank{self.rank}of{self.world_size}\.params"):
            self._remove(self.shard_path(step))
        if self.rank == 0:
            for step in older(r"state-(\d+)\.json"):
                self._remove_rank0_files(step)

    @staticmethod
    def _remove(path):
        if os.path.exists(path):
            os.remove(path)

    def latest(self):
        """`(step, state dict, world size)` of the last complete checkpoint, or None."""
        pointer = read_pointer(self.output)
        if pointer is None:
            return None
        step = pointer["step"]
        with open(os.path.join(self.output, f"state-{step}.json")) as f:
            return step, json.load(f), pointer["world_size"]

    def network_params(self, step):
        return params_path(self._model_prefix, step)

    def trainer_states(self, step):
        return os.path.join(self.output, f"trainer-{step}.states")
