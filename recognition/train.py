"""Train a face-embedding network: `python recognition/train.py configs/NAME.py [--key value ...]`.

Under `horovodrun -np N` every worker reads its part of the `.rec`, the backbone's gradients
are all-reduced and the classifier is sharded across workers (model-parallel ArcFace FC);
without Horovod the same code runs as a world of one. See configs/base.py for every key.
"""
import faulthandler
import os
import sys
import textwrap

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

THREADS = {}
if __name__ == "__main__":  # thread counts per worker, set before MXNet loads and reads them
    from recognition.training.threads import configure

    THREADS = configure()

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

from recognition.cli import entry_point  # noqa: E402
from recognition.config import describe_keys, format_config, load_config  # noqa: E402
from recognition.data.iterator import training_reader  # noqa: E402
from recognition.errors import DataError, UserError  # noqa: E402
from recognition.model_spec import params_path, parse_prefix_epoch  # noqa: E402
from recognition.backbones import is_attribute_model  # noqa: E402
from recognition.training.checkpoint import Checkpointer  # noqa: E402
from recognition.training.distributed import StopVote, init_workers  # noqa: E402
from recognition.training.monitor import (Logger, NonFiniteLoss, SpeedMeter,  # noqa: E402
                                          LossWindow, StopRequest, format_eta,
                                          non_finite_error)
from recognition.training.network import (build_network, load_exported_params,  # noqa: E402
                                          make_trainer, materialize)
from recognition.training.objectives import make_objective  # noqa: E402
from recognition.training.precision import (Precision, count_non_finite,  # noqa: E402
                                            step_backbone)
from recognition.training.runlock import hold_run_folder  # noqa: E402
from recognition.training.shared_folder import check_shared_run_folder  # noqa: E402
from recognition.training.schedule import StepSchedule, scaled_steps  # noqa: E402
from recognition.training.verifier import AttributeVerifier, Verifier  # noqa: E402

USAGE = __doc__.splitlines()[0]
DATA_ORDER_TEXT = {"global": "one order of all images shared by the workers, new each epoch",
                   "part": "each worker its own contiguous part"}


