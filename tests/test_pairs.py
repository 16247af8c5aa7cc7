"""`.bin` pair sets: round trip, Python-2 pickles, and files that are not pair sets."""
import pickle
import struct

import cv2
import numpy as np
import pytest

from recognition.data.pairs import decode_pair_images, load_pairs, save_pairs
from recognition.errors import DataError


def encoded_images(n, size=(16, 16), seed=0):
    rng = np.random.default_rng(seed)
    return [cv2.imencode(".png", rng.integers(0, 255, size + (3,), dtype=np.uint8))[1].tobytes()
            for _ in range(n)]


def python2_pickle(bins, issame):
    """What Python 2's `pickle.dump((bins, issame), f, protocol=2)` writes: str as BINSTRING."""
    out = [b"\x80\x02]q\x00("]
    for b in bins:
        out.append(b"T" + struct.pack("<I", len(b)) + b)
    out.append(b"e]q\x01(")
    out.extend(b"\x88" if s else b"\x89" for s in issame)
    out.append(b"e\x86q\x02.")
    return b"".join(out)


def test_round_trip_is_byte_identical(tmp_path):
    bins, issame = encoded_images(6), [True, False, True]
    save_pairs(str(tmp_path / "p.bin"), bins, issame)
    pairs = load_pairs(str(tmp_path / "p.bin"))
    assert pairs.bins == bins and list(pairs.issame) == issame
    with open(tmp_path / "p.bin", "rb") as f:
        assert pickle.load(f) == (bins, issame)


def test_python2_pickle_loads(tmp_path):
    bins, issame = encoded_images(4), [False, True]
    (tmp_path / "py2.bin").write_bytes(python2_pickle(bins, issame))
    pairs = load_pairs(str(tmp_path / "py2.bin"))
    assert pairs.bins == bins and list(pairs.issame) == issame
    images = decode_pair_images(pairs)
    assert images.shape == (4, 3, 16, 16) and images.dtype == np.uint8


@pytest.mark.parametrize("payload, message", [
    ((encoded_images(3), [True]), "odd number of images"),
    ((encoded_images(4), [True]), "4 images make 2 pairs but the file has 1"),
    ({"bins": []}, "expected a .bins, issame_list. tuple"),
    (([1, 2], [True]), "images must be encoded bytes"),
])
def test_bad_pair_sets_are_reported(tmp_path, payload, message):
    with open(tmp_path / "bad.bin", "wb") as f:
        pickle.dump(payload, f)
    with pytest.raises(DataError, match=message):
        load_pairs(str(tmp_path / "bad.bin"))


def test_not_a_pickle_and_missing_file(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01 definitely not a pickle")
    with pytest.raises(DataError, match=r"junk\.bin: not a pair set"):
        load_pairs(str(tmp_path / "junk.bin"))
    with pytest.raises(DataError, match="not found"):
        load_pairs(str(tmp_path / "absent.bin"))


def test_undecodable_image_is_named(tmp_path):
    bins = encoded_images(4)
    bins[3] = b"garbage"
    save_pairs(str(tmp_path / "p.bin"), bins, [True, False])
    with pytest.raises(DataError, match="image 3 .pair 1. does not decode"):
        decode_pair_images(load_pairs(str(tmp_path / "p.bin")), path="p.bin")
