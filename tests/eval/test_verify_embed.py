"""Checkpoint loading (this project's and InsightFace-style), embedding layer discovery,
batched embedding with flips, input-size errors, `--model` parsing and test-time transforms."""
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from recognition.errors import DataError
from recognition.eval import transforms
from recognition.eval.metrics import evaluate_embeddings, verification_report
from recognition.eval.embed import Embedder, find_embedding_layer, load_model, parse_models


def _small_net(size=16):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, strides=2, in_channels=3), nn.BatchNorm(), nn.PReLU(), nn.Dense(8))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.zeros((1, 3, size, size)))
    return net


def _insightface_symbol(embedding_name="fc1"):
    """data -> conv -> pre_fc1 -> BN `fc1` -> fc7 -> SoftmaxOutput, like InsightFace's zoo."""
    data = mx.sym.var("data")
    x = mx.sym.Convolution((data - 127.5) / 128, num_filter=4, kernel=(3, 3), name="conv0")
    x = mx.sym.FullyConnected(x, num_hidden=6, name="pre_fc1")
    emb = mx.sym.BatchNorm(x, fix_gamma=True, name=embedding_name)
    if embedding_name != "fc1":  # a cosine classifier: s * emb / |emb| before the FC
        x = mx.sym.L2Normalization(emb) * 64.0
    else:
        x = emb
    x = mx.sym.FullyConnected(x, num_hidden=5, name="fc7")
    return mx.sym.SoftmaxOutput(x, name="softmax")


def _save_symbol(sym, prefix, epoch=1, size=10):
    arg_shapes, _, aux_shapes = sym.infer_shape(data=(1, 3, size, size), softmax_label=(1,))
    rng = np.random.default_rng(0)
    args = {n: mx.nd.array(rng.normal(0, 0.3, s)) for n, s in zip(sym.list_arguments(), arg_shapes)
            if n not in ("data", "softmax_label")}
    auxs = {n: mx.nd.array(rng.uniform(0.5, 1.5, s))
            for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    mx.model.save_checkpoint(prefix, epoch, sym, args, auxs)
    return args, auxs


def _stock_forward(prefix, epoch, layer, images):
    """Reference: stock MXNet Module on the named internal output."""
    sym, args, auxs = mx.model.load_checkpoint(prefix, epoch)
    mod = mx.mod.Module(sym.get_internals()[layer], label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[("data", images.shape)], for_training=False)
    mod.set_params(args, auxs, allow_extra=True)
    mod.forward(mx.io.DataBatch([mx.nd.array(images)]), is_train=False)
    return mod.get_outputs()[0].asnumpy()


def test_exported_gluon_net_loads_and_embeds_like_the_net(tmp_path):
    net = _small_net()
    net.export(str(tmp_path / "m"), 3)
    model = load_model(str(tmp_path / "m"), 3)
    assert model.layer == model.symbol.list_outputs()[0]
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 16, 16)).astype(np.uint8)
    plain, flipped = Embedder(model, batch_size=2).embed_all(images, flip=True, progress=False)
    want = net(mx.nd.array(images.astype(np.float32))).asnumpy()
    want_flip = net(mx.nd.array(images[:, :, :, ::-1].astype(np.float32))).asnumpy()
    np.testing.assert_allclose(plain, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(flipped, want_flip, rtol=1e-5, atol=1e-5)
    assert not np.allclose(plain, flipped)


def test_insightface_checkpoint_uses_fc1_output(tmp_path):
    prefix = str(tmp_path / "model")
    _save_symbol(_insightface_symbol(), prefix)
    model = load_model(prefix, 1)
    assert model.layer == "fc1_output"
    images = np.random.default_rng(1).integers(0, 256, (3, 3, 10, 10)).astype(np.uint8)
    plain, _ = Embedder(model, batch_size=4).embed_batch(images, flip=False)
    assert plain.shape == (3, 6)
    np.testing.assert_allclose(plain, _stock_forward(prefix, 1, "fc1_output", images),
                               rtol=1e-5, atol=1e-5)


def test_embedding_found_below_a_cosine_classifier_without_fc1():
    sym = _insightface_symbol(embedding_name="embedding")
    assert find_embedding_layer(sym) == "embedding_output"
    assert find_embedding_layer(sym, "pre_fc1") == "pre_fc1_output"
    with pytest.raises(ValueError, match="nope"):
        find_embedding_layer(sym, "nope")


def test_input_size_mismatch_names_the_file_and_expected_size(tmp_path):
    prefix = str(tmp_path / "fixed")
    _save_symbol(_insightface_symbol(), prefix, size=112)
    model = load_model(prefix, 1)
    assert model.accepts((112, 112)) and not model.accepts((96, 96))
    with pytest.raises(DataError, match=r"lfw\.bin: images are 96x96.*expects 112x112"):
        model.check_input_size((96, 96), "lfw.bin")


def test_missing_checkpoint_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="m-0007.params"):
        _small_net().export(str(tmp_path / "m"), 3)
        load_model(str(tmp_path / "m"), 7)


