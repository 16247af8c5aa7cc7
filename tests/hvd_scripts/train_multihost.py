"""Run by tests/parallel/test_multihost.py under `horovodrun -hostfile`: recognition/train.py's own
`main()` (`recognition.commands.train`), unchanged, with three recorders around it. Arguments:
RECORD_DIR CONFIG [--key value]...

Each rank writes RECORD_DIR/rank{r}.json with what Horovod says about it (rank, size, local
rank, local size, cross rank, host), the data part its reader was given, the identities and
pixel sums of the batches it trained on, and the files it moved into place (every checkpoint
file is written to a temporary name and renamed with os.replace, so the renames are the writes).
"""
import json
import os
import sys

import horovod.mxnet as hvd

from recognition.commands.train import main as train_main
from recognition.data.reading.iterator import FaceRecordIter
from recognition.training.run import Run

MOVED = []


def _record_replace():
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        MOVED.append(os.path.basename(dst))
        return real(src, dst, *args, **kwargs)

    os.replace = replace


def _record_batches(seen):
    original = Run.train_step

    def train_step(self, batch):
        images = batch.data[0].asnumpy()
        labels = FaceRecordIter.identities(batch).asnumpy()
        seen["part"] = [self.data.part_index, self.data.num_parts]
        seen["labels"].extend(int(v) for v in labels)
        seen["sums"].append([float(v) for v in images.reshape(images.shape[0], -1).sum(1)])
        return original(self, batch)

    Run.train_step = train_step


def main(record_dir, *argv):
    seen = {"labels": [], "sums": []}
    _record_replace()
    _record_batches(seen)
    code = train_main(list(argv))  # calls hvd.init() through init_workers()
    rank = hvd.rank()
    info = {"rank": rank, "size": hvd.size(), "local_rank": hvd.local_rank(),
            "local_size": hvd.local_size(), "cross_rank": hvd.cross_rank(),
            "cross_size": hvd.cross_size(), "host": os.environ.get("HOROVOD_HOSTNAME"),
            "exit": code, "moved": MOVED, **seen}
    os.makedirs(record_dir, exist_ok=True)
    with open(os.path.join(record_dir, f"rank{rank}.json"), "w") as f:
        json.dump(info, f)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
