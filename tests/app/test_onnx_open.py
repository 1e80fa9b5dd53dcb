"""File ▸ Open and File ▸ Import ONNX model… read an .onnx model as a new, unsaved design whose
weights the Run panel uses; a model that can't be read is explained and the design kept. Long
file work runs on a worker while the window keeps drawing (designer.app.busy)."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from designer.app import busy
from designer.app.busy import run_busy
from designer.app.run.controller import FILE
from tests.helpers import lenet_onnx

from .test_run import load_sample, run_and_wait


@pytest.fixture
def model(tmp_path):
    return lenet_onnx(tmp_path, seed=9, name="digits.onnx")


def _errors(monkeypatch) -> list[str]:
    errors: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: errors.append(text))
    return errors


def test_opening_an_onnx_model_imports_it_with_its_weights(qtbot, window, model):
    design, net, path = model
    assert window.open_path(path)
    doc = window.document
    assert [(n.id, n.type) for n in doc.design.nodes] == [(n.id, n.type) for n in design.nodes]
    assert doc.path is None and doc.modified  # unsaved: Save asks for a design file's name
    runner = window.runner
    assert runner.weights_mode == FILE
    assert "digits.onnx" in runner.weights_note()
    for key, value in net.weights.items():
        np.testing.assert_array_equal(runner._file_weights[key], value)
    assert str(path) in window.recent_files()
    assert "Imported digits.onnx" in window.statusBar().currentMessage()
    # a run uses the model's weights: its logits are the engine's with them
    load_sample(window, "Digit 3")
    result = run_and_wait(qtbot, window)
    x = window.runner.network_input()
    last = net.order[-1]
    np.testing.assert_allclose(np.reshape(result.activations[last], -1), net.forward(x)[last][0],
                               rtol=1e-5, atol=1e-6)


def test_import_dialog_and_open_dialog_accept_onnx(window, model, monkeypatch):
    _, _, path = model
    filters = []

    def answer(parent, title, folder, file_filter):
        filters.append(file_filter)
        return str(path), ""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", answer)
    window.import_dialog()
    assert window.document.design.node("conv1").type == "Conv2d"
    window.document.undo_stack.setClean()
    window.open_dialog()
    assert "*.onnx" in filters[0] and "*.onnx" in filters[1] and "*.json" in filters[1]
    actions = {a.text(): a for a in window.menuBar().actions()[0].menu().actions()}
    assert actions["&Import ONNX model…"].shortcut().toString() == "Ctrl+Shift+O"


@pytest.mark.parametrize("content", [b"", b"garbage" * 10])
def test_a_broken_model_is_explained_and_the_design_kept(window, tmp_path, monkeypatch,
                                                         content):
    before = window.document.design
    errors = _errors(monkeypatch)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    assert not window.open_path(bad)
    assert len(errors) == 1 and errors[0].startswith("Can't import this model.")
    assert "bad.onnx" in errors[0] and "Traceback" not in errors[0]
    assert window.document.design is before


def test_a_folder_named_onnx_is_refused_without_reading(window, tmp_path, monkeypatch):
    errors = _errors(monkeypatch)
    (tmp_path / "folder.onnx").mkdir()
    assert not window.open_path(tmp_path / "folder.onnx")
    assert len(errors) == 1 and "folder.onnx" in errors[0]


def test_a_dropped_model_is_imported(window, model):
    design, _, path = model
    window.open_dropped([str(path)])
    assert len(window.document.design.nodes) == len(design.nodes)


def test_run_busy_returns_the_result_and_raises_the_error(window):
    assert run_busy(window, "Working…", lambda: 6 * 7) == 42

    def fail():
        raise ValueError("no good")
    with pytest.raises(ValueError, match="no good"):
        run_busy(window, "Working…", fail)


def test_long_work_shows_a_dialog_and_keeps_the_event_loop_going(window, monkeypatch):
    monkeypatch.setattr(busy, "QUIET_S", 0.05)
    ticks, seen = [], []
    timer = QTimer(interval=20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()

    def work():
        time.sleep(0.5)
        seen.append([w for w in QApplication.topLevelWidgets()
                     if isinstance(w, busy._Working) and w.isVisible()])
        return threading.current_thread().name
    name = run_busy(window, "Writing model.onnx…", work)
    timer.stop()
    assert name == "cnn-designer-busy"
    assert len(ticks) >= 5  # the GUI thread kept running timers while the work went on
    assert seen and seen[0] and seen[0][0].labelText() == "Writing model.onnx…"
    assert not any(isinstance(w, busy._Working) and w.isVisible()
                   for w in QApplication.topLevelWidgets())
