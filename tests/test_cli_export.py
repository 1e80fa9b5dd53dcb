"""`cnn-designer export FILE -o OUT` (contract §4) and `designer.export` (§5): PyTorch code, and
the refusals: unknown extension, unwritable OUT, invalid design, unreadable file."""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import designer
from designer.cli import main
from designer.io.pytorch import pytorch_code
from designer.io.templates import find_template
from tests.helpers import SEED

BAD = {"format": "cnn-designer", "version": 1, "name": "too small",
       "nodes": [{"id": "input", "type": "Input", "params": {"channels": 1, "height": 3, "width": 3}},
                 {"id": "conv", "type": "Conv2d", "params": {"out_channels": 1, "kernel_size": 5}}],
       "edges": [["input", "conv"]]}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "seed.json").write_text(json.dumps(SEED), encoding="utf-8")
    (tmp_path / "bad.json").write_text(json.dumps(BAD), encoding="utf-8")
    return tmp_path


def test_export_py_writes_the_designs_code(files, capsys):
    out = files / "model.py"
    assert main(["export", str(files / "seed.json"), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text == pytorch_code(designer.load_design(SEED))
    tree = ast.parse(text)
    assert [n.name for n in tree.body if isinstance(n, ast.ClassDef)] == ["SeedExample"]
    assert "self.conv1 = nn.Conv2d(3, 10, kernel_size=5, padding=2)" in text
    printed = capsys.readouterr()
    assert f"Wrote Seed example as PyTorch code to {out}" in printed.out
    assert printed.err == ""


def test_export_py_with_weights_warns_they_are_not_in_the_code(files, capsys):
    weights = files / "w.npz"
    weights.write_bytes(b"")  # not read: code holds no weights
    out = files / "model.PY"
    assert main(["export", str(files / "seed.json"), "-o", str(out), "--weights", str(weights)]) == 0
    assert out.is_file()
    assert "--weights and --seed are not used" in capsys.readouterr().err


def test_export_of_a_template_with_torchvision_ids(files):
    path = find_template("alexnet").path
    out = files / "alexnet.py"
    assert main(["export", str(path), "-o", str(out)]) == 0
    assert 'self.features["0"] = nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2)' in out.read_text()


@pytest.mark.parametrize("name", ["model.txt", "model", "model.json"])
def test_unknown_extension_lists_the_supported_ones(files, capsys, name):
    out = files / name
    assert main(["export", str(files / "seed.json"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    for kind in (".py", ".onnx", ".svg", ".pdf", ".png"):
        assert kind in err
    assert not out.exists()


def test_unwritable_out(files, capsys):
    assert main(["export", str(files / "seed.json"), "-o", str(files / "no" / "such" / "m.py")]) == 2
    assert "does not exist" in capsys.readouterr().err
    folder = files / "dir.py"
    folder.mkdir()
    assert main(["export", str(files / "seed.json"), "-o", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_unwritable_out_is_refused_before_the_file_is_replaced(files, capsys, monkeypatch):
    out = files / "model.py"
    out.write_text("keep me", encoding="utf-8")

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device", str(out))

    monkeypatch.setattr("designer.core.atomic.write_atomic", failing)
    assert main(["export", str(files / "seed.json"), "-o", str(out)]) == 2
    assert out.read_text(encoding="utf-8") == "keep me"
    assert "model.py" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["bad.py", "bad.onnx"])
def test_invalid_design_exits_1_for_code_and_onnx(files, capsys, name):
    out = files / name
    assert main(["export", str(files / "bad.json"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "conv:" in err and "has errors" in err and ".svg" in err
    assert not out.exists()


def test_unreadable_file_exits_2(files, capsys):
    assert main(["export", str(files / "missing.json"), "-o", str(files / "m.py")]) == 2
    assert "missing.json" in capsys.readouterr().err
    (files / "broken.json").write_text("{", encoding="utf-8")
    assert main(["export", str(files / "broken.json"), "-o", str(files / "m.py")]) == 2
    assert not (files / "m.py").exists()


def test_ids_pytorch_cannot_take_exit_1(files, capsys):
    data = json.loads(json.dumps(SEED))
    data["nodes"][1]["id"] = "forward"
    data["edges"] = [["input", "forward"]]
    (files / "odd.json").write_text(json.dumps(data), encoding="utf-8")
    assert main(["export", str(files / "odd.json"), "-o", str(files / "odd.py")]) == 1
    assert 'node "forward"' in capsys.readouterr().err


def test_bad_scale_is_a_usage_error(files, capsys):
    assert main(["export", str(files / "seed.json"), "-o", str(files / "m.png"), "--scale", "0"]) == 2


def test_python_api_export(files):
    out = files / "api.py"
    designer.export(str(files / "seed.json"), out)
    assert out.read_text(encoding="utf-8") == pytorch_code(designer.load_design(SEED))
    with pytest.raises(designer.InvalidDesign, match="conv"):
        designer.export(BAD, files / "bad.py")
    with pytest.raises(ValueError, match=r"\.onnx"):
        designer.export(SEED, files / "m.txt")
    assert not (files / "bad.py").exists() and not (files / "m.txt").exists()


def test_python_api_reports_a_missing_part(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "designer.io.onnx_export", None)  # import fails
    with pytest.raises(designer.ExportUnavailable, match="ONNX export is not available"):
        designer.export(SEED, files / "m.onnx")
    assert main(["export", str(files / "seed.json"), "-o", str(files / "m.onnx")]) == 2


def test_an_invalid_design_still_exports_its_diagram(files, capsys):
    out = files / "bad.svg"
    assert main(["export", str(files / "bad.json"), "-o", str(out)]) == 0
    assert b"<svg" in out.read_bytes() and b"conv" in out.read_bytes()
    assert f"as an SVG diagram to {out}" in capsys.readouterr().out


def test_export_onnx_takes_the_seed_or_the_weights_file(files, capsys):
    import onnx
    from onnx import numpy_helper

    from designer.engine.weights import save_weights_file

    def conv_weight(path):
        tensors = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
        return next(v for k, v in tensors.items() if k.endswith("conv1.weight"))

    seed = files / "seed.json"
    assert main(["export", str(seed), "-o", str(files / "s0.onnx")]) == 0
    assert main(["export", str(seed), "-o", str(files / "s3.onnx"), "--seed", "3"]) == 0
    net3 = designer.build(SEED, seed=3)
    assert (conv_weight(files / "s3.onnx") == net3.weights["conv1.weight"]).all()
    assert not (conv_weight(files / "s0.onnx") == net3.weights["conv1.weight"]).all()
    save_weights_file(net3.weights, files / "w.npz")
    assert main(["export", str(seed), "-o", str(files / "w.onnx"), "--weights", str(files / "w.npz")]) == 0
    assert (conv_weight(files / "w.onnx") == net3.weights["conv1.weight"]).all()
    (files / "broken.npz").write_bytes(b"not an archive")
    assert main(["export", str(seed), "-o", str(files / "b.onnx"), "--weights", str(files / "broken.npz")]) == 2
    assert "broken.npz" in capsys.readouterr().err and not (files / "b.onnx").exists()


def test_export_onnx_takes_the_shipped_trained_weights_by_default(tmp_path, capsys):
    import onnx
    from onnx import numpy_helper

    from designer.engine.weights import load_weights_file
    from designer.io.trained import find_trained

    design_path = Path(find_template("lenet5").path)
    out = tmp_path / "lenet.onnx"
    assert main(["export", str(design_path), "-o", str(out)]) == 0
    model = find_trained(find_template("lenet5").load())
    assert f"weights: {model.describe()}" in capsys.readouterr().out
    tensors = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(out)).graph.initializer}
    for key, value in load_weights_file(model.weights).items():
        np.testing.assert_array_equal(tensors[key], value)
    assert main(["export", str(design_path), "-o", str(tmp_path / "r.onnx"), "--seed", "0"]) == 0
    assert "weights: random (seed 0) — untrained" in capsys.readouterr().out
