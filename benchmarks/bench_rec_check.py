"""Cost of the record checks: the open-time framing check on big files, and the full decode.

    python benchmarks/bench_rec_check.py [--records 1000000] [--side 8] [--decode 4000]

The big `.rec` repeats one packed JPEG record (a smooth `side` x `side` image: the framing
check reads a fixed few bytes per record, so its cost follows the record count; `--side 8`
gives MS1MV2's 5.8M records in 2 GB), written with numpy so millions take seconds.
"""
import argparse
import os
import sys
import tempfile
import time

import cv2
import mxnet as mx
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import machine, textured_faces  # noqa: E402
from recognition.data.integrity import check_stamp  # noqa: E402
from recognition.data.integrity.framing import payload_problems, scan_records  # noqa: E402
from recognition.data.integrity.rec_check import check_records  # noqa: E402
from recognition.data.reading.recordio import RecordDataset, read_index  # noqa: E402
from recognition.data.writing.packing import pack_image_folder  # noqa: E402


def write_big_rec(prefix, records, side):
    """`records` copies of one record (padded to 4 bytes) and an `.idx` listing them all."""
    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    img = np.dstack([np.tile(ramp, (side, 1)), np.tile(ramp[:, None], (1, side)),
                     np.full((side, side), 128, np.uint8)])
    jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    data = mx.recordio.pack(mx.recordio.IRHeader(0, 1.0, 0, 0), jpeg)
    framed = np.frombuffer(np.array([0xCED7230A, len(data)], "<u4").tobytes()
                           + data + b"\0" * (-len(data) % 4), np.uint8)
    with open(prefix + ".rec", "wb") as f:
        for lo in range(0, records, 100_000):
            np.tile(framed, min(100_000, records - lo)).tofile(f)
    offsets = np.arange(records, dtype=np.int64) * len(framed)
    with open(prefix + ".idx", "w") as f:
        f.write("".join(f"{k}\t{o}\n" for k, o in enumerate(offsets.tolist())))
    return len(framed)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def framing_figures(tmp, records, side):
    prefix = os.path.join(tmp, "big")
    size = write_big_rec(prefix, records, side)
    rec_size = os.path.getsize(prefix + ".rec")
    print(f"{records:,} records of {size} bytes ({rec_size / 2**20:,.0f} MiB, page cache warm)")
    index, t_index = timed(lambda: read_index(prefix + ".idx", rec_size))
    table, t_scan = timed(lambda: scan_records(prefix + ".rec", index, rec_size))
    keys = sorted(index)
    _, t_payload = timed(lambda: payload_problems(table, keys))
    assert not table.problems, table.sorted_problems()[:3]
    print(f"  {'read the .idx':48s}{t_index:6.2f} s")
    print(f"  {'framing of every record':48s}{t_scan:6.2f} s")
    print(f"  {'image header of every payload':48s}{t_payload:6.2f} s")
    check_stamp.STAMP_MIN_RECORDS = 0
    for label in ("open, first time (checks, stamps)", "open again (stamp matches)"):
        dataset, seconds = timed(lambda: RecordDataset(prefix + ".rec", cache_dir=tmp))
        print(f"  RecordDataset {label:34s}{seconds:6.2f} s")
        dataset.close()
    os.remove(prefix + ".rec")


def decode_figures(tmp, images, workers):
    textured_faces(os.path.join(tmp, "img"), max(1, images // 20), 20)
    summary = pack_image_folder(os.path.join(tmp, "img"), os.path.join(tmp, "small"),
                                progress=False, log=None)
    for n in workers:
        report, seconds = timed(lambda: check_records(summary.rec_path, workers=n,
                                                      progress=False))
        print(f"full decode check, {n} worker(s): {report.checked / seconds:7.0f} records/s "
              f"({report.checked} records in {seconds:.1f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000,
                        help="records in the big file for the framing check")
    parser.add_argument("--side", type=int, default=8,
                        help="image side of the repeated record (default 8: 708-byte records; "
                             "112: 2.4 KB)")
    parser.add_argument("--decode", type=int, default=4000,
                        help="112x112 images for the full decode check (0: skip)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts for the decode check")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        framing_figures(tmp, args.records, args.side)
        if args.decode:
            decode_figures(tmp, args.decode, args.workers)


if __name__ == "__main__":
    main()
