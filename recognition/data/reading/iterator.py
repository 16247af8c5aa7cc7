"""Training batches from a `.rec` dataset of either layout through `mx.io.ImageRecordIter`.

Batches are raw RGB 0..255 float32 NCHW (networks normalise inside) with the identity as
label; with label arrays (`--pack-label`) the extra columns are kept in `batch.label[0]`.
Each Horovod worker passes its rank as `part_index` and the world size as `num_parts`, and
reads only its part of the file: a contiguous range of records, the same every epoch
(`data_order='part'`; training's default is `shared_order`, a global shuffle).

Damage MXNet's reader trips over is named: the file's framing and image headers are checked
when it is opened (see `framing`), and when reading still fails the records of this worker's
part are decoded to name the damaged ones, instead of a bare C++ error.
"""
import sys

import mxnet as mx

from ...errors import ConfigError, DataError
from ..integrity.rec_check import check_records, part_keys
from ..writing.convert import image_only_view
from .recordio import INSIGHTFACE, RecordDataset, describe_record
from .shared_order import SharedOrderReader, check_part_size

__all__ = ["FaceRecordIter", "AUGMENTATIONS", "DATA_ORDERS", "pinned_device_id",
           "training_reader"]

# ImageRecordIter's own augmentation flags users may turn on (name -> meaning).
AUGMENTATIONS = {
    "rand_mirror": "flip horizontally with probability 0.5",
    "rand_crop": "random crop (with max_random_scale/min_random_scale)",
    "max_random_scale": "upper bound of the random scale", "min_random_scale": "lower bound",
    "max_rotate_angle": "random rotation in degrees", "max_shear_ratio": "random shear",
    "brightness": "random brightness jitter (0..1)", "contrast": "random contrast jitter",
    "saturation": "random saturation jitter", "pca_noise": "AlexNet-style PCA lighting noise",
    "random_h": "hue jitter (0..180)", "random_s": "saturation jitter (0..255)",
    "random_l": "lightness jitter (0..255)",
    "inter_method": "resize interpolation: 0 nearest, 1 bilinear, 2 cubic, 3 area (default "
                    "when the stored size differs, as verification resizes), 4 Lanczos",
}


def pinned_device_id(ctx):
    """ImageRecordIter's `device_id` for batches bound to `ctx`: the GPU's own id (host
    memory pinned for it), or -1 (plain memory) for a CPU context."""
    return ctx.device_id if ctx.device_type == "gpu" else -1


