"""Every config family trains: a few steps on one repeated tiny batch lower the loss.

Overfitting one batch is the cheapest check that a configuration's network, objective
(margin softmax, center loss, attribute heads), schedule and optimisers are wired together.
"""
import itertools
import json
import os

import numpy as np
import pytest

from recognition.commands import eval_attributes
from recognition.config import load_config
from recognition.errors import DataError
from recognition.parallel.distributed import init_workers
from recognition.training.run import Run
from recognition.training.schedules import StepSchedule
from tests.support import REPO
from tests.support.tiny_faces import tiny_faces

CONFIGS = os.path.join(REPO, "configs")
# one config per family, with an input size that keeps its last feature map >= 2x2
FAMILIES = {
    "synthetic": 112, "ms1mv2_r50": 64, "ms1mv2_r100": 64, "ms1mv2_incres_v2_trsf_prelu": 64,
    "vggface2_incres_v1_trsf_leaky": 112, "casia_r50_arcface": 64, "casia_effb3": 64,
    "webface_mbv2_center": 112, "adience_facialnet": 75, "ms1mv2_r50_softmax": 64,
}


@pytest.fixture(scope="module")
def tiny_rec(tmp_path_factory):
    return tiny_faces(str(tmp_path_factory.mktemp("families")), seed=2, attributes=True)


def overfit(config_path, size, rec, output, steps=6, **extra):
    """Train `steps` steps on one repeated batch; the losses. Without an explicit `lr`, plain
    SGD with the step size of `first_order_lr`."""
    overrides = dict(rec=os.path.join(rec, "train.rec"), image_size=[size, size], batch_size=4,
                     max_steps=steps, lr_steps=[], warmup_steps=0,
                     reference_batch_size=0, verify_every=0, save_every=steps, log_every=100,
                     augment={}, preprocess_threads=1, output=output)
    overrides.update(extra)
    calibrate = "lr" not in overrides
    if calibrate:
        overrides["momentum"] = 0.0
    run = Run(load_config(config_path, overrides), init_workers())
    run.restore()
    first = next(iter(run.data))
    if calibrate:
        run.schedule = StepSchedule(first_order_lr(run, first), [])
    run.batches = lambda skip=0: itertools.repeat(first)
    losses = []
    step = run.train_step
    run.train_step = lambda batch: losses.append(step(batch)[0]) or (losses[-1], 0.01)
    run.train(stop=False)
    return [as_float(loss) for loss in losses]


def as_float(loss):
    """A step's loss: a float, or a 1-element NDArray (read from the device here)."""
    return float(loss.asscalar()) if hasattr(loss, "asscalar") else float(loss)


def first_order_lr(run, batch, fraction=0.2):
    """The lr whose first step lowers the loss by `fraction` of it to first order
    (lr * |grad|^2 = fraction * loss). The families' gradient scales differ by 200x (a batch
    of 4 through MobileNetV2's BatchNorms is very sharp), and one fixed lr overshoots some of
    them, so that whether 'the loss falls' depended on rounding, i.e. on the CPU's kernels."""
    ctx = run.workers.ctx
    loss = as_float(run.objective.step(run.net, batch.data[0].as_in_context(ctx),
                                       batch.label[0].as_in_context(ctx), run.precision))
    squared = sum(float((p.grad() ** 2).sum().asscalar())
                  for p in run.net.collect_params().values() if p.grad_req != "null")
    return fraction * loss / squared


# FacialNet's heads drop half their units at random: on one batch of 4 the loss of a step then
# depends on the draw, not only on the weights (test_facialnet_learns.py trains it with dropout,
# over enough steps); here its wiring is checked without the noise.
ONE_BATCH_OVERRIDES = {"adience_facialnet": {"network_kwargs": {"dropout": False}}}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_config_family_learns_one_batch(name, tiny_rec, tmp_path):
    losses = overfit(os.path.join(CONFIGS, f"{name}.py"), FAMILIES[name], tiny_rec,
                     str(tmp_path), **ONE_BATCH_OVERRIDES.get(name, {}))
    print(name, [round(v, 3) for v in losses])
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < 0.8 * losses[0] and max(losses[1:]) < losses[0], losses
    if name == "adience_facialnet":  # attribute networks log each output's accuracy
        log = open(tmp_path / "train.log").read()
        assert "acc[1] " in log and "acc[2] " in log


