"""Shared fixtures for the desktop app's tests: a shown main window, and real mouse drags."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from designer.app import autosave, files
from designer.app.main_window import MainWindow


@pytest.fixture(autouse=True)
def private_autosave_folder(tmp_path, monkeypatch):
    """Windows made by a test autosave (and lock) into the test's own folder, never the user's."""
    monkeypatch.setattr(autosave, "autosave_dir", lambda: tmp_path / "autosave")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # QSettings stay in the test
    w = MainWindow()
    # closing at teardown must not stop at the "unsaved changes" question
    qtbot.addWidget(w, before_close_func=lambda w: w.document.undo_stack.setClean())
    w.resize(1300, 850)
    w.show()
    qtbot.waitExposed(w)
    return w


def send_mouse(widget, kind, pos: QPoint, button=Qt.MouseButton.LeftButton,
               buttons=Qt.MouseButton.LeftButton):
    event = QMouseEvent(kind, QPointF(pos), widget.mapToGlobal(QPointF(pos)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(view, start: QPointF, end: QPointF, steps: int = 6):
    """Press on ``start`` (scene coordinates), move in steps, release on ``end``."""
    viewport = view.viewport()
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    send_mouse(viewport, QEvent.Type.MouseButtonPress, a)
    for i in range(1, steps + 1):
        p = a + (b - a) * i / steps
        send_mouse(viewport, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton)
    send_mouse(viewport, QEvent.Type.MouseButtonRelease, b, buttons=Qt.MouseButton.NoButton)


@pytest.fixture
def settings_home(tmp_path, monkeypatch):
    """Settings of the test's own: a file no other test writes (Qt keeps the folder it first
    found settings in for the whole process)."""
    path = str(tmp_path / "settings.ini")
    monkeypatch.setattr(files, "app_settings",
                        lambda: QSettings(path, QSettings.Format.IniFormat))
