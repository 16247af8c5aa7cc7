"""ONNX export: onnxruntime matches stock MXNet on nets with PReLU (C == W, the broadcast trap),
fixed-gamma BatchNorm with a stored gamma != 1, an InsightFace FC without `flatten`, and any
batch size."""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mxnet.gluon import nn

from recognition.commands.export_onnx import main as export_main
from recognition.eval import export_onnx
from recognition.eval.embed import load_model
from tests.support import REPO

C = W = 8  # PReLU slope (C,) broadcasting over width is only caught when the sizes agree


def _insightface_checkpoint(prefix):
    data = mx.sym.var("data")
    x = mx.sym.Convolution((data - 127.5) / 128, num_filter=C, kernel=(3, 3), pad=(1, 1),
                           name="conv0")
    x = mx.sym.BatchNorm(x, fix_gamma=False, eps=2e-5, name="bn0")
    x = mx.sym.LeakyReLU(x, act_type="prelu", name="relu0")
    x = mx.sym.FullyConnected(x, num_hidden=6, name="pre_fc1")  # no `flatten` attr, as InsightFace
    x = mx.sym.BatchNorm(x, fix_gamma=True, eps=2e-5, name="fc1")
    x = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, num_hidden=5, name="fc7"), name="softmax")
    arg_shapes, _, aux_shapes = x.infer_shape(data=(1, 3, W, W), softmax_label=(1,))
    rng = np.random.default_rng(0)
    args = {n: mx.nd.array(rng.normal(0, 0.5, s)) for n, s in zip(x.list_arguments(), arg_shapes)
            if n not in ("data", "softmax_label")}
    args["fc1_gamma"] = mx.nd.array(rng.uniform(2, 3, 6))  # ignored by MXNet (fix_gamma)
    auxs = {n: mx.nd.array(rng.uniform(0.5, 1.5, s))
            for n, s in zip(x.list_auxiliary_states(), aux_shapes)}
    mx.model.save_checkpoint(prefix, 1, x, args, auxs)


def _gluon_checkpoint(prefix):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(C, 3, padding=1), nn.BatchNorm(), nn.PReLU(in_channels=C,
            alpha_initializer=mx.init.Uniform(0.5)), nn.BatchNorm(scale=False), nn.Dense(4))
    net.initialize(mx.init.Normal(0.3))
    net.hybridize()
    net(mx.nd.zeros((1, 3, W, W)))
    net.export(prefix, 1)


def _stock_mxnet(prefix, layer, batch):
    sym, args, auxs = mx.model.load_checkpoint(prefix, 1)
    sym = sym.get_internals()[layer] if layer else sym
    mod = mx.mod.Module(sym, label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[("data", batch.shape)], for_training=False)
    mod.set_params(args, auxs, allow_extra=True)
    mod.forward(mx.io.DataBatch([mx.nd.array(batch)]), is_train=False)
    return mod.get_outputs()[0].asnumpy()


def _ort(path, batch):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {"data": batch})[0]


@pytest.mark.parametrize("make,layer", [(_insightface_checkpoint, "fc1_output"),
                                        (_gluon_checkpoint, None)])
def test_onnxruntime_matches_mxnet_for_any_batch(tmp_path, capsys, make, layer):
    prefix, out = str(tmp_path / "m"), str(tmp_path / "m.onnx")
    make(prefix)
    assert export_main([f"{prefix},1", out, "--input-shape", f"3,{W},{W}"]) == 0
    assert "max abs diff" in capsys.readouterr().out
    graph = onnx.load(out).graph
    assert [i.name for i in graph.input] == ["data"]
    rng = np.random.default_rng(1)
    for n in (1, 3):
        batch = rng.uniform(0, 255, (n, 3, W, W)).astype(np.float32)
        want = _stock_mxnet(prefix, layer, batch)
        diff = np.abs(_ort(out, batch) - want).max()
        print(f"{make.__name__} batch {n}: max abs diff {diff:.2e} "
              f"(max |out| {np.abs(want).max():.3g})")
        assert diff < 1e-4 * max(1.0, np.abs(want).max())


def test_the_fixes_are_needed(tmp_path):
    """Without them the stock exporter's model is wrong or does not run."""
    prefix = str(tmp_path / "m")
    _insightface_checkpoint(prefix)
    model = load_model(prefix, 1)
    params = export_onnx.fixed_gamma_params(model.symbol, model.params)
    assert np.all(params["fc1_gamma"].asnumpy() == 1)
    assert not np.all(params["bn0_gamma"].asnumpy() == 1)  # learned gamma left alone
    raw = str(tmp_path / "raw.onnx")
    mx.onnx.export_model(export_onnx.explicit_defaults(model.symbol), params, [(1, 3, W, W)],
                         np.float32, raw, dynamic=True, dynamic_input_shapes=[(None, 3, W, W)])
    batch = np.random.default_rng(2).uniform(0, 255, (2, 3, W, W)).astype(np.float32)
    want = _stock_mxnet(prefix, "fc1_output", batch)
    try:
        broken = np.abs(_ort(raw, batch) - want).max() > 1e-3
    except Exception:  # onnxruntime may reject the mis-shaped slope outright
        broken = True
    assert broken
    ranks = export_onnx.prelu_slope_ranks(model.symbol, "data", (3, W, W))
    assert ranks == {"relu0_gamma": 4}
    fixed = export_onnx.fix_onnx_model(onnx.load(raw), ranks)
    onnx.save(fixed, raw)
    np.testing.assert_allclose(_ort(raw, batch), want, atol=1e-4)


def test_export_errors_and_wrapper(tmp_path, capsys):
    assert export_main([str(tmp_path / "none"), str(tmp_path / "o.onnx")]) == 2
    assert "model must be 'prefix,epoch'" in capsys.readouterr().err
    assert export_main([f"{tmp_path}/none,1", str(tmp_path / "o.onnx")]) == 2
    assert "none-symbol.json: checkpoint file not found" in capsys.readouterr().err
    out = subprocess.run([sys.executable, os.path.join(REPO, "tools", "export_onnx.py"), "-h"],
                         capture_output=True, text=True, check=True).stdout
    assert "--input-shape" in out and "--atol" in out
