"""Rank-safe, atomic checkpoints that a run can resume from.

A checkpoint at step N in the run folder is:
- `model-symbol.json` + `model-%04d.params` (N): the embedding network, MXNet's own format
  (`mx.model.load_checkpoint('model', N)`), written by rank 0;
- `trainer-N.states` (backbone optimizer state, rank 0), `state-N.json` (step, config, history);
- `fc-N-rank{r}of{W}.params`: each worker's classifier shard, written by that worker;
- `checkpoint.json`: the pointer to the last complete checkpoint, replaced by rank 0 only after
  every worker has written its part. Each file is written to a temporary name and renamed, so a
  kill at any moment leaves the previous checkpoint whole and pointed to.
"""
import glob
import json
import os
import re

from ..fileio import atomic_write, atomic_write_text
from ..heads.shards import shard_path

__all__ = ["Checkpointer", "read_pointer", "export_network"]

POINTER = "checkpoint.json"


def export_network(net, prefix, step):
    """`net.export` to a temporary prefix, then rename both files into place."""
    folder, name = os.path.split(prefix)
    tmp_prefix = os.path.join(folder, f".{name}.tmp{os.getpid()}")
    net.export(tmp_prefix, epoch=step)
    for suffix in ("-symbol.json", f"-{step:04d}.params"):
        with open(tmp_prefix + suffix, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_prefix + suffix, prefix + suffix)


def read_pointer(output):
    """The last complete checkpoint's pointer dict, or None when the run has none."""
    path = os.path.join(output, POINTER)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


class Checkpointer:
    """Writes and reads checkpoints of one run folder for one worker.

    Parameters
    ----------
    output : str
        Run folder.
    rank, world_size : int
        This worker and the number of workers.
    barrier : callable
        Blocks until every worker reached it (an all-reduce); `lambda: None` for one process.
    keep : int
        Step checkpoints to keep; older ones are deleted after a new one is complete.
    """

    def __init__(self, output, rank=0, world_size=1, barrier=lambda: None, keep=2):
        self.output, self.rank, self.world_size = output, rank, world_size
        self.barrier, self.keep = barrier, keep
        os.makedirs(output, exist_ok=True)

    def shard_prefix(self, step):
        """Prefix of the classifier shards of checkpoint `step` (see heads.shards.shard_path)."""
        return os.path.join(self.output, f"fc-{step}")

    def shard_path(self, step, rank=None, world_size=None):
        rank = self.rank if rank is None else rank
        world_size = self.world_size if world_size is None else world_size
        return shard_path(self.shard_prefix(step), rank, world_size)

    def save(self, step, net, trainer, save_shard, state):
        """Write checkpoint `step`: network and optimizer (rank 0), own shard (every rank)."""
        save_shard(self.shard_path(step))
        if self.rank == 0:
            export_network(net, os.path.join(self.output, "model"), step)
            atomic_write(os.path.join(self.output, f"trainer-{step}.states"),
                         trainer.save_states)
            atomic_write_text(os.path.join(self.output, f"state-{step}.json"),
                              json.dumps(dict(state, step=step), indent=1, default=str))
        self.barrier()  # every shard is on disk before the pointer moves
        if self.rank == 0:
            atomic_write_text(os.path.join(self.output, POINTER),
                              json.dumps({"step": step, "world_size": self.world_size}))
        self.barrier()
        self._prune(step)

    def save_best(self, net, step):
        """Export the network as `best-symbol.json` + `best-%04d.params` (rank 0)."""
        if self.rank != 0:
            return
        for old in glob.glob(os.path.join(self.output, "best-*.params")):
            os.remove(old)
        export_network(net, os.path.join(self.output, "best"), step)

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
                for name in (f"model-{step:04d}.params", f"trainer-{step}.states",
                             f"state-{step}.json"):
                    self._remove(os.path.join(self.output, name))

    @staticmethod
    def _remove(path):
        if os.path.exists(path):
            os.remove(path)

    def latest(self):
        """`(step, state dict)` of the last complete checkpoint, or None."""
        pointer = read_pointer(self.output)
        if pointer is None:
            return None
        step = pointer["step"]
        with open(os.path.join(self.output, f"state-{step}.json")) as f:
            return step, json.load(f), pointer["world_size"]

    def network_params(self, step):
        return os.path.join(self.output, f"model-{step:04d}.params")

    def trainer_states(self, step):
        return os.path.join(self.output, f"trainer-{step}.states")
