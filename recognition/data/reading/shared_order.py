"""Training batches in one order shared by every worker: a global shuffle of the whole index.

MXNet's `ImageRecordIter` gives a worker a contiguous byte range of the file (dmlc's
`IndexedRecordIOSplitter` partitions by offset), and face datasets are packed identity by
identity, so each of W workers would see a fixed 1/W of the identities forever and normalise
its BatchNorm over them. Here every worker draws the same permutation of all image keys from
the run's seed and the epoch number, takes its own slice of it, and reads those records by
offset; a new epoch deals the images out anew, as InsightFace's MXNet Partial FC reader does.
Worker processes decode (`batch_decode`) ahead of training: IN_FLIGHT batches decoding and two
decoded ones waiting.

The epoch is `N // W // batch_size` batches on every worker (the few images left over are a
different few each epoch), so workers stay in step. A position is (epoch, batch): resuming
skips batches without reading them.

Damage libjpeg decodes past (garbage or stray bytes, a cut file: a grey or garbled picture
and at most a "Corrupt JPEG data" line on stderr that names nothing) is caught by the
workers; the record is named once in `warnings()` and training goes on with it, as
InsightFace's does. A record that does not decode at all stops the run with its key.
"""
import collections
import queue
import threading
import weakref
from multiprocessing import shared_memory

import mxnet as mx
import numpy as np

from ...errors import ConfigError, DataError
from .batch_decode import decode_chunk, start_worker
from .pool import worker_pool
from .recordio import RecordDataset, describe_record

__all__ = ["SharedOrderReader", "epoch_slice", "check_part_size", "SUPPORTED_AUGMENTATIONS"]

SUPPORTED_AUGMENTATIONS = {"rand_mirror"}
_END = object()
IN_FLIGHT = 3  # batches the workers decode at once


def _release(pool, ring):
    pool.terminate()
    try:
        ring.close()
    except BufferError:  # a view is still alive: the mapping goes with the process
        pass
    ring.unlink()


class _Stopped(Exception):
    """The epoch was abandoned (a new one started) while a batch was decoding."""


def epoch_slice(num_images, num_parts, part_index, seed, epoch):
    """Positions (into the image keys) worker `part_index` reads in `epoch`, in order: its
    slice of one permutation of all images that every worker draws from (seed, epoch)."""
    per_part = num_images // num_parts
    order = np.random.default_rng([seed, epoch, 0]).permutation(num_images)
    return order[part_index * per_part:(part_index + 1) * per_part]


def check_part_size(rec_path, num_images, num_parts, batch_size):
    """Images per worker, refusing parts smaller than one batch by name and sizes (MXNet's
    own message names neither)."""
    per_part = num_images // num_parts
    if batch_size > per_part:
        raise DataError(f"{rec_path}: {num_images} images make parts of {per_part} for "
                        f"{num_parts} worker(s), fewer than the batch size {batch_size}; use a "
                        f"smaller batch_size or fewer workers")
    return per_part


