"""`Run`: what one training worker trains, built from a config (the data, the network, its
objective and optimisers, the schedule, the run state) and its step loop; the `face-train`
command (`recognition.commands.train`) builds one per worker and calls `train`."""
import sys

import mxnet as mx

from ..data.reading.iterator import training_reader
from ..errors import UserError
from ..parallel.distributed import StopVote
from .hooks import default_hooks
from .monitor import Logger, LossWindow, non_finite_error
from .network import build_network, make_trainer
from .precision import Precision, count_non_finite, step_backbone
from .resume import RunCheckpoints
from .schedules import build_schedule, scaled_steps
from .task import task_for

__all__ = ["Run"]


class Run:
    """What one worker trains, built from a config: the data, the network, its objective and
    optimisers, the schedule and the run state. `train` runs the steps; the checkpoint side
    (`checkpoints`) saves and resumes, the hooks log, verify and save between steps."""

    def __init__(self, cfg, workers):
        self.cfg, self.workers = cfg, workers
        self.global_batch = cfg.batch_size * workers.size
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
        self.task = task_for(cfg)
        self.net = self.precision.cast_network(build_network(cfg, workers.ctx, self.task))
        self.objective = self.task.objective(cfg, workers, self.num_classes)
        self.trainer = make_trainer(self.net, cfg, workers, self.precision.optimizer_options())
        self.max_steps = scaled_steps([cfg.max_steps], self.global_batch,
                                      cfg.reference_batch_size)[0]
        self.schedule = build_schedule(cfg, self.global_batch, self.max_steps)
        self.log = Logger(cfg.output, workers.rank, cfg.tensorboard)
        self.checkpoints = RunCheckpoints(cfg, workers, self.log)
        self.verifier = None
        if workers.rank == 0 and cfg.verify_every > 0:
            self.verifier = self.task.verifier(cfg, workers.ctx)
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
    def input_shape(self):
        return (1, 3) + tuple(self.cfg.image_size)

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

    def check_weights_finite(self):
        """Refuse to save or score NaN/inf weights: the losses so far must be finite, and so
        must the weights (a step's loss is computed before its update, so the step that
        breaks the weights would otherwise be saved as the last good one)."""
        self.losses.check()
        weights = [p.data() for p in self.net.collect_params().values()]
        if self.workers.any_flag(count_non_finite(weights + self.objective.weights()) > 0):
            raise non_finite_error("the weights", "NaN or inf", self.step, self.last_checkpoint)

    def save(self):
        self.checkpoints.save(self)

    def restore(self):
        """Resume from the last complete checkpoint of this run folder, if asked to."""
        self.checkpoints.restore(self)

    # ------------------------------------------------------------------ data
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

    # ------------------------------------------------------------------ steps
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
        with self.precision.float32(self.net, self.input_shape) as net:
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

    def train(self, stop, hooks=None):
        """Step until `max_steps` or a stop; `hooks` (default: log, verify, save) act between
        steps and once at the end."""
        hooks = default_hooks(self) if hooks is None else hooks
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
            for hook in hooks:
                hook.after_step(self, lr)
        stopped = self.step < self.max_steps
        if stopped:
            self.log.info(f"stop requested (SIGINT/SIGTERM): saving at step {self.step}")
        for hook in hooks:
            hook.at_end(self, stopped)
        damaged = self.count_damage()
        if damaged is not None:
            self.log.info(f"damaged records met in training: {damaged}"
                          + (" (named above)" if damaged else ""))
