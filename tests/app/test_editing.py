"""Building and editing with the mouse and the inspector: connect ports, drop layers from the
palette, double-click to append, edit parameters and watch the shapes downstream change."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QSizePolicy, QSpinBox

from designer.app.panels.palette import MIME_TYPE
from designer.core.layout import ROW
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


def test_one_form_per_layer_type_follows_the_selected_node(window, qtbot):
    """The inspector keeps one form per layer type: selecting another node of the same type
    shows that node's values, and edits go to the node selected, not the one the form was
    first built for."""
    window.new_from_template(find_template("cifar10-convnet"))
    qtbot.waitUntil(lambda: "Conv2d" in window.inspector._forms)  # built while idle
    window.scene.select_node("conv1")
    form = window.inspector.form_host
    assert form.findChildren(QSpinBox)[0].value() == 16
    window.scene.select_node("conv2")
    assert window.inspector.form_host is form  # the same widgets, now showing conv2
    out_channels = form.findChildren(QSpinBox)[0]
    assert out_channels.value() == 20
    out_channels.setValue(24)
    design = window.document.design
    assert design.node("conv2").params["out_channels"] == 24
    assert design.node("conv1").params["out_channels"] == 16
    figures = window.inspector.figures  # as tall as its text: nothing hidden in it
    qtbot.waitUntil(lambda: figures.height() >= figures.document().size().height() > 50)
    window.scene.select_node("pool1")
    assert window.inspector.form_host is not form
    assert form.sizePolicy().verticalPolicy() == QSizePolicy.Policy.Ignored  # takes no room
    window.scene.select_node("conv1")
    assert window.inspector.form_host is form and out_channels.value() == 16


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


def edge_midpoint(window, edge) -> QPointF:
    return window.scene.edges[edge].path().pointAtPercent(0.5)


def test_dropping_a_layer_on_a_connection_inserts_it(window):
    window.new_from_template(find_template("lecture-conv-layer"))
    design = window.document.design
    source, target = design.edges[0]
    window.view.centerOn(edge_midpoint(window, (source, target)))
    before = design.edges
    # while dragging over the connection, it is highlighted
    data = QMimeData()
    data.setData(MIME_TYPE, b"ReLU")
    point = window.view.mapFromScene(edge_midpoint(window, (source, target)))
    enter = QDragEnterEvent(point, Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window.view.viewport(), enter)
    move = QDragMoveEvent(point, Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window.view.viewport(), move)
    assert window.scene.edges[(source, target)].highlighted
    drop_layer(window, "ReLU", edge_midpoint(window, (source, target)))
    assert not any(e.highlighted for e in window.scene.edges.values())
    new = window.scene.selected_node_ids()[0]
    assert design.node(new).type == "ReLU"
    assert (source, target) not in design.edges
    assert design.sources(new) == [source] and design.targets(new) == [target]
    shape = window.document.analysis.info(target).shape
    assert window.document.analysis.info(new).shape == window.document.analysis.info(source).shape
    assert window.document.analysis.valid
    # it sits one row below its source; its target was moved down to make room
    above, here, below = (design.node(n).position for n in (source, new, target))
    assert here[1] == above[1] + ROW and below[1] >= here[1] + ROW
    window.document.undo_stack.undo()  # one step: the node and both connections go
    assert design.edges == before and new not in design
    assert design.node(target).position[1] < here[1] + ROW  # and the target moved back
    assert window.document.analysis.info(target).shape == shape


def test_inserting_into_a_concat_input_keeps_the_operand_order(window):
    window.new_from_template(find_template("inception-block"))
    design = window.document.design
    concat = next(n.id for n in design.nodes if n.type == "Concat")
    operands = design.sources(concat)
    shape = window.document.analysis.info(concat).shape
    second = (operands[1], concat)
    window.view.centerOn(edge_midpoint(window, second))
    drop_layer(window, "BatchNorm2d", edge_midpoint(window, second))
    new = window.scene.selected_node_ids()[0]
    assert design.sources(concat) == [operands[0], new] + operands[2:]
    assert window.document.analysis.info(concat).shape == shape


def test_an_input_dropped_on_a_connection_is_just_added(window):
    window.new_from_template(find_template("lecture-conv-layer"))
    design = window.document.design
    edges = design.edges
    window.view.centerOn(edge_midpoint(window, edges[0]))
    drop_layer(window, "Input", edge_midpoint(window, edges[0]))
    assert design.edges == edges and len(design) == 3


def test_copy_paste_duplicate_and_cut(window):
    window.new_from_template(find_template("lecture-conv-layer"))
    doc = window.document
    design = doc.design
    ids = design.node_ids  # input, conv1
    for item in window.scene.nodes.values():
        item.setSelected(True)
    assert window.copy()
    text = QApplication.clipboard().text()
    assert '"format": "cnn-designer"' in text  # the contract's JSON: pastes into a text editor
    window.paste()
    assert len(design) == 4
    new = [n for n in design.node_ids if n not in ids]
    assert new == ["input1", "conv2"]  # fresh ids from the same stems
    assert (new[0], new[1]) in design.edges  # the edge between the copies comes along
    assert design.node("conv2").params == design.node("conv1").params
    assert set(window.scene.selected_node_ids()) == set(new)  # the copies are selected
    assert doc.undo_stack.undoText().startswith("Paste 2 layers")
    doc.undo_stack.undo()
    assert design.node_ids == ids
    # duplicate: beside the original, 40 units right and down
    window.scene.select_node("conv1")
    window.duplicate()
    copy = window.scene.selected_node_ids()[0]
    x, y = design.node("conv1").position
    assert design.node(copy).position == (x + 40, y + 40)
    assert design.sources(copy) == []  # its input was not part of the selection
    # cut = copy + delete, one undo step for the delete
    window.scene.select_node(copy)
    window.cut()
    assert copy not in design
    window.paste()
    assert design.node(copy).type == "Conv2d"  # the id was free again


def test_pasting_text_that_is_not_a_design_says_so(window):
    QApplication.clipboard().setText("hello")
    window.paste()
    assert "Can't paste" in window.statusBar().currentMessage()
    assert len(window.document.design) == 0


def test_rename_in_the_inspector_with_undo_and_refusal(window):
    window.new_from_template(find_template("lecture-conv-layer"))
    doc = window.document
    window.scene.select_node("conv1")
    inspector = window.inspector
    assert not inspector.id_row.isHidden() and inspector.id_edit.text() == "conv1"
    inspector.id_edit.setText("features.0")
    inspector.id_edit.editingFinished.emit()
    assert "features.0" in doc.design and "conv1" not in doc.design
    assert ("input", "features.0") in doc.design.edges
    assert window.scene.nodes["features.0"].isSelected()
    assert inspector.node_id == "features.0"
    assert window.summary.model.ids[-1] == "features.0"
    # an id in use is refused with the reason; nothing changes
    inspector.id_edit.setText("input")
    inspector.id_edit.editingFinished.emit()
    assert "already a node 'input'" in inspector.id_error.text()
    assert inspector.id_edit.text() == "features.0" and "features.0" in doc.design
    doc.undo_stack.undo()
    assert "conv1" in doc.design and inspector.id_edit.text() == "conv1"


def test_disconnect_and_layout_undo_with_the_keyboard(window, qtbot):
    window.new_from_template(find_template("lenet5"))
    doc, design = window.document, window.document.design
    edge = design.edges[1]
    window.scene.clearSelection()
    window.scene.edges[edge].setSelected(True)
    qtbot.keyClick(window.view, Qt.Key.Key_Delete)
    assert edge not in design.edges and len(design) == len(window.scene.nodes)
    assert doc.undo_stack.undoText() == "Delete 1 connection(s)"
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert design.edges[1] == edge
    # scatter the cards, lay them out with Ctrl+L, undo brings the scattered places back
    first = design.node_ids[0]
    doc.move_nodes({first: (design.node(first).position, (900.0, -700.0))})
    scattered = {n.id: n.position for n in design.nodes}
    qtbot.keyClick(window.view, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert design.node(first).position != (900.0, -700.0)
    assert doc.undo_stack.undoText() == "Automatic layout"
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert {n.id: n.position for n in design.nodes} == scattered


def test_clipboard_shortcuts(window, qtbot):
    window.new_from_template(find_template("lecture-conv-layer"))
    design = window.document.design
    window.scene.select_node("conv1")
    qtbot.keyClick(window.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert design.node_ids == ["input", "conv1", "conv2"]
    qtbot.keyClick(window.view, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert len(design) == 4
    qtbot.keyClick(window.view, Qt.Key.Key_X, Qt.KeyboardModifier.ControlModifier)
    assert len(design) == 3
    window.scene.select_node("conv1")
    qtbot.keyClick(window.view, Qt.Key.Key_F2)
    assert window.inspector.id_edit.hasFocus() or window.inspector.id_edit.selectedText() == "conv1"


def test_the_wheel_scrolls_past_editors_until_one_is_clicked_into(window, qtbot):
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    window.new_from_template(find_template("cifar10-convnet"))
    window.scene.select_node("conv1")
    box = window.inspector.form_host.findChildren(QSpinBox)[0]  # out_channels, 16

    def wheel(widget):
        centre = QPointF(widget.rect().center())
        event = QWheelEvent(centre, QPointF(widget.mapToGlobal(widget.rect().center())),
                            QPoint(), QPoint(0, 120), Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(widget, event)
        return event

    event = wheel(box)
    assert not event.isAccepted()  # handed on: the inspector scrolls instead
    assert box.value() == 16 and window.document.design.node("conv1").params["out_channels"] == 16
    box.setFocus()
    qtbot.waitUntil(box.hasFocus)
    wheel(box)
    assert box.value() == 17  # clicked into: the wheel edits, as in any spin box
    assert window.document.design.node("conv1").params["out_channels"] == 17


def test_undoing_the_removal_of_a_connection_a_file_allowed_puts_it_back(qtbot, tmp_path):
    """A file may feed an Input or close a cycle; deleting such a connection and undoing must
    restore it (new connections of that kind are refused, restored ones are not)."""
    from designer.app.document import Document
    from designer.core.design import Design, Node

    design = Design.from_parts("odd", [
        Node("input", "Input", {"channels": 1, "height": 4, "width": 4}),
        Node("a", "ReLU"), Node("b", "ReLU")],
        [("input", "a"), ("a", "b"), ("b", "a"), ("b", "input")])
    document = Document(design)
    for edge in [("b", "input"), ("b", "a")]:
        before = document.design.edges
        document.delete([], [edge])
        assert edge not in document.design.edges
        document.undo_stack.undo()
        assert document.design.edges == before
        document.undo_stack.redo()
        assert edge not in document.design.edges