class FaceRecordIter:
    """Iterate over a face dataset in batches; see the module docstring.

    Parameters
    ----------
    path : str
        `.rec` path, its prefix, or a folder with `train.rec`.
    batch_size : int
        Images per batch on this worker.
    data_shape : tuple
        `(3, H, W)`; images of another size get their shorter edge scaled to min(H, W), then
        a centre crop (a random crop with `rand_crop`).
    shuffle : bool
        Shuffle the record order every epoch (needs the `.idx`, always present here).
    part_index, num_parts : int
        Which part of the file this worker reads (Horovod rank / size).
    preprocess_threads : int
        Decoding threads.
    cache_dir : str, optional
        Where the image-only view of an InsightFace-layout file and the stamp of a passed
        record check are kept (default: beside the file).
    seed : int
        Shuffle and augmentation seed.
    device : mx.Context
        Where the batches go: on a GPU the reader stages them in host memory pinned for THAT
        GPU (ImageRecordIter's `device_id`; its default 0 makes every worker of a node open
        GPU 0); on the CPU in plain memory.
    **augment
        Any of :data:`AUGMENTATIONS`.
    """

    def __init__(self, path, batch_size, data_shape=(3, 112, 112), shuffle=True, part_index=0,
                 num_parts=1, preprocess_threads=2, cache_dir=None, seed=0, device=None,
                 **augment):
        unknown = sorted(set(augment) - set(AUGMENTATIONS))
        if unknown:
            raise ConfigError(f"unknown augmentation(s) {unknown}; known: "
                              f"{sorted(AUGMENTATIONS)}")
        if not 0 <= part_index < num_parts:
            raise ValueError(f"part_index {part_index} must be in [0, {num_parts})")
        self.dataset = RecordDataset(path, cache_dir=cache_dir)
        self.part_index, self.num_parts = part_index, num_parts
        self.num_classes = self.dataset.num_classes()
        self.label_width = self.dataset.label_width()
        if self.dataset.layout == INSIGHTFACE:
            rec, idx = image_only_view(self.dataset, cache_dir)
        else:
            rec, idx = self.dataset.rec_path, self.dataset.idx_path
        self.batch_size = batch_size
        self.num_images = self.dataset.num_images
        check_part_size(self.dataset.rec_path, self.num_images, num_parts, batch_size)
        stored = self.dataset.image_size()
        if stored != tuple(data_shape[1:]):  # scale the shorter edge, then centre-crop
            augment.setdefault("resize", min(data_shape[1:]))
            # Area averaging, as the verifier's cv2.INTER_AREA: a network trained on bilinear
            # (aliased) 2x reductions and tested on area-averaged ones sees two kinds of image.
            augment.setdefault("inter_method", 3)
        self._options = dict(
            path_imgrec=rec, path_imgidx=idx, data_shape=tuple(data_shape),
            batch_size=batch_size, shuffle=shuffle, part_index=part_index, num_parts=num_parts,
            preprocess_threads=preprocess_threads, label_width=self.label_width,
            round_batch=True, device_id=pinned_device_id(device or mx.cpu()), **augment)
        self.dataset.close()
        self._seed, self._reader = seed, None  # MXNet's reader is made when first needed

    @property
    def _iter(self):
        if self._reader is None:
            self.reseed(self._seed)
        return self._reader

    def reseed(self, seed):
        """Restart from the beginning with order and augmentation drawn from `seed` only.

        Training re-seeds every epoch with a seed derived from the epoch number, so a resumed
        run replays exactly the batches an uninterrupted one would have read.
        """
        # The old reader's prefetch threads are stopped before the next one starts: two
        # readers decoding at once were the scene of a rare crash at start-up.
        self._reader, self._seed = None, seed
        try:
            self._reader = mx.io.ImageRecordIter(seed=seed, seed_aug=seed, **self._options)
        except mx.base.MXNetError as exc:
            raise self._damage_error(exc) from None

    def start_epoch(self, seed, epoch, skip=0):
        """Read `epoch` from its batch `skip` on: this worker's part in the order drawn from
        `seed + 1000 * epoch + part_index`; the skipped batches are decoded and dropped."""
        self.reseed(seed + 1000 * epoch + self.part_index)
        for _ in range(skip):
            next(self)

    def warnings(self):
        """Always empty: MXNet's reader decodes past damage without naming the record."""
        return []

    damaged_count = None  # not known: see warnings()

    @property
    def provide_data(self):
        return self._iter.provide_data

    @property
    def provide_label(self):
        return self._iter.provide_label

    def reset(self):
        try:
            self._iter.reset()
        except mx.base.MXNetError as exc:
            raise self._damage_error(exc) from None

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self._iter.next()
        except mx.base.MXNetError as exc:
            raise self._damage_error(exc) from None

    next = __next__

    def _damage_error(self, exc):
        """A DataError naming the damaged records of this worker's part (decoded to find them)."""
        rec = self.dataset.rec_path
        failure = str(exc).strip().splitlines()[-1]
        dataset = RecordDataset(rec, strict=False)
        offsets = [dataset.index[k] for k in dataset.image_keys]
        keys = part_keys(dataset.image_keys, offsets, self.part_index, self.num_parts)
        print(f"{rec}: reading failed ({failure}); decoding the {len(keys)} records of part "
              f"{self.part_index} to find the damaged one(s)", file=sys.stderr, flush=True)
        report = check_records(dataset, keys, workers=0, image_size=None, progress=False)
        dataset.close()
        hint = f"list all damaged records with: python tools/rec_check.py {rec}"
        if not report.damaged:
            return DataError(f"{rec}: reading failed: {failure}; no damaged record found in "
                             f"part {self.part_index} of {self.num_parts}; {hint}")
        named = "; ".join(describe_record(d.key, d.offset, d.reason) for d in report.damaged[:3])
        return DataError(f"{rec}: reading failed on damaged data: {named} "
                         f"({len(report.damaged)} damaged in this worker's part); {hint}")

    @staticmethod
    def identities(batch):
        """The identity labels of a batch, whatever the label width."""
        label = batch.label[0]
        return label if label.ndim == 1 else label[:, 0]


# data_order -> reader class (config key `data_order`)
DATA_ORDERS = {"global": SharedOrderReader, "part": FaceRecordIter}


def training_reader(data_order, path, batch_size, **options):
    """The reader `data_order` names; see :data:`DATA_ORDERS`."""
    if data_order not in DATA_ORDERS:
        raise ConfigError(f"data_order {data_order!r} is not one of {', '.join(DATA_ORDERS)}")
    return DATA_ORDERS[data_order](path, batch_size, **options)