class SharedOrderReader:
    """Iterate over a face dataset in batches; see the module docstring.

    Parameters are those of :class:`~recognition.data.reading.iterator.FaceRecordIter`; of the
    augmentations only `rand_mirror` is offered (MXNet's reader has the others).
    """

    def __init__(self, path, batch_size, data_shape=(3, 112, 112), shuffle=True, part_index=0,
                 num_parts=1, preprocess_threads=2, cache_dir=None, seed=0, device=None,
                 **augment):
        other = sorted(set(augment) - SUPPORTED_AUGMENTATIONS)
        if other:
            raise ConfigError(f"augmentation(s) {other} need data_order='part' (MXNet's "
                              f"ImageRecordIter); data_order='global' offers "
                              f"{sorted(SUPPORTED_AUGMENTATIONS)}")
        if not 0 <= part_index < num_parts:
            raise ValueError(f"part_index {part_index} must be in [0, {num_parts})")
        self.dataset = RecordDataset(path, cache_dir=cache_dir)
        self.num_classes = self.dataset.num_classes()
        self.label_width = self.dataset.label_width()
        self.num_images = self.dataset.num_images
        self._offsets = np.array([self.dataset.index[k] for k in self.dataset.image_keys])
        self._keys = np.array(self.dataset.image_keys)
        self.dataset.close()
        per_part = check_part_size(self.dataset.rec_path, self.num_images, num_parts,
                                   batch_size)
        self.batch_size, self.data_shape = batch_size, tuple(data_shape)
        self.part_index, self.num_parts, self.shuffle = part_index, num_parts, shuffle
        self.mirror = bool(augment.get("rand_mirror", False))
        self.batches_per_epoch = per_part // batch_size
        device = device or mx.cpu()
        self._staging = mx.Context("cpu_pinned", device.device_id) \
            if device.device_type == "gpu" else mx.cpu()
        self._workers = max(1, preprocess_threads)
        self._pool = worker_pool(self._workers, start_worker, (self.dataset.rec_path,),
                                 preload=[start_worker.__module__])
        # Batches are decoded into shared memory: IN_FLIGHT decoding, 2 queued, 1 being copied.
        self._ring_shape = (IN_FLIGHT + 3, batch_size) + self.data_shape
        self._ring = shared_memory.SharedMemory(create=True, size=int(np.prod(self._ring_shape)))
        self._slots = np.ndarray(self._ring_shape, np.uint8, self._ring.buf)
        self._finalize = weakref.finalize(self, _release, self._pool, self._ring)
        self._checked = np.zeros(self.num_images, bool)
        self._damaged, self._named, self._reported, self._producer = [], set(), 0, None
        self._seed, self._epoch, self._ended = seed, 0, False  # epoch 0 starts when first read

    # ---------------------------------------------------------------- epochs
    def start_epoch(self, seed, epoch, skip=0):
        """Read `epoch` of the order drawn from `seed` (the same on every worker), from its
        batch `skip` on: the batches an uninterrupted run reads there, none of them decoded
        to be dropped."""
        self._stop_producer()
        self._seed, self._epoch, self._ended = seed, epoch, False
        if self.shuffle:
            positions = epoch_slice(self.num_images, self.num_parts, self.part_index, seed, epoch)
        else:
            per_part = self.num_images // self.num_parts
            positions = np.arange(self.part_index * per_part, (self.part_index + 1) * per_part)
        flips = np.random.default_rng([seed, epoch, 1, self.part_index]).random(len(positions))
        flips = (flips < 0.5) & self.mirror
        stop, batches = threading.Event(), queue.Queue(maxsize=2)
        thread = threading.Thread(target=self._produce, name="batches", daemon=True,
                                  args=(positions, flips, skip, stop, batches))
        self._producer = (thread, stop, batches)
        thread.start()

    def reset(self):
        """Go on with the next epoch (a new order, as ImageRecordIter reshuffles on reset)."""
        self.start_epoch(self._seed, self._epoch + 1)

    def _stop_producer(self):
        if self._producer is None:
            return
        thread, stop, batches = self._producer
        stop.set()
        while thread.is_alive():  # unblock a put() waiting on a full queue
            try:
                batches.get(timeout=0.05)
            except queue.Empty:
                pass
        self._producer = None

    # ---------------------------------------------------------------- reading
    def _produce(self, positions, flips, skip, stop, batches):
        """Thread: keep IN_FLIGHT batches of the epoch decoding in the workers, hand each
        finished one to `batches` in order, then _END (or the exception that stopped it)."""
        try:
            pending = collections.deque()
            for b in range(skip, self.batches_per_epoch):
                chosen = slice(b * self.batch_size, (b + 1) * self.batch_size)
                pending.append(self._submit(b % len(self._slots), positions[chosen],
                                            flips[chosen]))
                if len(pending) == IN_FLIGHT:
                    self._deliver(pending.popleft(), stop, batches)
            while pending:
                self._deliver(pending.popleft(), stop, batches)
            batches.put(_END)
        except _Stopped:
            pass
        except Exception as exc:  # handed to the training thread, raised there
            batches.put(exc)

    def _submit(self, slot, positions, flips):
        """Split one batch among the workers; `(slot, positions, [AsyncResult])`."""
        walk = ~self._checked[positions]
        self._checked[positions] = True
        tasks = list(zip(self._offsets[positions].tolist(), flips.tolist(), walk.tolist()))
        step = -(-len(tasks) // self._workers)
        return slot, positions, [
            self._pool.apply_async(decode_chunk, (self._ring.name, self._ring_shape, slot, i,
                                                  tasks[i:i + step]))
            for i in range(0, len(tasks), step)]

    def _deliver(self, submitted, stop, batches):
        slot, positions, results = submitted
        parts = [result.get() for result in results]
        if stop.is_set():
            raise _Stopped
        labels = np.array([label for p in parts for label in p[0]], np.float32)
        problems = [problem for p in parts for problem in p[1]]
        for position, problem in zip(positions, problems):
            if problem:
                self._name_damage(int(position), *problem)
        batches.put((slot, labels))

    def _name_damage(self, position, fatal, reason):
        key, offset = int(self._keys[position]), int(self._offsets[position])
        if fatal:
            rec = self.dataset.rec_path
            raise DataError(f"{rec}: {describe_record(key, offset, reason)}; list all damaged "
                            f"records with: python tools/rec_check.py {rec}")
        if key not in self._named:
            self._named.add(key)
            self._damaged.append(describe_record(key, offset, reason))

    # ---------------------------------------------------------------- iteration
    def warnings(self):
        """Damaged records met since the last call (each named once per run)."""
        taken = self._damaged[self._reported:]
        self._reported += len(taken)
        return taken

    @property
    def damaged_count(self):
        """Damaged records met so far in this run."""
        return len(self._damaged)

    def __iter__(self):
        return self

    def __next__(self):
        if self._producer is None:
            if self._ended:
                raise StopIteration
            self.start_epoch(self._seed, self._epoch)
        item = self._producer[2].get()
        if item is _END:
            self._producer, self._ended = None, True
            raise StopIteration
        if isinstance(item, Exception):
            self._producer, self._ended = None, True
            raise item
        slot, labels = item
        # copied out of the ring as uint8 (the slot is free again), cast by MXNet's engine
        data = mx.nd.array(self._slots[slot], ctx=self._staging, dtype=np.uint8)
        data = data.astype(np.float32)
        return mx.io.DataBatch(data=[data], label=[mx.nd.array(labels, ctx=self._staging)],
                               pad=0)

    next = __next__

    @property
    def provide_data(self):
        return [mx.io.DataDesc("data", (self.batch_size,) + self.data_shape)]

    @property
    def provide_label(self):
        shape = (self.batch_size,) if self.label_width == 1 else (self.batch_size,
                                                                   self.label_width)
        return [mx.io.DataDesc("softmax_label", shape)]

    def close(self):
        """Stop the workers and free the shared memory (also done when garbage-collected)."""
        self._stop_producer()
        self._slots = None
        self._finalize()
