"""Images/s of the training readers vs the raw ImageRecordIter decode of the same file.

    python benchmarks/bench_reading.py [--images 6000] [--threads 2] [--batch-size 128]

Both layouts are measured; the InsightFace figure reads through the image-only view (built
before timing) and is compared with raw ImageRecordIter on the plain file of the same images.
The shared-order reader (data_order='global', the default for training) reads both layouts
directly by key.
"""
import argparse
import os
import sys
import tempfile
import time

import mxnet as mx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import machine, textured_faces  # noqa: E402
from recognition.data.reading.iterator import FaceRecordIter  # noqa: E402
from recognition.data.reading.shared_order import SharedOrderReader  # noqa: E402
from recognition.data.writing.packing import pack_image_folder  # noqa: E402


def images_per_second(make_iter, epochs):
    it = make_iter()
    next(iter(it))  # warm-up: threads started, first batch decoded
    it.reset()
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in it:
            batch.data[0].wait_to_read()
            count += batch.data[0].shape[0] - batch.pad
        it.reset()
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6000, help="images in the test file")
    parser.add_argument("--threads", type=int, default=2, help="decoding threads")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size")
    parser.add_argument("--epochs", type=int, default=2, help="passes timed per reader")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        textured_faces(os.path.join(tmp, "img"), args.images // 20, 20)
        pack_image_folder(os.path.join(tmp, "img"), os.path.join(tmp, "plain"), progress=False)
        os.makedirs(os.path.join(tmp, "ins"))
        pack_image_folder(os.path.join(tmp, "img"), os.path.join(tmp, "ins", "train"),
                          layout="insightface", progress=False)
        common = dict(batch_size=args.batch_size, data_shape=(3, 112, 112), shuffle=True,
                      preprocess_threads=args.threads)
        plain = os.path.join(tmp, "plain")

        def raw():
            return mx.io.ImageRecordIter(path_imgrec=plain + ".rec", path_imgidx=plain + ".idx",
                                         round_batch=True, **common)
        FaceRecordIter(os.path.join(tmp, "ins"), **common)  # build the view outside the timing
        results = {}
        for _ in range(2):  # interleave to even out machine noise
            for name, make in [("raw ImageRecordIter (plain file)", raw),
                               ("FaceRecordIter, plain layout",
                                lambda: FaceRecordIter(plain + ".rec", **common)),
                               ("FaceRecordIter, InsightFace layout",
                                lambda: FaceRecordIter(os.path.join(tmp, "ins"), **common)),
                               ("SharedOrderReader, plain layout",
                                lambda: SharedOrderReader(plain + ".rec", **common)),
                               ("SharedOrderReader, InsightFace layout",
                                lambda: SharedOrderReader(os.path.join(tmp, "ins"), **common))]:
                results.setdefault(name, []).append(images_per_second(make, args.epochs))
    print(f"machine: {machine()}; {args.images} images 112x112 JPEG q95, "
          f"batch {args.batch_size}, {args.threads} decoding threads")
    reference = max(results["raw ImageRecordIter (plain file)"])
    for name, runs in results.items():
        best = max(runs)
        print(f"{name:40s} {best:8.0f} img/s  {100 * best / reference:6.1f} % of raw")


if __name__ == "__main__":
    main()
