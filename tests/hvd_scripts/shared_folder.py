"""Run under horovodrun by tests/parallel/test_multihost.py: two folders stand for the node-local
disks of two hosts. Arguments: BASE MODE, MODE `same` (every rank passes BASE/run) or
`local` (rank r passes BASE/host{r}). Each rank writes BASE/result{r}.txt: `ok` or the error."""
import os
import sys

import horovod.mxnet as hvd

from recognition.parallel.comm import HorovodComm
from recognition.training.shared_folder import NotShared, check_shared_run_folder


def main(base, mode):
    hvd.init()
    comm = HorovodComm()
    folder = os.path.join(base, "run" if mode == "same" else f"host{comm.rank}")
    try:
        check_shared_run_folder(folder, comm, host=f"node{comm.rank}")
        result = "ok"
    except NotShared as exc:
        result = str(exc)
    with open(os.path.join(base, f"result{comm.rank}.txt"), "w") as f:
        f.write(result)


if __name__ == "__main__":
    main(*sys.argv[1:])
