"""Held-out accuracy of an attribute network (FacialNet: gender and age group) on a labelled `.rec`.

The `.rec` is packed with `--pack-label`, so each record's label is `[identity, attr1, attr2,
...]` (what `adience_facialnet` trains on). Each network output is scored against its label
column: exact accuracy, and for outputs with more than two classes the 1-off accuracy (the
prediction is within one class of the truth), the second figure Adience age results quote.
"""
import numpy as np

from ..data.reading.pairs import decode_images
from ..data.reading.recordio import open_dataset
from ..errors import DataError

__all__ = ["load_labelled_images", "attribute_report", "predict_attributes",
           "AttributeEvaluator", "format_attribute_report", "output_names"]


def output_names(names, count):
    """The name of each of `count` outputs: the given ones in order, `attrN` for the rest."""
    names = list(names or [])[:count]
    return names + [f"attr{i + 1}" for i in range(len(names), count)]


def load_labelled_images(path, num_tasks, image_size=None):
    """`(images NCHW uint8, labels [N, num_tasks] int)` of every image record in `path`."""
    dataset = open_dataset(path)
    try:
        headers, payloads = [], []
        for key in dataset.image_keys:
            header, payload = dataset.read(key)
            headers.append(np.atleast_1d(np.asarray(header.label, dtype=np.float64)))
            payloads.append(payload)
    finally:
        dataset.close()
    if not payloads:
        raise DataError(f"{dataset.rec_path}: holds no image records")
    width = min(len(h) for h in headers)
    if width < 1 + num_tasks:
        raise DataError(f"{dataset.rec_path}: records carry {width} label value(s) but "
                        f"{num_tasks} attribute(s) need {1 + num_tasks} ([identity, attributes]); "
                        f"pack it with --pack-label")
    labels = np.stack([h[1:1 + num_tasks] for h in headers]).round().astype(np.int64)
    images = decode_images(payloads, image_size, dataset.rec_path,
                           where=lambda i: f"record {dataset.image_keys[i]}")
    return images, labels


def attribute_report(predictions, labels, names=None):
    """Per output: `{name, acc, one_off (None for 2 classes), classes, count}`.

    predictions : list of [N, classes] score arrays, one per output.
    labels : [N, outputs] integer class labels.
    """
    labels = np.asarray(labels)
    names = output_names(names, labels.shape[1])
    if len(predictions) != labels.shape[1]:
        raise ValueError(f"the network has {len(predictions)} outputs but {labels.shape[1]} "
                         f"attributes were asked for ({', '.join(names)})")
    report = []
    for i, scores in enumerate(predictions):
        scores = np.asarray(scores)
        truth = labels[:, i]
        if truth.min() < 0 or truth.max() >= scores.shape[1]:
            raise DataError(f"attribute {i + 1}: labels span {truth.min()}..{truth.max()} but "
                            f"the network has {scores.shape[1]} classes")
        pred = scores.argmax(axis=1)
        one_off = float(np.mean(np.abs(pred - truth) <= 1)) if scores.shape[1] > 2 else None
        report.append({"name": names[i],
                       "acc": float(np.mean(pred == truth)), "one_off": one_off,
                       "classes": int(scores.shape[1]), "count": int(len(truth))})
    return report


def predict_attributes(net, images, batch_size=64, ctx=None):
    """Class scores of every output of `net` (a Gluon block) for uint8 NCHW `images`."""
    import mxnet as mx

    ctx = ctx or mx.cpu()
    outputs = None
    for start in range(0, len(images), batch_size):
        batch = mx.nd.array(images[start:start + batch_size], ctx=ctx, dtype="float32")
        out = net(batch)
        out = list(out) if isinstance(out, (list, tuple)) else [out]
        if outputs is None:
            outputs = [[] for _ in out]
        for acc, o in zip(outputs, out):
            acc.append(o.asnumpy())
    return [np.concatenate(o) for o in outputs]


def format_attribute_report(report):
    """One line: `gender 93.10%, age_group 71.20% (1-off 92.40%)`."""
    parts = []
    for r in report:
        text = f"{r['name']} {100 * r['acc']:.2f}%"
        if r["one_off"] is not None:
            text += f" (1-off {100 * r['one_off']:.2f}%)"
        parts.append(text)
    return ", ".join(parts)


class AttributeEvaluator:
    """Scores a live network on a held-out labelled `.rec` (decoded once)."""

    def __init__(self, path, num_tasks, image_size=None, ctx=None, names=None, batch_size=64):
        self.names = output_names(names, num_tasks)
        self.images, self.labels = load_labelled_images(path, num_tasks, image_size)
        self.ctx, self.batch_size = ctx, batch_size

    def __call__(self, net):
        scores = predict_attributes(net, self.images, self.batch_size, self.ctx)
        return attribute_report(scores, self.labels, self.names)
