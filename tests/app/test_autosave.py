"""Autosave and recovery after a simulated crash."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QMessageBox

from designer.app import autosave
from designer.app.autosave import Autosaver, find_recoverable
from designer.app.main_window import MainWindow
from designer.io.design_file import design_to_dict
from designer.io.templates import find_template


@pytest.fixture(autouse=True)
def private_app_data(tmp_path, monkeypatch):
    QStandardPaths.setTestModeEnabled(True)  # Qt's own test locations, not the user's
    monkeypatch.setattr(autosave, "autosave_dir", lambda: tmp_path / "autosave")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield
    QStandardPaths.setTestModeEnabled(False)


def make_window(qtbot):
    w = MainWindow()
    qtbot.addWidget(w, before_close_func=lambda w: w.document.undo_stack.setClean())
    return w


def test_unsaved_work_is_autosaved_and_offered_back_after_a_crash(qtbot, monkeypatch, tmp_path):
    first = make_window(qtbot)
    first.new_from_template(find_template("lenet5"))
    first.document.set_param("conv1", "out_channels", 8)
    assert first.autosaver.save_now()
    assert not first.autosaver.save_now()  # nothing new since: no rewrite
    edited = design_to_dict(first.document.design)
    # a crash: the process dies without closing the window; pretend it was another process
    meta_path = first.autosaver.design_path.with_suffix(".meta")
    meta = json.loads(meta_path.read_text())
    meta["pid"] = -1
    meta_path.write_text(json.dumps(meta))
    found = find_recoverable()
    assert len(found) == 1 and found[0].name == "LeNet-5"

    second = make_window(qtbot)
    monkeypatch.setattr(QMessageBox, "exec", lambda box: _click(box, "Recover"))
    assert second.offer_recovery()
    assert design_to_dict(second.document.design) == edited
    assert second.document.modified  # recovered work is unsaved work
    assert find_recoverable() == []


def _click(box, text):
    """Stand-in for the user pressing a button of a modal message box."""
    for button in box.buttons():
        if button.text() == text:
            button.click()
    return 0


def test_saving_or_closing_cleanly_leaves_nothing_to_recover(qtbot, tmp_path, monkeypatch):
    w = make_window(qtbot)
    w.new_from_template(find_template("lecture-conv-layer"))
    w.document.set_param("conv1", "padding", 1)
    assert w.autosaver.save_now() and w.autosaver.design_path.exists()
    monkeypatch.setattr("designer.app.main_window.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "saved.json"), ""))
    assert w.save()
    assert not w.autosaver.design_path.exists()
    w.document.set_param("conv1", "padding", 2)
    assert w.autosaver.save_now()
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: QMessageBox.StandardButton.Discard)
    assert w.close()
    assert not w.autosaver.design_path.exists()


def test_a_clean_document_is_not_autosaved(qtbot):
    w = make_window(qtbot)
    w.new_from_template(find_template("lecture-conv-layer"))
    assert not w.autosaver.save_now()
    assert isinstance(w.autosaver, Autosaver)
