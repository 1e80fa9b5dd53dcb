"""The app's last guard: an error nothing foresaw becomes a short message naming it, with the
traceback in a file; the app keeps running and the unsaved work is autosaved."""
from __future__ import annotations

import sys
import threading

import pytest
from PySide6.QtWidgets import QMessageBox

from designer.app import guard as guard_module
from designer.app import main_window
from designer.app.guard import install_guard
from designer.io.templates import find_template


@pytest.fixture
def boxes(monkeypatch):
    """The messages the guard would show, instead of showing them (a modal box would wait)."""
    shown = []

    def exec_(box):
        shown.append(box.text())
        return 0

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    return shown


@pytest.fixture
def guard(window, tmp_path, monkeypatch):
    monkeypatch.setattr(guard_module, "reports_dir", lambda: tmp_path / "reports")
    # whatever the test ends with, pytest(-qt)'s own hooks come back
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    g = install_guard(lambda: window)
    yield g
    g.uninstall()


def _action(window, text):
    return next(a for a in window.findChildren(main_window.QAction) if a.text() == text)


def test_an_error_in_a_slot_is_a_message_with_the_traceback_in_a_file(
        window, guard, boxes, monkeypatch, qtbot, tmp_path):
    window.new_from_template(find_template("lecture-conv-layer"))
    window.document.set_param("conv1", "padding", 1)  # unsaved work
    window.scene.select_node("conv1")

    def broken(design, ids):
        raise RuntimeError("the fragment went missing")

    monkeypatch.setattr(main_window, "extract", broken)
    _action(window, "&Copy").trigger()  # Qt calls the slot; the exception leaves it
    qtbot.waitUntil(lambda: bool(boxes), timeout=3000)
    (text,) = boxes
    assert "RuntimeError: the fragment went missing" in text
    assert "This is a bug in CNN Designer; please report it" in text
    reports = list((tmp_path / "reports").iterdir())
    assert len(reports) == 1 and str(reports[0]) in text  # the message says where
    report = reports[0].read_text()
    assert "Traceback" in report and "the fragment went missing" in report and "def copy" not in text
    assert "Traceback" not in text
    # the work is autosaved at once, and the app goes on
    assert window.autosaver.design_path.exists()
    assert "Your unsaved work is autosaved" in text
    assert window.isVisible() and window.document.modified
    window.document.set_param("conv1", "padding", 2)
    assert window.document.design.node("conv1").params["padding"] == 2


def test_the_same_error_again_and_again_is_reported_once(window, guard, boxes, monkeypatch, qtbot,
                                                         tmp_path):
    monkeypatch.setattr(window.view, "fit_all", lambda *a: 1 / 0)
    for _ in range(5):
        _action(window, "&Fit to window").trigger()
    qtbot.wait(50)
    assert len(boxes) == 1 and "ZeroDivisionError" in boxes[0]
    assert len(list((tmp_path / "reports").iterdir())) == 1


def test_an_error_in_another_thread_is_shown_on_the_gui_thread(window, guard, boxes, qtbot):
    shown_on = []
    window_thread = threading.get_ident()
    original = guard._show

    def show(summary, path):
        shown_on.append(threading.get_ident())
        original(summary, path)

    guard.caught.disconnect(guard._show)
    guard.caught.connect(show, main_window.Qt.ConnectionType.QueuedConnection)

    def work():
        raise ValueError("worker lost its way")

    thread = threading.Thread(target=work, name="helper")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: bool(boxes), timeout=3000)
    assert "ValueError: worker lost its way" in boxes[0]
    assert shown_on == [window_thread]


def test_a_report_that_cant_be_written_is_said(window, guard, boxes, monkeypatch, qtbot, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setattr(guard_module, "reports_dir", lambda: blocked / "reports")
    monkeypatch.setattr(guard_module.tempfile, "gettempdir", lambda: str(blocked))
    monkeypatch.setattr(window.view, "fit_all", lambda *a: [][1])
    _action(window, "&Fit to window").trigger()
    qtbot.waitUntil(lambda: bool(boxes), timeout=3000)
    assert "IndexError" in boxes[0] and "could not be written" in boxes[0]


def test_the_guard_is_off_until_installed_and_off_again_after():
    before = sys.excepthook
    g = install_guard()
    assert sys.excepthook == g.excepthook
    g.uninstall()
    assert sys.excepthook is before


def test_the_message_says_what_became_of_the_work(window, guard, boxes, monkeypatch, qtbot):
    monkeypatch.setattr(window.view, "fit_all", lambda *a: {}["x"])
    _action(window, "&Fit to window").trigger()
    qtbot.waitUntil(lambda: bool(boxes), timeout=3000)
    assert "You have no unsaved changes." in boxes[-1]  # a fresh window
    monkeypatch.setattr(window.view, "fit_all", lambda *a: None)
    window.new_from_template(find_template("lecture-conv-layer"))
    window.document.set_param("conv1", "padding", 1)
    monkeypatch.setattr(window.autosaver, "save_now", lambda: False)  # the disk is full, say
    monkeypatch.setattr(window.view, "fit_all", lambda *a: [][0])
    _action(window, "&Fit to window").trigger()
    qtbot.waitUntil(lambda: len(boxes) == 2, timeout=3000)
    assert "could not be autosaved: save it now" in boxes[-1]
