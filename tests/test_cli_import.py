"""`cnn-designer import MODEL.onnx -o DESIGN.json [--weights W.npz]` (contract §4) and
`designer.import_onnx` (§5): the design and weights written, and the refusals (exit 2)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import designer
from designer.cli import main
from tests.helpers import lenet_onnx


@pytest.fixture
def model(tmp_path):
    return lenet_onnx(tmp_path, seed=4)


def test_import_writes_the_design_and_its_weights_beside_it(model, tmp_path, capsys):
    design, net, path = model
    out = tmp_path / "imported.json"
    assert main(["import", str(path), "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    assert f"wrote the design to {out} and its weights to {tmp_path / 'imported.npz'}" \
        in printed.out
    # its parameters as the summary counts them (BatchNorm's running statistics are not)
    assert f"{designer.summarize(design)['total_params']:,} parameters;" in printed.out
    loaded = designer.load_design(out)
    assert [(n.id, n.type) for n in loaded.nodes] == [(n.id, n.type) for n in design.nodes]
    assert all(n["position"] is not None for n in json.loads(out.read_text())["nodes"])
    with np.load(tmp_path / "imported.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(net.weights)
        for key in archive.files:
            np.testing.assert_array_equal(archive[key], net.weights[key])
    # the written pair runs as the original
    last = net.order[-1]
    x = np.random.default_rng(0).standard_normal((2, *net.input_shape)).astype(np.float32)
    again = designer.build(loaded, weights=str(tmp_path / "imported.npz"))
    np.testing.assert_allclose(again.forward(x)[last], net.forward(x)[last],
                               rtol=1e-5, atol=1e-6)


def test_import_weights_option_names_the_weights_file(model, tmp_path):
    _, net, path = model
    out, weights = tmp_path / "d.json", tmp_path / "w" / "trained.npz"
    weights.parent.mkdir()
    assert main(["import", str(path), "-o", str(out), "--weights", str(weights)]) == 0
    assert out.exists() and weights.exists() and not (tmp_path / "d.npz").exists()


def test_python_api_import_onnx(model):
    design, net, path = model
    got, weights = designer.import_onnx(path)
    assert designer.summarize(got)["total_params"] == designer.summarize(design)["total_params"]
    assert sorted(weights) == sorted(net.weights)


def test_unsupported_model_exits_2_naming_node_and_op(tmp_path, capsys):
    graph = helper.make_graph(
        [helper.make_node("LpNormalization", ["x"], ["y"], name="norm7")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    out = tmp_path / "d.json"
    assert main(["import", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert 'odd.onnx: ONNX node "norm7" (LpNormalization)' in err and "supported:" in err
    assert "Traceback" not in err
    assert not out.exists() and not (tmp_path / "d.npz").exists()


@pytest.mark.parametrize("content, words", [
    (b"\x08\x07garbage \xff\xff\xff not onnx", "is not an ONNX model"),
    (None, "can't read"),
])
def test_unreadable_model_exits_2_with_a_message(tmp_path, capsys, content, words):
    path = tmp_path / "m.onnx"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "d.json"
    assert main(["import", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnn-designer: ") and "Traceback" not in err
    assert ("is not an ONNX model" if content is not None else "m.onnx") in err
    assert not out.exists()


def test_unwritable_output_exits_2_before_reading(model, tmp_path, capsys):
    _, _, path = model
    assert main(["import", str(path), "-o", str(tmp_path / "no" / "such" / "d.json")]) == 2
    assert "cnn-designer: " in capsys.readouterr().err
    same = tmp_path / "d.npz"
    assert main(["import", str(path), "-o", str(same), "--weights", str(same)]) == 2
    assert "can't be the same file" in capsys.readouterr().err
