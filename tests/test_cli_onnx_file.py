"""Every command that takes a design FILE also accepts an ONNX model, read as `import` reads it,
with the model's own weights where no --weights file is given (contract §4)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import designer
from designer.cli import main
from tests.helpers import lenet_onnx


@pytest.fixture
def model(tmp_path):
    return lenet_onnx(tmp_path, seed=7)


def test_summary_of_an_onnx_model_equals_the_designs(model, capsys):
    design, _, path = model
    assert main(["summary", str(path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = designer.summarize(design)
    assert got["total_params"] == want["total_params"]
    assert got["total_macs"] == want["total_macs"]
    assert [n["output_shape"] for n in got["nodes"]] == [n["output_shape"] for n in want["nodes"]]


def test_run_uses_the_models_own_weights(model, tmp_path, capsys):
    design, net, path = model
    x = np.random.default_rng(1).random((1, *net.input_shape), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--out", str(out)]) == 0
    assert "weights: from lenet.onnx (the model's own)" in capsys.readouterr().out
    with np.load(out / "weights.npz") as used:
        for key, value in net.weights.items():
            np.testing.assert_array_equal(used[key], value)
    last = net.order[-1]
    with np.load(out / "activations.npz") as acts:
        np.testing.assert_allclose(acts[last], net.forward(x)[last], rtol=1e-5, atol=1e-6)


def test_run_with_seed_says_the_models_weights_were_left_out(model, tmp_path, capsys):
    _, net, path = model
    np.save(tmp_path / "x.npy", np.zeros((1, *net.input_shape), np.float32))
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--seed", "3",
                 "--out", str(tmp_path / "o")]) == 0
    assert "leave out --random and --seed to use the weights in lenet.onnx" \
        in capsys.readouterr().out
    with np.load(tmp_path / "o" / "weights.npz") as used:
        key = next(iter(net.weights))
        assert not np.array_equal(used[key], net.weights[key])


def test_export_of_an_onnx_model_keeps_its_weights(model, tmp_path):
    _, net, path = model
    out = tmp_path / "again.onnx"
    assert main(["export", str(path), "-o", str(out)]) == 0
    design, weights = designer.import_onnx(out)
    assert sorted(weights) == sorted(net.weights)
    for key, value in net.weights.items():
        np.testing.assert_array_equal(weights[key], value)
    assert main(["export", str(path), "-o", str(tmp_path / "code.py")]) == 0
    assert "class " in (tmp_path / "code.py").read_text()


def test_train_starts_from_the_models_weights(model, tmp_path, capsys):
    _, net, path = model
    out = tmp_path / "t"
    assert main(["train", str(path), "--data", "builtin:digits", "--epochs", "1",
                 "--out", str(out), "--optimizer", "sgd", "--lr", "1e-12", "--momentum", "0"]) == 0
    assert "Starting from the weights in lenet.onnx" in capsys.readouterr().out
    with np.load(out / "weights.npz") as trained:  # a tiny learning rate changes next to nothing
        for key, value in net.weights.items():
            if not key.endswith(("running_mean", "running_var")):
                np.testing.assert_allclose(trained[key], value, atol=1e-6)


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"\x08\x07\x12"])
def test_a_broken_onnx_file_is_exit_2_with_a_message(tmp_path, capsys, content):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert "broken.onnx" in err and "Traceback" not in err


def test_a_folder_named_onnx_is_refused(tmp_path, capsys):
    (tmp_path / "dir.onnx").mkdir()
    assert main(["summary", str(tmp_path / "dir.onnx")]) == 2
    assert "dir.onnx" in capsys.readouterr().err
