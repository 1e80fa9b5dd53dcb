"""What the inspector writes: problems as sentences that name their layer (the dead-end warning
read "⚠ is a dead end: …"), and real numbers as a user writes them (Dropout's p read 0.500000)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QApplication, QDoubleSpinBox

from designer.app.panels.inspector import DoubleSpinBox, real_text
from designer.io.design_file import load_design


def design(*extra_nodes, extra_edges=()):
    nodes = [{"id": "input", "type": "Input", "params": {"channels": 3, "height": 8, "width": 8}},
             {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3}},
             {"id": "relu", "type": "ReLU", "params": {}}, *extra_nodes]
    edges = [["input", "conv1"], ["conv1", "relu"], *extra_edges]
    return load_design({"format": "cnn-designer", "version": 1, "nodes": nodes, "edges": edges})


def figures(window, node_id):
    window.inspector.show_node(node_id)
    return window.inspector.figures.text()


def test_problems_name_their_layer(window):
    """The dead-end warning read "⚠ is a dead end: …"."""
    window.document.replace(design({"id": "side branch", "type": "Conv2d",
                                    "params": {"out_channels": 2, "kernel_size": 1}},
                                   extra_edges=[["input", "side branch"]]), None)
    text = figures(window, "side branch")
    assert "⚠ side branch is a dead end: nothing uses its output" in text
    assert "is a dead end" not in figures(window, "relu")  # the output is no dead end
    # an error: "id: what is wrong"; an id is shown as written, never taken for markup
    window.document.replace(design({"id": "<b>big</b>", "type": "Conv2d",
                                    "params": {"out_channels": 2, "kernel_size": 40}},
                                   extra_edges=[["relu", "<b>big</b>"]]), None)
    assert "✗ <b>big</b>: " in figures(window, "<b>big</b>")


def real_editor(window, node_type: str, params: dict, name: str) -> QDoubleSpinBox:
    window.document.replace(design({"id": "x", "type": node_type, "params": params},
                                   extra_edges=[["relu", "x"]]), None)
    window.inspector.show_node("x")
    QApplication.processEvents()
    (box,) = [b for b in window.inspector.form_host.findChildren(QDoubleSpinBox)
              if b.toolTip() and window.document.design.node("x").type == node_type
              and _label_of(window, b) == name]
    return box


def _label_of(window, box) -> str:
    layout = window.inspector.form_host.layout()
    label = layout.labelForField(box)
    return label.text() if label is not None else ""


REALS = [
    ("Dropout", {}, "p", "0.5"),
    ("Dropout", {"p": 0.25}, "p", "0.25"),
    ("BatchNorm2d", {}, "eps", "1e-05"),
    ("BatchNorm2d", {"eps": 1e-3}, "eps", "0.001"),
    ("BatchNorm2d", {"eps": 1e-12}, "eps", "1e-12"),  # not rounded away to 0
    ("BatchNorm2d", {}, "momentum", "0.1"),
    ("LeakyReLU", {}, "negative_slope", "0.01"),
    ("LeakyReLU", {"negative_slope": 2}, "negative_slope", "2"),
    ("LeakyReLU", {"negative_slope": -0.3}, "negative_slope", "-0.3"),
]


def test_real_numbers_read_as_a_user_writes_them(window):
    for node_type, params, name, shown in REALS:  # one window for them all
        box = real_editor(window, node_type, params, name)
        assert box.lineEdit().text() == shown, (node_type, params, name)
        expected = window.document.analysis.info("x").values[name]
        assert box.value() == expected  # the value itself is kept, not rounded to the text


def test_typed_and_stepped_reals_reach_the_design_as_written(qtbot, window):
    box = real_editor(window, "BatchNorm2d", {}, "eps")
    for typed, value in (("2.5e-3", 0.0025), ("0.0001", 1e-4), ("3E-7", 3e-7)):
        box.lineEdit().selectAll()
        qtbot.keyClicks(box.lineEdit(), typed)
        qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)
        assert window.document.design.node("x").params["eps"] == value
        assert box.lineEdit().text() == real_text(value)
    window.document.undo_stack.undo()  # each commit is one undo step
    assert window.document.design.node("x").params["eps"] == 1e-4

    box = real_editor(window, "Dropout", {}, "p")
    box.stepBy(1)  # the arrows: 0.5 + 0.01 is 0.51, not 0.51000000000000001
    assert window.document.design.node("x").params["p"] == 0.51
    assert box.lineEdit().text() == "0.51"
    for _ in range(9):
        box.stepBy(-1)
    assert window.document.design.node("x").params["p"] == 0.42
    assert box.lineEdit().text() == "0.42"


def test_what_may_be_typed():
    box = DoubleSpinBox()
    box.setRange(0, 1)
    state = lambda text: box.validate(text, len(text))[0]  # noqa: E731
    assert state("0.5") == QValidator.State.Acceptable
    assert state("1e-05") == QValidator.State.Acceptable
    for half_typed in ("", "-", "1e", "1e-", "."):
        assert state(half_typed) == QValidator.State.Intermediate, half_typed
    assert state("2") == QValidator.State.Intermediate  # a number, but out of range
    for wrong in ("abc", "0.5x", "nan", "inf", "1e5e"):
        assert state(wrong) == QValidator.State.Invalid, wrong


@pytest.mark.parametrize("value, text", [(0.5, "0.5"), (1e-05, "1e-05"), (0.1 + 0.2, "0.3"),
                                         (100.0, "100"), (-0.0, "0"), (1e-12, "1e-12"),
                                         (123456.789, "123456.789"), (0.001, "0.001")])
def test_real_text(value, text):
    assert real_text(value) == text


def test_a_new_design_with_the_same_id_of_another_type_gets_its_own_editors(qtbot):
    """The editors of the node shown were refreshed from a new design's node of the same id
    but another type (KeyError: 'eps' in the event loop)."""
    from designer.app.document import Document
    from designer.app.panels.inspector import InspectorPanel

    document = Document()
    inspector = InspectorPanel(document)
    document.refreshed.connect(inspector.refresh)  # as the window connects it
    qtbot.addWidget(inspector)
    document.replace(design({"id": "x", "type": "BatchNorm2d", "params": {}},
                            extra_edges=[["relu", "x"]]), None)
    inspector.show_node("x")
    assert list(inspector.editors) == ["eps", "momentum", "affine"]
    document.replace(design({"id": "x", "type": "Dropout", "params": {"p": 0.25}},
                            extra_edges=[["relu", "x"]]), None)
    assert inspector.node_id == "x" and list(inspector.editors) == ["p"]
    (box,) = inspector.form_host.findChildren(QDoubleSpinBox)
    assert box.lineEdit().text() == "0.25"
    assert "Dropout" in inspector.title.text()
