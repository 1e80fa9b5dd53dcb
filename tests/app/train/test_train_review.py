"""The Train panel as a new user meets it: the wheel over its fields, Start and Pause while it
runs, Stop in the middle of an epoch, the tabs when it ends, an unfit design, where Save weights…
starts, grey data from colour images, Adam's betas, and room at a laptop's size."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from designer.app.train.controller import PAUSED, RUNNING
from tests.app.train.test_train_panel import (settle, slow_steps, stripes_file,  # noqa: F401
                                              tiny_design, trainable)


def wheel(widget, steps: int = -3) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_the_wheel_scrolls_the_settings_and_leaves_unfocused_fields_alone(window, qtbot):
    panel = window.train_panel
    window.show_train_panel()
    window.resizeDocks([window.train_dock], [260], Qt.Orientation.Vertical)  # short: it scrolls
    qtbot.wait(50)
    bar = panel.settings_scroll.verticalScrollBar()
    assert bar.maximum() > 0
    window.view.setFocus()
    lr, epochs, optimizer = panel.lr.value(), panel.epochs.value(), panel.optimizer.currentIndex()
    for widget in (panel.lr, panel.epochs, panel.optimizer, panel.weight_decay, panel.seed):
        assert not widget.hasFocus()
        assert widget.focusPolicy() == Qt.FocusPolicy.StrongFocus
        bar.setValue(0)
        wheel(widget)
        assert bar.value() > 0  # the settings scrolled instead
    assert (panel.lr.value(), panel.epochs.value(), panel.optimizer.currentIndex()) == (
        lr, epochs, optimizer)
    panel.epochs.setFocus()  # a field the user is in takes the wheel
    qtbot.waitUntil(panel.epochs.hasFocus, timeout=2000)
    wheel(panel.epochs, steps=1)
    assert panel.epochs.value() == epochs + 1