def test_attribute_network_scores_its_held_out_rec(tiny_rec, tmp_path):
    """adience_facialnet with val_rec: each output's held-out accuracy is logged (1-off for the
    age groups) and the best checkpoint follows the mean accuracy."""
    overfit(os.path.join(CONFIGS, "adience_facialnet.py"), 75, tiny_rec, str(tmp_path),
            steps=4, verify_every=2, lr=0.001,
            val_rec=os.path.join(tiny_rec, "verify_attributes.rec"))
    log = open(tmp_path / "train.log").read()
    lines = [ln for ln in log.splitlines() if "verification: gender " in ln]
    assert len(lines) == 2 and all("age_group " in ln and "(1-off " in ln for ln in lines)
    state = json.load(open(tmp_path / "state-4.json"))
    assert state["best"]["target"] == "mean" and [h["step"] for h in state["history"]] == [2, 4]
    assert all(0 <= h["mean"] <= 1 for h in state["history"])
    best = state["best"]["step"]
    assert os.path.isfile(tmp_path / f"best-{best:04d}.params")
    # the evaluation tool scores the exported best checkpoint as training did
    report = str(tmp_path / "attributes.json")
    assert eval_attributes.main([
        "--model", f"{tmp_path / 'best'},{best}", "--rec",
        os.path.join(tiny_rec, "verify_attributes.rec"), "--image-size", "75,75",
        "--output", report]) == 0
    results = {r["name"]: r["acc"] for r in json.load(open(report))["results"]}
    logged = next(h for h in state["history"] if h["step"] == best)
    assert results == pytest.approx({k: logged[k] for k in ("gender", "age_group")}, abs=1e-6)


def test_unknown_best_target_for_attributes_is_an_error(tiny_rec, tmp_path):
    with pytest.raises(DataError, match="best_target='age' is not one of"):
        overfit(os.path.join(CONFIGS, "adience_facialnet.py"), 75, tiny_rec, str(tmp_path),
                steps=2, verify_every=2, best_target="age",
                val_rec=os.path.join(tiny_rec, "verify_attributes.rec"))


def test_softmax_then_arcface_fine_tune(tiny_rec, tmp_path):
    stage1 = str(tmp_path / "softmax")
    overfit(os.path.join(CONFIGS, "ms1mv2_r50_softmax.py"), 64, tiny_rec, stage1)
    losses = overfit(os.path.join(CONFIGS, "ms1mv2_r50_arcface_finetune.py"), 64, tiny_rec,
                     str(tmp_path / "arcface"), pretrained=os.path.join(stage1, "model,6"))
    assert losses[-1] < losses[0], losses
    log = open(tmp_path / "arcface" / "train.log").read()
    assert f"fine-tuning from {os.path.join(stage1, 'model-0006.params')}" in log


def insightface_style_checkpoint(prefix, size=112):
    """data -> (x-127.5)/128 -> conv -> pre_fc1 -> BN `fc1` -> fc7 -> SoftmaxOutput."""
    import mxnet as mx

    data = mx.sym.var("data")
    x = mx.sym.Convolution((data - 127.5) * 0.0078125, num_filter=8, kernel=(3, 3),
                           stride=(4, 4), name="conv0")
    x = mx.sym.Activation(x, act_type="relu")
    x = mx.sym.FullyConnected(x, num_hidden=16, name="pre_fc1")
    emb = mx.sym.BatchNorm(x, fix_gamma=True, name="fc1")
    sym = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(emb, num_hidden=7, name="fc7"),
                               name="softmax")
    arg_shapes, _, aux_shapes = sym.infer_shape(data=(1, 3, size, size), softmax_label=(1,))
    rng = np.random.default_rng(0)
    args = {n: mx.nd.array(rng.normal(0, 0.05, s)) for n, s in zip(sym.list_arguments(),
                                                                    arg_shapes)
            if n not in ("data", "softmax_label")}
    auxs = {n: mx.nd.ones(s) for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    mx.model.save_checkpoint(prefix, 3, sym, args, auxs)
    return args


def test_fine_tune_an_insightface_model_zoo_checkpoint(tiny_rec, tmp_path):
    import mxnet as mx

    args = insightface_style_checkpoint(str(tmp_path / "zoo"))
    output = str(tmp_path / "run")
    losses = overfit(os.path.join(CONFIGS, "synthetic.py"), 112, tiny_rec, output,
                     network_checkpoint=f"{tmp_path / 'zoo'},3", embedding_size=16)
    assert losses[-1] < losses[0], losses
    sym, trained, _ = mx.model.load_checkpoint(os.path.join(output, "model"), 6)
    assert sym.list_outputs() == ["fc1_output"]  # the classifier fc7 is gone
    assert "fc7_weight" not in trained
    moved = np.abs(trained["pre_fc1_weight"].asnumpy() - args["pre_fc1_weight"].asnumpy())
    assert 0 < moved.max() < 0.5  # started from the checkpoint, then trained
