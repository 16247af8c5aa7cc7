"""Packing speed of im2rec (decode, re-encode JPEG q95, write) with 1 and 2 workers.

    python benchmarks/bench_im2rec.py [--images 4000]
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import machine, textured_faces  # noqa: E402
from recognition.data.writing.packing import pack_image_folder  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000, help="images to pack")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to measure")
    args = parser.parse_args()
    print(f"machine: {machine()}; {args.images} images 112x112 JPEG")
    with tempfile.TemporaryDirectory() as tmp:
        textured_faces(os.path.join(tmp, "img"), args.images // 20, 20)
        for workers in args.workers:
            for layout in ("plain", "insightface"):
                out = os.path.join(tmp, f"{layout}{workers}")
                os.makedirs(out)
                summary = pack_image_folder(os.path.join(tmp, "img"), os.path.join(out, "train"),
                                            layout=layout, num_workers=workers, progress=False,
                                            log=None)
                print(f"{layout:12s} {workers} worker(s): "
                      f"{summary.packed / summary.seconds:7.0f} img/s "
                      f"({summary.packed} images in {summary.seconds:.1f} s)")


if __name__ == "__main__":
    main()
