"""Every failure of saving, and odd text getting in, becomes a message: never a traceback."""
from __future__ import annotations

import errno
import json
from types import SimpleNamespace

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

from designer.app import document as document_module
from designer.app.run import panel as run_panel_module
from designer.core.design import GraphError, Node
from designer.io.templates import find_template

SURROGATE = "in\ud800"


def _encode_error():
    try:
        SURROGATE.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc
    raise AssertionError("a lone surrogate encodes")


FAILURES = {
    "encoding": (_encode_error(), "utf-8"),
    "disk full": (OSError(errno.ENOSPC, "No space left on device"), "no space left"),
    "permission": (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    "value": (ValueError("embedded null byte"), "embedded null byte"),
    "memory": (MemoryError(), "not enough memory"),
}


def test_save_as_turns_any_write_failure_into_a_message(window, monkeypatch, tmp_path):
    window.new_from_template(find_template("lecture-conv-layer"))
    window.document.set_param("conv1", "padding", 1)
    target = tmp_path / "mine.json"
    monkeypatch.setattr("designer.app.files.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(target), ""))
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args[2]))
    for kind, (exc, words) in FAILURES.items():
        def fail(design, path, exc=exc):
            raise exc

        monkeypatch.setattr(document_module, "save_design", fail)
        shown.clear()
        assert not window.save_as(), kind
        assert len(shown) == 1 and words in shown[0].lower() and str(target) in shown[0], kind
        # nothing pretends it was saved
        assert window.document.modified and window.document.path is None, kind


def test_saving_into_a_folder_that_is_not_there_says_so(window, monkeypatch, tmp_path):
    window.new_from_template(find_template("lecture-conv-layer"))
    target = tmp_path / "missing" / "mine.json"
    monkeypatch.setattr("designer.app.files.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(target), ""))
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args[2]))
    assert not window.save_as()
    assert shown and "does not exist" in shown[0]


def test_saving_weights_turns_any_write_failure_into_a_message(window, monkeypatch, tmp_path):
    monkeypatch.setattr(run_panel_module.QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "w.npz"), ""))
    for kind, (exc, words) in FAILURES.items():
        def fail(path, exc=exc):
            raise exc

        monkeypatch.setattr(window.runner, "result",
                            SimpleNamespace(network=SimpleNamespace(save_weights=fail)))
        window.run_panel.save_weights_dialog()
        text = window.run_panel.status.text()
        assert text.startswith("Can't save the weights") and words in text.lower(), kind


def test_an_id_that_cant_be_saved_is_refused_when_renaming(window, monkeypatch):
    window.new_from_template(find_template("lecture-conv-layer"))
    doc = window.document
    with pytest.raises(GraphError, match="can't be saved"):
        doc.rename("conv1", SURROGATE)
    assert doc.undo_stack.count() == 0 and "conv1" in doc.design
    # the inspector says so (Qt's line edit itself drops lone surrogates; the text could
    # still come from elsewhere)
    window.scene.select_node("conv1")
    inspector = window.inspector
    monkeypatch.setattr(inspector.id_edit, "text", lambda: SURROGATE)
    inspector._rename()
    assert "can't be saved" in inspector.id_error.text() and not inspector.id_error.isHidden()
    assert doc.design.node_ids == ["input", "conv1"] and doc.undo_stack.count() == 0


def test_an_id_that_cant_be_saved_is_refused_when_pasting(window):
    window.new_from_template(find_template("lecture-conv-layer"))
    doc = window.document
    fragment = {"format": "cnn-designer", "version": 1,
                "nodes": [{"id": SURROGATE, "type": "ReLU", "params": {}}], "edges": []}
    # JSON's \ud800 escape is plain ASCII on the clipboard; parsed, it is a lone surrogate
    QApplication.clipboard().setText(json.dumps(fragment))
    assert "\\ud800" in QApplication.clipboard().text()
    window.paste()
    assert "Can't paste" in window.statusBar().currentMessage()
    assert doc.design.node_ids == ["input", "conv1"] and doc.undo_stack.count() == 0
    # and the document refuses such nodes however they come, changing nothing
    with pytest.raises(GraphError, match="can't be saved"):
        doc.paste([Node("relu9", "ReLU", {}, (0.0, 0.0)), Node(SURROGATE, "ReLU", {}, (0.0, 50.0))],
                  [])
    assert doc.design.node_ids == ["input", "conv1"] and doc.undo_stack.count() == 0
