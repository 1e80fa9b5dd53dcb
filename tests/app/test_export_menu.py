"""File ▸ Export as PyTorch code… and File ▸ Export as ONNX…: the files written, the
extension added, the weights the Run panel uses inside the ONNX file, and the refusals in an
error box."""
from __future__ import annotations

import ast

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from PySide6.QtWidgets import QFileDialog, QMessageBox

from designer.app.run.controller import CLASSIC, RANDOM
from designer.core.analysis import Analysis
from designer.core.design import Design, Node
from designer.engine.classic import apply_classic_filters
from designer.engine.weights import expected_tensors, init_weights, load_weights_file
from designer.io.templates import find_template
from designer.io.trained import find_trained

from .test_run import load_sample, run_and_wait


def _answer(monkeypatch, path, chosen=""):
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), chosen))


def _errors(monkeypatch) -> list[str]:
    errors: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical",
                        lambda parent, title, text: errors.append(text))
    return errors


def _initializers(path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _assert_same(found: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(found) == set(want)
    for key, tensor in want.items():
        np.testing.assert_array_equal(found[key], np.asarray(tensor, np.float32), err_msg=key)


def _open(window, template_id: str) -> Design:
    design = find_template(template_id).load()
    window.document.replace(design, None)
    return window.document.design


def test_file_menu_has_both_exports_next_to_the_diagram(window):
    texts = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    at = texts.index("Export &diagram…")
    assert texts[at + 1:at + 3] == ["Export as &PyTorch code…", "Export as &ONNX…"]


def test_pytorch_code_is_written_with_its_extension_added(window, tmp_path, monkeypatch):
    design = _open(window, "resnet18")
    _answer(monkeypatch, tmp_path / "net", "Python code (*.py)")
    errors = _errors(monkeypatch)
    assert window.export_code_dialog()
    out = tmp_path / "net.py"
    text = out.read_text(encoding="utf-8")
    compile(text, str(out), "exec")
    classes = [n for n in ast.parse(text).body if isinstance(n, ast.ClassDef)]
    assert classes and any(isinstance(n, ast.FunctionDef) and n.name == "build_model"
                           for n in ast.parse(text).body)
    assert design.name in text
    assert errors == []
    assert f"Exported the PyTorch code to {out}" in window.statusBar().currentMessage()
    # a name typed with the extension keeps it as it is; cancelling writes nothing
    _answer(monkeypatch, tmp_path / "typed.py")
    assert window.export_code_dialog() and (tmp_path / "typed.py").exists()
    _answer(monkeypatch, "")
    assert not window.export_code_dialog()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".py") == ["net.py",
                                                                              "typed.py"]


def test_onnx_holds_the_shipped_trained_weights(window, tmp_path, monkeypatch):
    design = _open(window, "lenet5")
    model = find_trained(design)
    assert model is not None and window.runner.weights_mode == "trained"
    _answer(monkeypatch, tmp_path / "lenet", "ONNX model (*.onnx)")
    errors = _errors(monkeypatch)
    assert window.export_onnx_dialog()
    assert errors == []
    _assert_same(_initializers(tmp_path / "lenet.onnx"), load_weights_file(model.weights))
    message = window.statusBar().currentMessage()
    assert f"Exported the design as ONNX to {tmp_path / 'lenet.onnx'}" in message
    assert f"trained on {model.data}" in message


def test_onnx_holds_the_last_runs_weights(qtbot, window, tmp_path, monkeypatch):
    """After a run, exactly the tensors that ran (here with classic filters) go in."""
    _open(window, "lenet5")
    window.runner.set_weights_mode(CLASSIC)
    load_sample(window)
    result = run_and_wait(qtbot, window)
    assert window.export_onnx_to(tmp_path / "ran.onnx")
    _assert_same(_initializers(tmp_path / "ran.onnx"), result.network.weights)
    assert "classic filters" in window.statusBar().currentMessage()


def test_onnx_without_a_run_follows_the_weights_choice(window, tmp_path):
    design = _open(window, "tiny-vgg")
    shapes = expected_tensors(Analysis(design))
    # seeded random: the seed-0 weights
    window.runner.set_weights_mode(RANDOM)
    assert window.export_onnx_to(tmp_path / "seeded.onnx")
    _assert_same(_initializers(tmp_path / "seeded.onnx"), init_weights(shapes, 0))
    assert "random (seed 0)" in window.statusBar().currentMessage()
    # classic filters in the first convolution, seeded elsewhere
    window.runner.set_weights_mode(CLASSIC)
    assert window.export_onnx_to(tmp_path / "classic.onnx")
    classic, _, _ = apply_classic_filters(init_weights(shapes, 0), Analysis(design))
    _assert_same(_initializers(tmp_path / "classic.onnx"), classic)
    # weights handed to the Run panel (as after training): those
    mine = {k: np.full(s, 0.25, np.float32) for k, s in shapes.items()}
    window.runner.use_weights(mine, "mine.npz", "my own weights")
    assert window.export_onnx_to(tmp_path / "mine.onnx")
    _assert_same(_initializers(tmp_path / "mine.onnx"), mine)
    assert "my own weights" in window.statusBar().currentMessage()


def test_an_invalid_design_is_refused_with_the_reason(window, tmp_path, monkeypatch):
    design = Design("Broken")
    design.insert_node(Node("input", "Input", {"channels": 3, "height": 8, "width": 8}, (0, 0)))
    design.insert_node(Node("fc", "Linear", {"out_features": 4}, (0, 100)))
    design.connect("input", "fc")  # a Linear on a 3×8×8 map: needs a Flatten first
    window.document.replace(design, None)
    assert not window.document.analysis.valid
    errors = _errors(monkeypatch)
    _answer(monkeypatch, tmp_path / "broken")
    assert not window.export_onnx_dialog()
    assert not window.export_code_dialog()
    assert len(errors) == 2
    assert errors[0].startswith("Can't export as ONNX.")
    assert "fc: Linear needs a flat" in errors[0]
    assert "can't be exported" in errors[0]
    assert errors[1].startswith("Can't export the PyTorch code.") and "fc" in errors[1]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["code", "onnx"])
def test_an_unwritable_path_is_refused(window, tmp_path, monkeypatch, kind):
    _open(window, "lenet5")
    errors = _errors(monkeypatch)
    target = tmp_path / "nowhere" / f"net.{'py' if kind == 'code' else 'onnx'}"
    export = window.export_code_to if kind == "code" else window.export_onnx_to
    assert not export(target)
    assert len(errors) == 1 and "does not exist" in errors[0]
    assert not target.parent.exists()
