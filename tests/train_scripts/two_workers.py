"""Run under horovodrun by tests/test_train.py: a few training steps on each worker, then each
worker dumps its backbone parameters, classifier shard range and the images it read."""
import json
import os
import sys

import numpy as np

from recognition.config import load_config
from recognition.train import Run
from recognition.training.distributed import init_workers


def main(config_path, out, steps):
    cfg = load_config(config_path, {"max_steps": int(steps), "output": out, "verify_every": 0,
                                    "save_every": int(steps)})
    workers = init_workers()
    run = Run(cfg, workers)
    seen = []
    original = run.train_step

    def recording_step(batch):
        seen.append(batch.data[0].asnumpy().reshape(batch.data[0].shape[0], -1).sum(1).tolist())
        return original(batch)

    run.train_step = recording_step
    run.train(stop=False)
    params = {k: v.data().asnumpy() for k, v in run.net.collect_params().items()}
    np.savez(os.path.join(out, f"backbone-rank{workers.rank}.npz"), **params)
    with open(os.path.join(out, f"seen-rank{workers.rank}.json"), "w") as f:
        json.dump({"sums": seen, "class_start": run.fc.class_start,
                   "num_local": run.fc.num_local, "num_classes": run.num_classes}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
