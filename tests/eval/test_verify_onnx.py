"""`face-verify --model x.onnx`: an exported checkpoint scores as its MXNet original in one
report; InsightFace-style inputs (normalized, NHWC, BGR, a fixed batch) are fed their convention;
bad ONNX files and inputs are clear errors."""
import json
import sys
import types

import mxnet as mx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from recognition.backbones import get_model
from recognition.commands.export_onnx import main as export_main
from recognition.errors import UserError
from recognition.eval import onnx_model
from recognition.eval.embed import Embedder, load_model
from recognition.eval.onnx_model import EXPORT_METADATA, load_onnx
from tests.eval.test_verify_cli import SIZE, _make_bin

EMBEDDING = 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A pair set of SIZE x SIZE images, an r_tiny (PReLU) checkpoint and its ONNX export."""
    root = tmp_path_factory.mktemp("onnx")
    _make_bin(root / "synth.bin")
    mx.random.seed(0)
    net = get_model("r_tiny", act="prelu", embedding_size=16)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.zeros((1, 3, SIZE, SIZE)))
    prefix, path = str(root / "tiny"), str(root / "tiny.onnx")
    net.export(prefix, 1)
    assert export_main([f"{prefix},1", path, "--input-shape", f"3,{SIZE},{SIZE}"]) == 0
    return root, prefix, path


def _images(n=5, size=SIZE):
    return np.random.default_rng(3).integers(0, 256, (n, 3, size, size)).astype(np.uint8)


def _embed(model, images):
    """(plain, flipped) embeddings in batches of 4 (so 5 images pad the last batch)."""
    return Embedder(model, batch_size=4).embed_all(images, progress=False)


def _close(got, want):
    """Within 1e-4 relative: two runtimes sum float32 in different orders."""
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def _run(*argv):
    from recognition.commands.verify import main

    return main([str(a) for a in argv] + ["--quiet", "--batch-size", "16"])


def test_export_scores_exactly_as_its_checkpoint(setup, tmp_path, capsys):
    root, prefix, path = setup
    report, plots = tmp_path / "report.json", tmp_path / "plots"
    assert _run("--data-dir", root, "--target", "synth", "--model", path, "--model",
                f"{prefix},1", "--output", report, "--plot", plots) == 0
    out = capsys.readouterr().out
    assert "[synth][tiny.onnx] XNorm" in out and "[synth][tiny,1] XNorm" in out
    got, want = json.loads(report.read_text())["results"]
    assert (got["model"], got["epoch"], want["epoch"]) == ("tiny.onnx", None, 1)
    for key in ("acc", "acc_std", "acc_noflip", "val", "threshold"):
        assert got[key] == want[key], key
    assert got["xnorm"] == pytest.approx(want["xnorm"], rel=1e-4)
    assert sorted(p.name for p in plots.iterdir()) == [
        "synth_pr.png", "synth_roc.png", "synth_tiny.onnx_hist.png", "synth_tiny_1_hist.png"]
    onnx_embeddings = _embed(load_onnx(path), _images())
    for a, b in zip(onnx_embeddings, _embed(load_model(prefix, 1), _images())):
        _close(a, b)


def test_export_metadata_says_raw_input_without_it_insightface_is_assumed(setup, tmp_path):
    _, prefix, path = setup
    assert load_onnx(path).convention == {"layout": "nchw", "channels": "rgb", "input": "raw"}
    model = onnx.load(path)
    assert {p.key: p.value for p in model.metadata_props} == EXPORT_METADATA
    del model.metadata_props[:]
    bare = str(tmp_path / "bare.onnx")
    onnx.save(model, bare)
    assert load_onnx(bare).convention["input"] == "normalized"  # InsightFace's zoo default
    want = _embed(load_model(prefix, 1), _images())[0]
    assert not np.allclose(_embed(load_onnx(bare), _images())[0], want, rtol=1e-2)
    _close(_embed(load_onnx(bare, input_range="raw"), _images())[0], want)


def _save(path, shape, nodes=(), inits=(), metadata=None, out="image"):
    """An ONNX model with one float input `image` of `shape`; returns its path as a string."""
    graph = helper.make_graph(list(nodes) or [helper.make_node("Identity", ["image"], ["out"])],
                              "test", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                     shape)],
                              [helper.make_tensor_value_info(out if nodes else "out",
                                                             TensorProto.FLOAT, None)],
                              initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(model, metadata or {})
    onnx.save(model, str(path))
    return str(path)


def _weights(size):
    return np.random.default_rng(0).normal(0, 0.01, (3 * size * size, EMBEDDING)).astype(
        np.float32)


def _linear(path, layout, channels, value, batch=None, size=SIZE, metadata=None):
    """flatten(RGB NCHW 0..255 image) @ W, from an input in the given convention: fed right,
    every convention gives the same embedding."""
    shape = [batch, 3, size, size] if layout == "nchw" else [batch, size, size, 3]
    steps = [("Transpose", [], {"perm": [0, 3, 1, 2]})] if layout == "nhwc" else []
    steps += [("Gather", ["reverse"], {"axis": 1})] if channels == "bgr" else []
    steps += [("Mul", ["half"], {}), ("Add", ["half"], {})] if value == "normalized" else []
    steps += [("Flatten", [], {"axis": 1}), ("MatMul", ["w"], {})]
    nodes, x = [], "image"
    for i, (op, extra, attrs) in enumerate(steps):
        nodes.append(helper.make_node(op, [x] + extra, [f"y{i}"], **attrs))
        x = f"y{i}"
    inits = [numpy_helper.from_array(np.array([2, 1, 0], np.int64), "reverse"),
             numpy_helper.from_array(np.array(127.5, np.float32), "half"),
             numpy_helper.from_array(_weights(size), "w")]
    return _save(path, shape, nodes, inits, metadata, out=x)


@pytest.mark.parametrize("convention,batch,metadata,flags", [
    (("nchw", "rgb", "raw"), None, EXPORT_METADATA, {}),  # this repo's export
    (("nchw", "rgb", "normalized"), None, None, {}),  # InsightFace's zoo (w600k_r50)
    (("nhwc", "bgr", "normalized"), 1, None, {"channels": "bgr"}),  # one image at a time
    (("nhwc", "rgb", "raw"), 3, None, {"input_range": "raw"}),  # batches of 3, last padded
], ids=["export", "insightface", "nhwc-bgr-batch1", "nhwc-raw-batch3"])
def test_each_input_convention_is_fed_right(tmp_path, convention, batch, metadata, flags):
    path = _linear(tmp_path / "m.onnx", *convention, batch=batch, metadata=metadata)
    model = load_onnx(path, **flags)
    assert tuple(model.convention.values()) == convention
    images = _images()
    plain, flipped = _embed(model, images)
    _close(plain, images.reshape(len(images), -1).astype(np.float32) @ _weights(SIZE))
    _close(flipped, images[:, :, :, ::-1].reshape(len(images), -1).astype(np.float32)
           @ _weights(SIZE))


def _error(capsys, root, *model_args):
    assert _run("--data-dir", root, "--target", "synth", *model_args) == 2
    return capsys.readouterr().err


def test_bad_onnx_files_and_inputs_are_clear_errors(setup, tmp_path, capsys):
    root, _, path = setup
    err = _error(capsys, root, "--model", tmp_path / "none.onnx")
    assert err == f"error: {tmp_path}/none.onnx: ONNX model not found\n"
    (tmp_path / "junk.onnx").write_text("not a model")
    err = _error(capsys, root, "--model", tmp_path / "junk.onnx")
    assert "junk.onnx: not a valid ONNX model (Protobuf parsing failed.)" in err
    assert "an ONNX file has no epochs" in _error(capsys, root, "--model", f"{path},1")
    grey = _save(tmp_path / "grey.onnx", ["N", 1, SIZE, SIZE])
    err = _error(capsys, root, "--model", grey)
    assert f"grey.onnx: input 'image' has shape ['N', 1, {SIZE}, {SIZE}]: 1 channels" in err
    flat = _save(tmp_path / "flat.onnx", ["N", 3 * SIZE * SIZE])
    assert f"flat.onnx: input 'image' has shape ['N', {3 * SIZE * SIZE}]; expected a 4-D" in \
        _error(capsys, root, "--model", flat)
    odd = _save(tmp_path / "odd.onnx", ["N", 3, SIZE, SIZE],
                metadata={"recognition.layout": "chw"})
    assert "odd.onnx: metadata recognition.layout is 'chw', expected one of nchw, nhwc" in \
        _error(capsys, root, "--model", odd)


def test_fixed_input_size_must_match_the_pair_set(setup, tmp_path, capsys):
    root, _, _ = setup
    big = _linear(tmp_path / "big.onnx", "nchw", "rgb", "normalized", size=112)
    err = _error(capsys, root, "--model", big)
    assert (f"synth.bin: images are {SIZE}x{SIZE} (HxW) but {big} takes 112x112 (input 'image' "
            "[None, 3, 112, 112], NCHW); pass --image-size 112,112 to resize") in err
    assert _run("--data-dir", root, "--target", "synth", "--model", big,
                "--image-size", "112,112") == 0
    with pytest.raises(UserError, match="takes 112x112 .HxW. images, given 32x32"):
        _embed(load_onnx(big), _images())  # IJB crops are checked batch by batch


def test_without_onnxruntime_the_error_names_the_extra(setup, monkeypatch, capsys):
    root, _, path = setup
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    err = _error(capsys, root, "--model", path)
    assert "tiny.onnx: scoring ONNX models needs onnxruntime" in err
    assert "pip install -e '.[export]'" in err


def test_gpu_puts_cuda_first_when_onnxruntime_has_it(capsys):
    def fake(*available):
        return types.SimpleNamespace(get_available_providers=lambda: list(available))

    cpu = ["CPUExecutionProvider"]
    assert onnx_model._providers(fake(*cpu), -1, "m.onnx") == cpu
    assert onnx_model._providers(fake("CUDAExecutionProvider", *cpu), 1, "m.onnx") == [
        ("CUDAExecutionProvider", {"device_id": 1}), *cpu]
    assert onnx_model._providers(fake(*cpu), 0, "m.onnx") == cpu
    assert "m.onnx runs on the CPU" in capsys.readouterr().err
