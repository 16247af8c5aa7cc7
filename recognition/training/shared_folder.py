"""Every worker must write the same run folder, whichever host it runs on.

Each rank writes its own classifier shard into the run folder, and rank 0 the network and the
pointer to the last complete checkpoint. With node-local folders (a path that exists on every
node but is not shared) every save "succeeds", and a resume then starts afresh on some nodes
while rank 0 resumes. At start, rank 0 writes a token of this run into the folder and sends
the same token to every rank; a rank that does not read it back from its folder sees another
folder, and every rank stops with an error naming the hosts that do not share it.
"""
import json
import os
import random
import socket

from mxnet import nd

from ..errors import UserError
from ..fileio import atomic_write_text

__all__ = ["TOKEN_NAME", "NotShared", "check_shared_run_folder"]

TOKEN_NAME = ".workers.json"
_TOKEN_LIMIT = 2 ** 52  # exact in the float64 all-reduce that sends it


class NotShared(UserError):
    """Some workers see another run folder than rank 0."""


def _read_token(folder):
    try:
        with open(os.path.join(folder, TOKEN_NAME)) as f:
            return json.load(f).get("token")
    except (OSError, ValueError, AttributeError):
        return None


def check_shared_run_folder(folder, comm, host=None):
    """Raise NotShared on every rank when any rank's `folder` is not rank 0's.

    `comm` is the workers' collectives (parallel.comm); one process has nothing to check.
    Every rank must call it at the same point, after rank 0 holds the folder."""
    if comm.size == 1:
        return
    host = host or socket.gethostname()
    token = random.SystemRandom().randrange(1, _TOKEN_LIMIT) if comm.rank == 0 else 0
    if comm.rank == 0:
        os.makedirs(folder, exist_ok=True)
        atomic_write_text(os.path.join(folder, TOKEN_NAME), json.dumps(
            {"token": token, "host": host, "pid": os.getpid(), "world_size": comm.size}))
    sent = comm.allreduce(nd.array([token], dtype="float64"), name="run_folder.token")
    expected = int(sent.asnumpy()[0])  # also a barrier: rank 0 has written the token
    mine = 0.0 if _read_token(folder) == expected else 1.0
    flags = nd.zeros((comm.size,), dtype="float64")
    flags[comm.rank] = mine
    missing = comm.allreduce(flags, name="run_folder.missing").asnumpy()
    if missing.any():
        ranks = [r for r, bad in enumerate(missing) if bad]
        where = (f"this worker (rank {comm.rank}, host {host}) does not see it"
                 if mine else f"rank(s) {ranks} on other hosts do not see it")
        raise NotShared(
            f"{folder}: the run folder is not shared by every worker: rank 0 wrote "
            f"{TOKEN_NAME} there and {where}. Every rank writes its classifier shard into the "
            f"run folder, so it must be one folder on a file system all nodes mount (NFS, "
            f"Lustre, ...), the same path on each; a node-local folder would lose shards and "
            f"resume some ranks afresh")
