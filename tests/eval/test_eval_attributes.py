"""Held-out attribute accuracy (FacialNet paper): the metric against NumPy by hand, reading a
labelled `.rec` written by stock MXNet, and clear errors for records without attribute labels."""
import os

import cv2
import mxnet as mx
import numpy as np
import pytest

from recognition.errors import DataError
from recognition.eval.attributes import (attribute_report, format_attribute_report,
                                         load_labelled_images, predict_attributes)


def test_exact_and_one_off_accuracy_by_hand():
    labels = np.array([[0, 3], [1, 0], [1, 7], [0, 5]])
    gender = np.array([[2.0, 1.0], [0.1, 0.9], [0.6, 0.4], [0.3, 0.2]])   # argmax 0 1 0 0
    age = np.zeros((4, 8))
    age[[0, 1, 2, 3], [3, 2, 6, 5]] = 1.0                                   # off by 0 2 1 0
    report = attribute_report([gender, age], labels, ["gender", "age_group"])
    assert report[0] == {"name": "gender", "acc": 0.75, "one_off": None, "classes": 2,
                         "count": 4}
    assert report[1]["acc"] == 0.5 and report[1]["one_off"] == 0.75
    assert format_attribute_report(report) == "gender 75.00%, age_group 50.00% (1-off 75.00%)"


def test_labels_outside_the_classes_are_an_error():
    with pytest.raises(DataError, match="labels span 0..2 but the network has 2 classes"):
        attribute_report([np.zeros((2, 2))], np.array([[0], [2]]))


def _write_rec(prefix, labels, size=24):
    writer = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "w")
    images = []
    for key, label in enumerate(labels):
        img = np.full((size, size, 3), 10 * key, np.uint8)
        images.append(img)
        header = mx.recordio.IRHeader(0, label, key, 0)
        writer.write_idx(key, mx.recordio.pack(header, cv2.imencode(".png", img)[1].tobytes()))
    writer.close()
    return images


def test_load_labelled_images_from_a_stock_mxnet_rec(tmp_path):
    prefix = str(tmp_path / "val")
    labels = [[5.0, 1.0, 3.0], [6.0, 0.0, 7.0], [6.0, 1.0, 0.0]]
    images = _write_rec(prefix, labels)
    got, got_labels = load_labelled_images(prefix + ".rec", 2)
    assert got.shape == (3, 3, 24, 24) and got.dtype == np.uint8
    assert np.array_equal(got[1].transpose(1, 2, 0), images[1][:, :, ::-1])
    assert got_labels.tolist() == [[1, 3], [0, 7], [1, 0]]
    resized, _ = load_labelled_images(prefix + ".rec", 2, image_size=(16, 12))
    assert resized.shape == (3, 3, 16, 12)


def test_a_rec_without_attribute_labels_names_the_fix(tmp_path):
    prefix = str(tmp_path / "plain")
    _write_rec(prefix, [3.0, 4.0])
    with pytest.raises(DataError, match="carry 1 label value.*--pack-label"):
        load_labelled_images(prefix + ".rec", 2)
    with pytest.raises(DataError, match="not found"):
        load_labelled_images(str(tmp_path / "missing.rec"), 2)


def test_predict_attributes_batches_every_output():
    class TwoHeads(mx.gluon.Block):
        def forward(self, x):
            m = x.mean(axis=(1, 2, 3))
            return mx.nd.stack(m, -m, axis=1), mx.nd.stack(-m, m, 2 * m, axis=1)

    images = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((5, 3, 4, 4), np.uint8)
    out = predict_attributes(TwoHeads(), images, batch_size=2)
    assert [o.shape for o in out] == [(5, 2), (5, 3)]
    np.testing.assert_allclose(out[1][:, 2], 2 * np.arange(5))


def test_cli_errors_are_one_line(tmp_path, capsys):
    from recognition.commands.eval_attributes import main

    prefix = str(tmp_path / "val")
    _write_rec(prefix, [[0.0, 1.0, 2.0]])
    assert main(["--model", str(tmp_path / "none") + ",3", "--rec", prefix + ".rec"]) == 2
    assert "none-symbol.json: checkpoint file not found" in capsys.readouterr().err
    assert main(["--model", "no-epoch", "--rec", prefix + ".rec"]) == 2
    assert "--model must be 'prefix,epoch'" in capsys.readouterr().err


def test_output_names_fill_in_missing_ones():
    from recognition.eval.attributes import output_names

    assert output_names(["gender", "age_group"], 2) == ["gender", "age_group"]
    assert output_names(["gender"], 3) == ["gender", "attr2", "attr3"]
    assert output_names(None, 2) == ["attr1", "attr2"]
    assert output_names(["a", "b", "c"], 2) == ["a", "b"]
    with pytest.raises(ValueError, match=r"2 outputs but 3 attributes were asked for \(a, b, c\)"):
        attribute_report([np.zeros((1, 2))] * 2, np.zeros((1, 3), int), ["a", "b", "c"])
