"""The overview in the canvas's corner: the whole design with the part on screen framed; click or
drag in it to move the view; hidden while everything is in view, or when turned off."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtWidgets import QApplication

from designer.app.canvas.items import CARD_RECT
from designer.app.canvas.minimap import REBUILD_MS
from designer.io.templates import find_template
from tests.app.conftest import send_mouse


def card_rect(window, node_id) -> QRectF:
    return window.scene.nodes[node_id].mapRectToScene(CARD_RECT)


def wait_rebuilt(qtbot, window) -> None:
    """Until the overview has been redrawn after the last change (edits come in bursts: it
    waits REBUILD_MS after the last one)."""
    qtbot.wait(REBUILD_MS // 2)
    qtbot.waitUntil(lambda: not window.view.minimap._timer.isActive(), timeout=3_000)


def opened(qtbot, window, name: str):
    window.open_path(find_template(name).path)
    wait_rebuilt(qtbot, window)
    return window.view.minimap


def test_the_overview_shows_the_whole_design_and_where_the_view_is(qtbot, window):
    minimap = opened(qtbot, window, "resnet18")
    assert minimap.isVisible()  # at readable zoom ResNet-18 doesn't fit
    # it sits inside the canvas, in its bottom-right corner
    viewport = window.view.viewport().geometry()
    assert viewport.contains(minimap.geometry())
    assert viewport.bottomRight().x() - minimap.geometry().right() < 20
    # every card maps inside it, and the frame is the visible part: the Input's card is in it
    # and the last layer's is not
    inside = QRectF(minimap.rect()).adjusted(-1, -1, 1, 1)
    for node_id in window.document.design.node_ids:
        assert inside.contains(minimap._to_map.mapRect(card_rect(window, node_id))), node_id
    frame = minimap.visible_frame()
    assert frame.contains(minimap._to_map.map(card_rect(window, "input").center()))
    assert not frame.contains(minimap._to_map.map(card_rect(window, "fc").center()))
    assert frame.height() < 0.5 * minimap.height()


def test_clicking_and_dragging_in_the_overview_moves_the_view(qtbot, window):
    minimap = opened(qtbot, window, "resnet18")
    fc = minimap._to_map.map(card_rect(window, "fc").center())
    send_mouse(minimap, QEvent.Type.MouseButtonPress, fc.toPoint())
    send_mouse(minimap, QEvent.Type.MouseButtonRelease, fc.toPoint(), buttons=Qt.MouseButton.NoButton)
    visible = window.view.visible_rect()
    assert visible.contains(card_rect(window, "fc").center())
    assert not visible.contains(card_rect(window, "input").center())
    # the frame followed
    assert minimap.visible_frame().contains(fc)
    # a drag back up takes the view along
    top = minimap._to_map.map(card_rect(window, "input").center())
    send_mouse(minimap, QEvent.Type.MouseButtonPress, fc.toPoint())
    for i in range(1, 6):
        point = fc + (top - fc) * (i / 5)
        send_mouse(minimap, QEvent.Type.MouseMove, point.toPoint(), Qt.MouseButton.NoButton)
    send_mouse(minimap, QEvent.Type.MouseButtonRelease, top.toPoint(), buttons=Qt.MouseButton.NoButton)
    assert window.view.visible_rect().contains(card_rect(window, "input").center())
    assert window.document.undo_stack.count() == 0  # the design is untouched


def test_hidden_while_everything_is_in_view_and_when_turned_off(qtbot, window):
    minimap = opened(qtbot, window, "lecture-conv-layer")
    assert not minimap.isVisible()  # two cards: nothing to find
    minimap = opened(qtbot, window, "vgg16")
    assert minimap.isVisible()
    window.view.fit_all()
    assert not minimap.isVisible()
    window.view.show_top()
    assert minimap.isVisible()
    window.overview_action.trigger()  # View ▸ Overview off
    assert not window.overview_action.isChecked() and not minimap.isVisible()
    window.view.zoom(2.0)
    assert not minimap.isVisible()
    window.overview_action.trigger()
    assert minimap.isVisible()


def test_the_overview_follows_edits(qtbot, window):
    minimap = opened(qtbot, window, "vgg16")
    far = QPointF(3000.0, 200.0)
    window.add_at("ReLU", far)
    wait_rebuilt(qtbot, window)
    relu = [n for n in window.document.design.node_ids if n.startswith("relu")][-1]
    assert QRectF(minimap.rect()).adjusted(-1, -1, 1, 1).contains(
        minimap._to_map.mapRect(card_rect(window, relu)))
    window.document.undo_stack.undo()
    wait_rebuilt(qtbot, window)
    # the design's extent is back to the column: the lone card's place is off the overview now
    assert not QRectF(minimap.rect()).contains(minimap._to_map.map(far))
    QApplication.processEvents()
