"""Run under horovodrun by tests/training/test_train.py: a few training steps on each worker,
then each worker dumps its backbone parameters (and center-loss centres), classifier shard range
and the images it read. Arguments: CONFIG OUTPUT STEPS [JSON of config overrides].
CRASH_RANK1_AT_STEP=N makes rank 1 die at step N (to check the run exits instead of hanging)."""
import json
import os
import sys

import numpy as np

from recognition.config import load_config
from recognition.parallel.distributed import init_workers
from recognition.training.run import Run


def main(config_path, out, steps, overrides="{}"):
    cfg = load_config(config_path, dict(json.loads(overrides), max_steps=int(steps), output=out,
                                        verify_every=0, save_every=int(steps)))
    workers = init_workers()
    run = Run(cfg, workers)
    seen = []
    original = run.train_step

    crash_at = int(os.environ.get("CRASH_RANK1_AT_STEP", "-1"))

    def recording_step(batch):
        if workers.rank == 1 and run.step == crash_at:
            raise RuntimeError(f"simulated death of rank 1 at step {run.step}")
        seen.append(batch.data[0].asnumpy().reshape(batch.data[0].shape[0], -1).sum(1).tolist())
        return original(batch)

    run.train_step = recording_step
    run.train(stop=False)
    params = {k: v.data().asnumpy() for k, v in run.net.collect_params().items()}
    if run.objective.center is not None:
        params["center_loss_centres"] = run.objective.center.centers.data().asnumpy()
    np.savez(os.path.join(out, f"backbone-rank{workers.rank}.npz"), **params)
    with open(os.path.join(out, f"seen-rank{workers.rank}.json"), "w") as f:
        json.dump({"sums": seen, "class_start": run.objective.fc.class_start,
                   "num_local": run.objective.fc.num_local, "num_classes": run.num_classes}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
