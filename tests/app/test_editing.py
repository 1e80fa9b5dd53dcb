"""Building and editing with the mouse and the inspector: connect ports, drop layers from the
palette, double-click to append, edit parameters and watch the shapes downstream change."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QSpinBox

from designer.app.palette import MIME_TYPE
from designer.io.templates import find_template
from tests.app.conftest import drag


def drop_layer(window, type_name: str, scene_pos: QPointF) -> None:
    """What the viewport receives when a palette entry is dropped on it."""
    data = QMimeData()
    data.setData(MIME_TYPE, type_name.encode())
    point = window.view.mapFromScene(scene_pos)
    viewport = window.view.viewport()
    enter = QDragEnterEvent(point, Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()  # the canvas takes palette entries
    drop = QDropEvent(QPointF(point), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, drop)


def test_build_a_small_network_with_the_mouse(window):
    window.view.resetTransform()
    drop_layer(window, "Input", QPointF(0, 0))
    drop_layer(window, "Conv2d", QPointF(0, 200))
    design = window.document.design
    assert design.node_ids == ["input1", "conv1"]
    assert design.node("conv1").position == pytest.approx((0, 200), abs=1)
    assert design.node("conv1").params == {"out_channels": 16, "kernel_size": 3, "padding": 1}
    window.view.centerOn(0, 100)
    # drag from input1's output port onto conv1's card
    start = window.scene.nodes["input1"].output_port()
    drag(window.view, start, window.scene.nodes["conv1"].pos() + QPointF(0, 30))
    assert design.edges == [("input1", "conv1")]
    assert window.document.analysis.info("conv1").shape == (16, 32, 32)
    assert window.document.analysis.valid
    # one undo step each: drop, drop, connect
    assert window.document.undo_stack.count() == 3
    window.document.undo_stack.undo()
    assert design.edges == []


def test_a_refused_connection_says_why_while_hovering(window, qtbot):
    window.new_from_template(find_template("lecture-conv-layer"))
    window.view.resetTransform()
    window.view.centerOn(window.scene.nodes["input"])
    hints = []
    window.scene.hint.connect(hints.append)
    conv = window.scene.nodes["conv1"]
    # conv1 → input: an Input can't be fed
    drag(window.view, conv.output_port(), window.scene.nodes["input"].pos() + QPointF(0, 30))
    assert any("Can't connect: input is an Input" in h for h in hints)
    assert window.document.design.edges == [("input", "conv1")]  # nothing changed
    assert window.document.undo_stack.count() == 0


def test_double_click_in_the_palette_appends_after_the_selection(window):
    window.new_from_template(find_template("lecture-conv-layer"))
    window.scene.select_node("conv1")
    window.add_after_selection("ReLU")
    window.add_after_selection("MaxPool2d")
    design = window.document.design
    assert design.edges[-2:] == [("conv1", "relu1"), ("relu1", "pool1")]
    assert window.document.analysis.info("pool1").shape == (10, 16, 16)
    assert window.scene.selected_node_ids() == ["pool1"]


def test_inspector_edit_reshapes_downstream_and_undoes(window, qtbot):
    window.new_from_template(find_template("cifar10-convnet"))
    window.scene.select_node("conv1")
    assert window.inspector.node_id == "conv1"
    spin = [w for w in window.inspector.form_host.findChildren(QSpinBox)]
    out_channels = spin[0]  # out_channels comes first
    assert out_channels.value() == 16
    out_channels.setValue(32)  # as if typed and confirmed
    analysis = window.document.analysis
    assert analysis.info("conv1").shape == (32, 32, 32)
    assert analysis.info("conv2").params == 20 * (5 * 5 * 32 + 1)
    assert "parameters" in window.inspector.figures.text()
    assert "32·(5·5·3 + 1) = 2,432" in window.inspector.figures.text()
    window.document.undo_stack.undo()
    assert analysis.info("conv1").shape == (16, 32, 32)
    assert out_channels.value() == 16  # the editor follows the model
    assert window.document.undo_stack.count() == 1


def test_inspector_kernel_too_big_shows_the_error_and_design_is_kept(window):
    window.new_from_template(find_template("lecture-strides"))
    window.scene.select_node("conv_stride3")
    kernel = window.inspector.form_host.findChildren(QSpinBox)[1]  # kernel_size height
    kernel.setValue(9)
    info = window.document.analysis.info("conv_stride3")
    assert info.errors and "is below 1" in window.inspector.figures.text()
    assert window.scene.nodes["conv_stride3"].info.errors
    window.document.undo_stack.undo()
    assert not window.document.analysis.info("conv_stride3").errors
