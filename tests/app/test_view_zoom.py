"""The canvas view: a default zoom at which card text is readable (9 pt on screen), showing the top
of the design (the Input) whole, on opening and after Ctrl+L; fit to window (Ctrl+0); a view
that stays put when cards are dropped, moved, deleted or undone; the hint on an empty canvas."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from designer.app.canvas import items as card_items
from designer.app.canvas.items import CARD_RECT
from designer.app.panels.palette import MIME_TYPE
from designer.app.canvas.view import (HINT_COLOUR, READABLE_POINTS, card_text_points,
                                      readable_scale)
from designer.io.templates import find_template
from tests.app.conftest import drag


@pytest.fixture
def active(qtbot, window):
    with qtbot.waitActive(window):
        window.activateWindow()
    return window


def drop_at(window, type_name: str, point: QPoint) -> None:
    """A palette entry dropped at a point of the canvas (viewport pixels)."""
    data = QMimeData()
    data.setData(MIME_TYPE, type_name.encode())
    viewport = window.view.viewport()
    enter = QDragEnterEvent(point, Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, enter)
    drop = QDropEvent(QPointF(point), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, drop)


def settle(window) -> None:
    """Let the view catch up with the scene, as between a user's actions (repainted)."""
    QApplication.processEvents()
    window.view.viewport().repaint()
    QApplication.processEvents()


def card_in_view(window, node_id) -> QRectF:
    """The card's rectangle in viewport pixels."""
    item = window.scene.nodes[node_id]
    return window.view.mapFromScene(item.mapRectToScene(CARD_RECT)).boundingRect().toRectF()


def fully_visible(window, node_id) -> bool:
    return QRectF(window.view.viewport().rect()).contains(card_in_view(window, node_id))


def on_screen_points(window) -> float:
    return window.view.scale_factor * card_text_points()


def test_readable_scale():
    assert readable_scale(9.0) == pytest.approx(1.0)
    assert readable_scale(7.5) == pytest.approx(1.2)
    assert readable_scale(10.0, readable=9.0) == pytest.approx(0.9)
    # a screen denser than the desktop assumes: larger, by at most a factor of two
    assert readable_scale(9.0, 96.0, 144.0) == pytest.approx(1.5)
    assert readable_scale(9.0, 96.0, 900.0) == pytest.approx(2.0)
    assert readable_scale(9.0, 96.0, 80.0) == pytest.approx(1.0)  # never below readable


def test_card_text_points_come_from_the_cards_font_sizes(monkeypatch):
    monkeypatch.setattr(card_items, "CARD_FONT_POINTS", {"title": 10.0, "text": 7.5},
                        raising=False)
    assert card_text_points() == 7.5


def test_a_large_design_opens_readable_with_its_input_whole_at_the_top(window):
    assert window.open_path(find_template("resnet18").path)
    assert on_screen_points(window) >= READABLE_POINTS - 1e-6
    assert fully_visible(window, "input")
    top = card_in_view(window, "input").top()
    assert 0 < top <= 60  # just below the top edge, not cut off, not lost in the middle
    # the last layer is far below: not everything was shrunk to fit
    assert not fully_visible(window, "fc")


def test_a_small_design_is_shown_whole(window):
    window.new_from_template(find_template("lecture-conv-layer"))
    assert fully_visible(window, "input") and fully_visible(window, "conv1")
    assert on_screen_points(window) >= READABLE_POINTS - 1e-6


def test_fit_to_window_shows_everything(qtbot, active):
    window = active
    window.open_path(find_template("vgg16").path)
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    for node_id in window.document.design.node_ids:
        assert fully_visible(window, node_id), node_id


def test_ctrl_l_shows_the_input_whole_at_readable_zoom(qtbot, active):
    window = active
    window.open_path(find_template("resnet18").path)
    view = window.view
    view.verticalScrollBar().setValue(view.verticalScrollBar().maximum())  # scrolled down
    view.zoom(0.5)
    assert not fully_visible(window, "input")
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.document.undo_stack.count() == 1  # laid out, one step
    assert fully_visible(window, "input")
    assert on_screen_points(window) >= READABLE_POINTS - 1e-6
    assert card_in_view(window, "input").top() <= 60


def test_the_view_stays_put_when_cards_come_and_go(qtbot, active):
    """A small design (the whole scene fits, which is when Qt re-centres the scene) keeps its
    place on screen through a drop far away, its undo, a move, a delete and their undo."""
    window = active
    window.new_from_template(find_template("lecture-conv-layer"))
    view = window.view
    where = card_in_view(window, "input").topLeft()

    def unmoved() -> bool:
        return (card_in_view(window, "input").topLeft() - where).manhattanLength() < 1

    corner = view.viewport().rect().bottomRight() - QPoint(30, 30)
    drop_at(window, "ReLU", corner)  # near the corner: the design's extent grows
    settle(window)
    assert window.document.design.node_ids[-1] == "relu1"
    assert window.scene.selected_node_ids() == ["relu1"]
    assert unmoved()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(window)
    assert unmoved()
    conv = window.scene.nodes["conv1"]
    start = conv.pos() + QPointF(0, 30)
    drag(view, start, view.mapToScene(corner - QPoint(0, 20)))
    settle(window)
    assert window.document.design.node("conv1").position != (0.0, 130.0)
    assert unmoved()
    # the next drag finds the card where it is drawn
    moved_to = window.scene.nodes["conv1"].pos()
    drag(view, moved_to + QPointF(0, 30), moved_to + QPointF(50, 30))
    assert (window.scene.nodes["conv1"].pos() - (moved_to + QPointF(50, 0))).manhattanLength() < 1
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(window)
    assert unmoved()
    window.scene.select_node("conv1")
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    settle(window)
    assert "conv1" not in window.document.design
    assert unmoved()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(window)
    assert unmoved()


def hint_pixels(window) -> int:
    """Pixels of the hint's colour on the canvas."""
    image = window.view.viewport().grab().toImage()
    colour = QColor(HINT_COLOUR).rgb()
    step = 2
    return sum(1 for y in range(0, image.height(), step) for x in range(0, image.width(), step)
               if image.pixel(x, y) == colour)


def test_an_empty_canvas_says_how_to_start(qtbot, window):
    assert len(window.document.design) == 0
    assert hint_pixels(window) > 20
    assert not window.view.hint_rect.isEmpty()
    assert QRectF(window.view.viewport().rect()).contains(window.view.hint_rect)
    window.palette.search.setFocus()
    qtbot.keyClicks(window.palette.search, "input")
    qtbot.keyClick(window.palette.search, Qt.Key.Key_Return)
    assert hint_pixels(window) == 0
    assert window.view.hint_rect.isEmpty()
    window.document.undo_stack.undo()  # empty again: the hint is back, whole
    assert hint_pixels(window) > 20
