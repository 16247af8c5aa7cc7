"""Training batches from a `.rec` dataset of either layout through `mx.io.ImageRecordIter`.

Batches are raw RGB 0..255 float32 NCHW (networks normalise inside) with the identity as
label; with label arrays (`--pack-label`) the extra columns are kept in `batch.label[0]`.
Each Horovod worker passes its rank as `part_index` and the world size as `num_parts`, and
reads only its part of the file.
"""
import mxnet as mx

from ..errors import DataError
from .convert import image_only_view
from .recordio import INSIGHTFACE, RecordDataset

__all__ = ["FaceRecordIter", "AUGMENTATIONS"]

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
}


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
        Where the image-only view of an InsightFace-layout file is kept (default: beside it).
    seed : int
        Shuffle and augmentation seed.
    **augment
        Any of :data:`AUGMENTATIONS`.
    """

    def __init__(self, path, batch_size, data_shape=(3, 112, 112), shuffle=True, part_index=0,
                 num_parts=1, preprocess_threads=2, cache_dir=None, seed=0, **augment):
        unknown = sorted(set(augment) - set(AUGMENTATIONS))
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; known: {sorted(AUGMENTATIONS)}")
        if not 0 <= part_index < num_parts:
            raise ValueError(f"part_index {part_index} must be in [0, {num_parts})")
        self.dataset = RecordDataset(path)
        self.num_classes = self.dataset.num_classes()
        self.label_width = self.dataset.label_width()
        if self.dataset.layout == INSIGHTFACE:
            rec, idx = image_only_view(self.dataset, cache_dir)
        else:
            rec, idx = self.dataset.rec_path, self.dataset.idx_path
        self.batch_size = batch_size
        self.num_images = self.dataset.num_images
        stored = self.dataset.image_size()
        if stored != tuple(data_shape[1:]):  # scale the shorter edge, then centre-crop
            augment.setdefault("resize", min(data_shape[1:]))
        self._options = dict(
            path_imgrec=rec, path_imgidx=idx, data_shape=tuple(data_shape),
            batch_size=batch_size, shuffle=shuffle, part_index=part_index, num_parts=num_parts,
            preprocess_threads=preprocess_threads, label_width=self.label_width,
            round_batch=True, **augment)
        self.dataset.close()
        self.reseed(seed)

    def reseed(self, seed):
        """Restart from the beginning with order and augmentation drawn from `seed` only.

        Training re-seeds every epoch with a seed derived from the epoch number, so a resumed
        run replays exactly the batches an uninterrupted one would have read.
        """
        self._iter = mx.io.ImageRecordIter(seed=seed, seed_aug=seed, **self._options)

    @property
    def provide_data(self):
        return self._iter.provide_data

    @property
    def provide_label(self):
        return self._iter.provide_label

    def reset(self):
        self._iter.reset()

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self._iter.next()
        except mx.base.MXNetError as exc:
            raise DataError(f"{self.dataset.rec_path}: reading failed: "
                            f"{str(exc).strip().splitlines()[-1]}") from None

    next = __next__

    @staticmethod
    def identities(batch):
        """The identity labels of a batch, whatever the label width."""
        label = batch.label[0]
        return label if label.ndim == 1 else label[:, 0]
