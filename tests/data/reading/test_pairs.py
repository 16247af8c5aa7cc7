"""`.bin` pair sets: round trip, Python-2 pickles, and files that are not pair sets."""
import pickle
import struct

import cv2
import numpy as np
import pytest

from recognition.data.reading.pairs import decode_pair_images, load_pairs, save_pairs
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


class _Payload:
    """Unpickling this calls `func(*args)`: how a crafted `.bin` would run code on load."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _crafted(kind, marker):
    import builtins
    import os
    import subprocess
    return {"os.system": (os.system, (f"touch {marker}",)),
            "builtins.eval": (builtins.eval, (f"open({str(marker)!r}, 'w').close()",)),
            "subprocess": (subprocess.call, (["touch", str(marker)],))}[kind]


@pytest.mark.parametrize("kind, refused", [("os.system", r"(os|posix)\.system"),
                                           ("builtins.eval", r"builtins\.eval"),
                                           ("subprocess", r"subprocess\.call")])
def test_crafted_pickle_is_refused_and_never_runs(tmp_path, kind, refused):
    marker = tmp_path / "payload_ran"
    crafted = (encoded_images(2), [_Payload(*_crafted(kind, marker))])
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"evil{protocol}.bin"
        path.write_bytes(pickle.dumps(crafted, protocol=protocol))
        with pytest.raises(DataError, match=rf"evil{protocol}\.bin: refused to load: the pickle "
                                            rf"asks for {refused}"):
            load_pairs(str(path))
        assert not marker.exists()
    with open(path, "rb") as f:  # the same file through plain pickle does run the payload
        pickle.load(f)
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_bins_as_bytes_and_as_uint8_arrays_load(tmp_path, protocol):
    bins, issame = encoded_images(4), [True, False]
    (tmp_path / "b.bin").write_bytes(pickle.dumps((bins, issame), protocol=protocol))
    assert load_pairs(str(tmp_path / "b.bin")).bins == bins
    arrays = [np.frombuffer(b, np.uint8).reshape(-1, 1) for b in bins]  # InsightFace's (N, 1)
    (tmp_path / "a.bin").write_bytes(pickle.dumps((arrays, np.array(issame)), protocol=protocol))
    pairs = load_pairs(str(tmp_path / "a.bin"))
    assert pairs.bins == bins and list(pairs.issame) == issame
    assert decode_pair_images(pairs).shape == (4, 3, 16, 16)


def _py2_uint8_array(data):
    """Python 2 numpy's protocol-2 pickle of a (N, 1) uint8 array (str fields as BINSTRING)."""
    def text(b):
        return b"U" + bytes([len(b)]) + b
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + text(b"b")
            + b"\x87R(K\x01J" + struct.pack("<i", len(data)) + b"K\x01\x86cnumpy\ndtype\n"
            + text(b"u1") + b"K\x00K\x01\x87R(K\x03" + text(b"|")
            + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T"
            + struct.pack("<I", len(data)) + data + b"tb")


def test_python2_pickle_of_uint8_arrays_loads(tmp_path):
    bins = encoded_images(2)
    pickled = (b"\x80\x02(" + b"".join(_py2_uint8_array(b) for b in bins) + b"l(\x88l\x86.")
    (tmp_path / "py2np.bin").write_bytes(pickled)
    pairs = load_pairs(str(tmp_path / "py2np.bin"))
    assert pairs.bins == bins and list(pairs.issame) == [True]


@pytest.mark.parametrize("payload, message", [
    (([np.zeros((4, 1), np.float32)] * 2, [True]), "images must be encoded bytes"),
    ((b"not a list", [True]), "expected lists of images"),
    ((encoded_images(2), ["yes"]), "issame_list must hold booleans"),
])
def test_other_contents_are_refused(tmp_path, payload, message):
    (tmp_path / "odd.bin").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataError, match=message):
        load_pairs(str(tmp_path / "odd.bin"))


def test_only_the_latin1_codec_is_admitted(tmp_path):
    good = pickle.dumps(([b"\xff\xd8"] * 2, [True]), protocol=2)
    assert b"latin1" in good  # Python 3 writes bytes as _codecs.encode(text, 'latin1')
    (tmp_path / "codec.bin").write_bytes(good.replace(b"latin1", b"rot_13"))
    with pytest.raises(DataError, match=r"codec\.bin: not a pair set .*codec 'rot_13'"):
        load_pairs(str(tmp_path / "codec.bin"))