def test_parse_models_lists_ranges_and_saved_epochs(tmp_path):
    net = _small_net()
    for epoch in (1, 2, 4):
        net.export(str(tmp_path / "m"), epoch)
    p = str(tmp_path / "m")
    assert parse_models([f"{p},3|1"]) == [(p, 3), (p, 1)]
    assert parse_models([f"{p},1-3"]) == [(p, 1), (p, 2)]
    assert parse_models([p]) == [(p, 1), (p, 2), (p, 4)]
    with pytest.raises(ValueError, match="epochs"):
        parse_models([f"{p},x"])
    with pytest.raises(DataError, match="no"):
        parse_models([str(tmp_path / "none")])


def test_low_light_is_ponce_formula():
    x = np.array([0, 1, 4, 100, 200, 255], dtype=np.uint8).reshape(1, 1, 1, 6).repeat(3, 1)
    out = transforms.apply_transform("low_light", x)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0, 0], [0, 2, 4, 20, 28, 31])


def test_other_transforms_keep_shape_and_change_pixels():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 3, 16, 16)).astype(np.uint8)
    for name in ("blur", "noise:5", "grayscale", "downscale:2"):
        out = transforms.apply_transform(name, x)
        assert out.shape == x.shape and out.dtype == np.uint8 and not np.array_equal(out, x)
    gray = transforms.apply_transform("grayscale", x)
    assert np.array_equal(gray[:, 0], gray[:, 2])
    np.testing.assert_array_equal(transforms.apply_transform("noise", x),
                                  transforms.apply_transform("noise", x))
    with pytest.raises(ValueError, match="low_light"):
        transforms.get_transform("darkness")


def test_embedder_takes_a_live_gluon_block_for_training_time_verification():
    net = _small_net()
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (20, 3, 16, 16)).astype(np.uint8)
    issame = np.arange(10) % 2 == 0
    plain, flipped = Embedder(net, batch_size=8).embed_all(images, progress=False)
    np.testing.assert_allclose(plain, net(mx.nd.array(images.astype(np.float32))).asnumpy(),
                               rtol=1e-5, atol=1e-5)
    res = verification_report(plain, flipped, issame, nfolds=2)
    both = plain.astype(np.float64) + flipped.astype(np.float64)
    assert res["acc"] == evaluate_embeddings(both, issame, 2)["acc"]
    assert res["acc_noflip"] == evaluate_embeddings(plain, issame, 2)["acc"]
    norms = np.r_[np.linalg.norm(plain, axis=1), np.linalg.norm(flipped, axis=1)]
    assert res["xnorm"] == pytest.approx(norms.mean())
    assert verification_report(plain, None, issame, nfolds=2)["acc"] == res["acc_noflip"]


def test_params_that_do_not_fit_the_symbol_name_the_parameter(tmp_path):
    """A .params saved from another network: the error names the parameter and both shapes,
    not 'pass --image-size' (no image size can fix it)."""
    prefix = str(tmp_path / "m")
    args, auxs = _save_symbol(_insightface_symbol(), prefix, size=10)
    args["pre_fc1_weight"] = mx.nd.zeros((6, 99))  # from a network with another layer width
    mx.model.save_checkpoint(prefix, 2, _insightface_symbol(), args, auxs)
    model = load_model(prefix, 2)
    with pytest.raises(DataError, match=r"m-0002\.params: parameter pre_fc1_weight has shape "
                                        r"\(6, 99\) but .*m-symbol\.json needs \(6, 256\)"):
        model.check_input_size((10, 10), "pairs.bin")
    load_model(prefix, 1).check_input_size((10, 10), "pairs.bin")  # the right file fits