class Run:
    """Everything one worker trains with, built from a config; `train` runs the steps."""

    def __init__(self, cfg, workers):
        self.cfg, self.workers = cfg, workers
        height, width = cfg.image_size
        self.data = training_reader(
            cfg.data_order, cfg.rec, cfg.batch_size, data_shape=(3, height, width), shuffle=True,
            part_index=workers.rank, num_parts=workers.size,
            preprocess_threads=cfg.preprocess_threads, cache_dir=cfg.data_cache_dir,
            seed=cfg.seed + workers.rank, device=workers.ctx, **cfg.augment)
        self.num_classes = cfg.num_classes or self.data.num_classes
        mx.random.seed(cfg.seed)
        Precision.check_context(cfg.dtype, workers.ctx)
        self.precision = Precision(cfg.dtype, cfg.loss_scale)
        self.net = self.precision.cast_network(build_network(cfg, workers.ctx))
        attributes = is_attribute_model(cfg.network)
        self.objective = make_objective(cfg, workers, self.num_classes, attributes)
        self.trainer = make_trainer(self.net, cfg, workers, self.precision.optimizer_options())
        global_batch = cfg.batch_size * workers.size
        self.max_steps = scaled_steps([cfg.max_steps], global_batch, cfg.reference_batch_size)[0]
        self.schedule = StepSchedule(
            cfg.lr, scaled_steps(cfg.lr_steps, global_batch, cfg.reference_batch_size),
            cfg.lr_factor, cfg.warmup_steps)
        self.checkpoints = Checkpointer(cfg.output, workers.rank, workers.size,
                                        workers.any_flag, cfg.keep_checkpoints)
        self.log = Logger(cfg.output, workers.rank, cfg.tensorboard)
        self.verifier = None
        if workers.rank == 0 and cfg.verify_every > 0:
            self.verifier = self._make_verifier(attributes)
        self.step, self.epoch, self.batch_in_epoch, self.history, self.best = 0, 0, 0, [], None
        self.losses = LossWindow(self.num_classes)
        self.last_checkpoint = None

    @property
    def last_checkpoint(self):
        """Step of the last checkpoint written or resumed from (None: none yet)."""
        return self.losses.last_checkpoint

    @last_checkpoint.setter
    def last_checkpoint(self, step):
        self.losses.last_checkpoint = step

    @property
    def _input_shape(self):
        return (1, 3) + tuple(self.cfg.image_size)

    def _make_verifier(self, attributes):
        """Pair sets for embedding networks, a held-out labelled .rec for attribute ones."""
        cfg = self.cfg
        if attributes:
            if not cfg.val_rec:
                return None
            return AttributeVerifier(cfg.val_rec, len(cfg.attribute_weights), cfg.image_size,
                                     self.workers.ctx, cfg.attribute_names, cfg.best_target)
        if not cfg.val_targets:
            return None
        return Verifier(cfg.val_data_dir, cfg.val_targets, cfg.image_size, self.workers.ctx,
                        best_target=cfg.best_target)

    # ------------------------------------------------------------------ state
    def state(self):
        return {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "lr": self.schedule(self.step), "history": self.history,
                "best": self.best, "world_size": self.workers.size, "config": dict(self.cfg),
                "precision": self.precision.state()}

    def sync_running_stats(self):
        """Average BatchNorm running statistics over workers (they see different batches), so
        the saved and verified network stands for all of them. Every worker must call it."""
        if self.workers.size == 1:
            return
        for name, param in sorted(self.net.collect_params().items()):
            if param.grad_req == "null":
                total = self.workers.comm.allreduce(param.data().copy(), op="sum", name=name)
                param.set_data(total / self.workers.size)

    def save(self):
        self.sync_running_stats()
        self.check_weights_finite()
        with self.precision.float32(self.net, self._input_shape) as net:  # float32 checkpoints
            self.checkpoints.save(self.step, net, self.trainer, self.objective.save,
                                  self.state())
        self.last_checkpoint = self.step
        self.log.info(f"checkpoint step {self.step} saved in {self.cfg.output}")

    def check_weights_finite(self):
        """Refuse to save or score NaN/inf weights: the losses so far must be finite, and so
        must the weights (a step's loss is computed before its update, so the step that
        breaks the weights would otherwise be saved as the last good one)."""
        self.losses.check()
        weights = [p.data() for p in self.net.collect_params().values()]
        if self.workers.any_flag(count_non_finite(weights + self.objective.weights()) > 0):
            raise non_finite_error("the weights", "NaN or inf", self.step, self.last_checkpoint)

    def restore(self):
        """Resume from the last complete checkpoint of this run folder, if asked to."""
        latest = self.checkpoints.latest()
        if latest is not None and not self.cfg.resume:
            raise UserError(
                f"{self.cfg.output} already holds a run (checkpoint step {latest[0]}); continue "
                f"it with --resume true, or choose another --output (a fresh run there would "
                f"replace its checkpoints)")
        if latest is None:
            if self.cfg.resume:
                self.log.info(f"resume: no checkpoint in {self.cfg.output}, starting afresh")
            return self._load_pretrained()
        step, state, saved_world = latest
        load_exported_params(self.net, self.checkpoints.network_params(step), self.workers.ctx)
        materialize(self.net, self.cfg.image_size, self.workers.ctx,  # the trainer needs shapes
                    self.precision.dtype)
        self.trainer.load_states(self.checkpoints.trainer_states(step))
        self._check_world_size(step, saved_world)
        self.objective.load(self.checkpoints.shard_prefix(step))
        self.step, self.epoch = step, state["epoch"]
        # the data parts depend on the worker count: another count restarts the epoch
        self.batch_in_epoch = state["batch_in_epoch"] if saved_world == self.workers.size else 0
        self.history, self.best = state["history"], state["best"]
        self.precision.load_state(state.get("precision"))
        self.last_checkpoint = step
        self.log.info(f"resumed from step {step} (lr {self.schedule(step):g})")

    def _check_world_size(self, step, saved_world):
        """Another worker count needs the classifier re-cut for it (tools/shards.py split)."""
        if saved_world == self.workers.size or not self.objective.has_shards:
            return
        if not os.path.isfile(self.checkpoints.shard_path(step)):
            prefix = self.checkpoints.shard_prefix(step)
            raise DataError(
                f"{self.cfg.output}: checkpoint {step} was written by {saved_world} workers, this "
                f"run has {self.workers.size}; re-cut its classifier first: python "
                f"tools/shards.py split {prefix}-rank*of{saved_world}.params "
                f"--world-size {self.workers.size} --prefix {prefix}")
        self.log.info(f"resuming a {saved_world}-worker checkpoint on {self.workers.size} "
                      f"workers with the re-cut classifier")

    def _load_pretrained(self):
        if not self.cfg.pretrained:
            return
        path = params_path(*parse_prefix_epoch(self.cfg.pretrained, "pretrained"))
        if not os.path.isfile(path):
            raise DataError(f"{path}: pretrained backbone not found (pretrained='prefix,epoch')")
        count = load_exported_params(self.net, path, self.workers.ctx)
        self.log.info(f"fine-tuning from {path} ({count} tensors), fresh classifier")

    # ------------------------------------------------------------------ loop
    def batches(self, skip=0):
        """Endless batches; each epoch's order comes from the seed and the epoch number, so
        resuming after `skip` batches of an epoch gives the uninterrupted sequence."""
        while True:
            if skip:
                self.log.info(f"restoring the data position: skipping {skip} batches")
            self.data.start_epoch(self.cfg.seed, self.epoch, skip)
            skip = 0
            for batch in self.data:
                self.batch_in_epoch += 1
                self.report_damage()
                yield batch
            self.epoch += 1
            self.batch_in_epoch = 0

    def report_damage(self):
        """Name each damaged record the reader met (once): in rank 0's log, on stderr for the
        others; training goes on with the image as decoded."""
        for line in self.data.warnings():
            message = (f"warning: {self.cfg.rec}: damaged {line}; training goes on with it as "
                       f"decoded; list all damaged records with: python tools/rec_check.py "
                       f"{self.cfg.rec}")
            if self.workers.rank == 0:
                self.log.info(message)
            else:
                print(f"worker {self.workers.rank}: {message}", file=sys.stderr, flush=True)

    def count_damage(self):
        """Damaged records met by all workers (logged at the end of a run), or None."""
        if self.data.damaged_count is None:
            return None
        count = mx.nd.array([self.data.damaged_count], ctx=self.workers.ctx)
        return int(self.workers.comm.allreduce(count, name="damaged_records").asscalar())

    def train_step(self, batch):
        """One step: forward and backward of the objective, then both optimisers."""
        ctx = self.workers.ctx
        images = self.precision.input(batch.data[0].as_in_context(ctx))
        labels = batch.label[0].as_in_context(ctx)
        lr = self.schedule(self.step)
        loss = self.objective.step(self.net, images, labels, self.precision)
        skipped = step_backbone(self.trainer, self.net, self.precision, lr, self.workers.size)
        if skipped:  # float16 overflow: every worker skips both optimisers
            self.log.info(f"step {self.step + 1}: {skipped}")
            return loss, lr
        self.objective.update(lr, self.cfg.momentum, self.cfg.weight_decay)
        return loss, lr

    def verify(self):
        """Score the network (rank 0) and keep the best; every worker calls it, and a failure
        on rank 0 (bad pair set, disk full) stops every worker with its message."""
        self.sync_running_stats()
        self.check_weights_finite()
        failure = None
        if self.verifier is not None:
            try:
                self._score_and_keep_best()
            except UserError as exc:
                failure = exc
        if self.workers.any_flag(failure is not None):
            raise failure or UserError("verification failed on worker 0 (see its message)")

    def _score_and_keep_best(self):
        with self.precision.float32(self.net, self._input_shape) as net:
            accuracy, line = self.verifier.score(net)
            self.history.append({"step": self.step, **accuracy})
            target = self.verifier.target
            self.log.info(f"step {self.step} verification: {line}")
            self.log.scalars(self.step, **{f"verify/{t}": a for t, a in accuracy.items()})
            if self.best is None or accuracy[target] > self.best["acc"]:
                self.checkpoints.save_best(net, self.step)
                self.best = {"step": self.step, "target": target, "acc": accuracy[target]}
                self.log.info(f"best {target} so far: {100 * accuracy[target]:.2f}% "
                              f"(best-{self.step:04d}.params)")

    def train(self, stop):
        cfg, log = self.cfg, self.log
        global_batch = cfg.batch_size * self.workers.size
        speed = SpeedMeter(global_batch, self.max_steps)
        speed.start(self.step)
        batches, stop_vote = self.batches(skip=self.batch_in_epoch), StopVote(self.workers.comm)
        while self.step < self.max_steps:
            vote = stop_vote(stop)
            if vote is True:  # one process: at once
                break
            loss, lr = self.train_step(next(batches))
            self.step += 1
            # reads the previous step's loss, label check and vote: the one host read of a step
            if self.losses.add(self.step, loss, self.objective.label_errors(),
                               None if isinstance(vote, bool) else vote):
                break
            if self.step % cfg.log_every == 0 or self.step == self.max_steps:
                mean_loss = float(np.mean(self.losses.take()))
                images_per_s, eta = speed.report(self.step)
                fields = [f"step {self.step}/{self.max_steps}", f"epoch {self.epoch}",
                          f"loss {mean_loss:.4f}", self.objective.report(),
                          f"lr {lr:.5g}", f"{images_per_s:.1f} img/s", f"eta {format_eta(eta)}"]
                log.info(" ".join(field for field in fields if field))
                log.scalars(self.step, loss=mean_loss, lr=lr, speed=images_per_s)
            if cfg.verify_every and self.step % cfg.verify_every == 0:
                self.verify()
                speed.start(self.step)  # the speed figure counts training time only
            if cfg.save_every and self.step % cfg.save_every == 0:
                self.save()
                speed.start(self.step)
        if self.step < self.max_steps:
            log.info(f"stop requested (SIGINT/SIGTERM): saving at step {self.step}")
        elif cfg.verify_every and self.step % cfg.verify_every:
            self.verify()  # the final network is always scored
        if self.last_checkpoint != self.step and self.step > 0:  # step 0: nothing trained
            self.save()
        damaged = self.count_damage()
        if damaged is not None:
            log.info(f"damaged records met in training: {damaged}"
                     + (" (named above)" if damaged else ""))


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
    if is_attribute_model(cfg.network):
        return f"loss: cross-entropy per attribute output, weights {cfg.attribute_weights}"
    center = (f", center loss weight {cfg.center_loss_weight:g} alpha {cfg.center_loss_alpha:g}"
              if cfg.center_loss_weight > 0 else "")
    return (f"loss: {cfg.loss} s={cfg.margin_s:g} m1={cfg.margin_m1:g} m2={cfg.margin_m2:g} "
            f"m3={cfg.margin_m3:g}{center}")


def describe_threads(cfg):
    """The CPU threads of each worker (training.threads), for the start-of-run log."""
    chosen = [f"{name}={value} ({how})" for name, (value, how) in sorted(THREADS.items())]
    return "threads per worker: " + ", ".join(chosen + [
        f"preprocess_threads={cfg.preprocess_threads} (JPEG decoding)"])


@entry_point(exit_codes={NonFiniteLoss: 3})
def main(argv=None):
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
    workers = init_workers(cfg.device)
    with hold_run_folder(cfg.output, workers.rank, workers.any_flag):
        check_shared_run_folder(cfg.output, workers.comm)
        run = Run(cfg, workers)
        try:
            run.log.info(f"{workers.size} worker(s), {run.num_classes} classes, "
                         f"{run.data.num_images} images ({DATA_ORDER_TEXT[cfg.data_order]}), "
                         f"global batch "
                         f"{cfg.batch_size * workers.size}, {run.max_steps} steps, "
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
    faulthandler.enable()  # a crash inside MXNet's C++ still prints where Python was
    sys.exit(main())
