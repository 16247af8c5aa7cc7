"""Train a face-embedding network: `python recognition/train.py configs/NAME.py [--key value ...]`.

Under `horovodrun -np N` every worker reads its part of the `.rec`, the backbone's gradients
are all-reduced and the classifier is sharded across workers (model-parallel ArcFace FC);
without Horovod the same code runs as a world of one. See configs/base.py for every key.
"""
import faulthandler
import sys
import textwrap

from ..config import describe_keys, format_config, load_config
from ..errors import NonFiniteLoss
from ..parallel.threads import configure
from .entry import entry_point

__all__ = ["start", "main", "train", "print_help", "describe_loss", "describe_threads"]

USAGE = __doc__.splitlines()[0]
DATA_ORDER_TEXT = {"global": "one order of all images shared by the workers, new each epoch",
                   "part": "each worker its own contiguous part"}
THREADS = {}  # the thread counts `start` set: {variable: (value, 'chosen'|'set')}


def start():
    """Start a training process: thread counts per worker (`parallel.threads`), which MXNet
    reads once, when it loads; then MXNet; then faulthandler, so a crash inside MXNet's C++
    still prints where Python was (enabled after MXNet, which installs its own handlers).

    Only the process's first load of MXNet can take them: where MXNet is already loaded (a
    caller that imported it, e.g. tests calling `main`), this does nothing. This module loads
    no MXNet at import, so `face-train` and `python recognition/train.py` get here first.
    """
    if "mxnet" in sys.modules:
        return
    THREADS.update(configure())
    import mxnet  # noqa: F401

    faulthandler.enable()


def print_help():
    print(f"usage: {USAGE}\n       python recognition/train.py CONFIG [--key value ...] "
          f"--print-config\n\n{__doc__.split(chr(10), 2)[2].strip()}\n\n"
          f"Keys, defaults and meaning (configs/base.py):")
    for key, default, text in describe_keys():
        print(f"  --{key} {default!r}")
        if text:
            print(textwrap.fill(text, 96, initial_indent=" " * 6, subsequent_indent=" " * 6))


def describe_loss(cfg):
    """The objective actually trained, for the start-of-run log."""
    from ..training.task import task_for

    return task_for(cfg).describe_loss(cfg)


def describe_threads(cfg):
    """The CPU threads of each worker (parallel.threads), for the start-of-run log."""
    chosen = [f"{name}={value} ({how})" for name, (value, how) in sorted(THREADS.items())]
    return "threads per worker: " + ", ".join(chosen + [
        f"preprocess_threads={cfg.preprocess_threads} (JPEG decoding)"])


@entry_point(exit_codes={NonFiniteLoss: 3})
def main(argv=None):
    start()
    argv = sys.argv[1:] if argv is None else argv
    if not argv or "-h" in argv or "--help" in argv:
        print_help()
        return 0 if argv else 2
    print_only = "--print-config" in argv
    argv = [a for a in argv if a != "--print-config"]
    cfg = load_config(argv[0], argv[1:])
    if print_only:
        print(f"# {describe_loss(cfg)}\n{format_config(cfg)}")
        return 0
    return train(cfg)


def train(cfg):
    """Train `cfg` in its run folder, which no other run may use meanwhile."""
    from ..parallel.distributed import init_workers
    from ..training.monitor import StopRequest
    from ..training.run import Run
    from ..training.runlock import hold_run_folder
    from ..training.shared_folder import check_shared_run_folder

    workers = init_workers(cfg.device)
    with hold_run_folder(cfg.output, workers.rank, workers.any_flag):
        check_shared_run_folder(cfg.output, workers.comm)
        run = Run(cfg, workers)
        try:
            run.log.info(f"{workers.size} worker(s), {run.num_classes} classes, "
                         f"{run.data.num_images} images ({DATA_ORDER_TEXT[cfg.data_order]}), "
                         f"global batch "
                         f"{run.global_batch}, {run.max_steps} steps, "
                         f"{run.schedule}")
            run.log.info(describe_loss(cfg))
            run.log.info(describe_threads(cfg))
            run.log.info("config:\n" + format_config(cfg))
            run.restore()
            with StopRequest() as stop:
                run.train(stop)
            run.log.info(f"done at step {run.step}; checkpoints in {cfg.output}")
        finally:
            run.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
