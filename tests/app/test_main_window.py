"""The main window, driven as a user would: open files, drag cards, delete, undo/redo, save."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QMessageBox

from designer.app.canvas import ERROR, WARNING, NodeItem
from designer.app.main_window import MainWindow
from designer.io.design_file import load_design
from designer.io.templates import find_template
from tests.app.conftest import drag

BROKEN = {
    "format": "cnn-designer", "version": 1, "name": "broken",
    "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 3, "height": 7, "width": 7}},
        {"id": "conv", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3,
                                                    "stride": 3}},
        {"id": "fc", "type": "Linear", "params": {"out_features": 10}},
    ],
    "edges": [["input", "conv"], ["conv", "fc"]],
}


def write(tmp_path, data, name="design.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def card_centre(window, node_id) -> QPointF:
    item = window.scene.nodes[node_id]
    return item.pos() + QPointF(0, 30)


def test_opening_a_template_draws_every_node_and_edge(window):
    path = find_template("resnet18").path
    assert window.open_path(path)
    design = window.document.design
    assert set(window.scene.nodes) == set(design.node_ids)
    assert set(window.scene.edges) == set(design.edges)
    # files without positions are laid out top-down: every edge points downwards
    for s, t in design.edges:
        assert window.scene.nodes[s].pos().y() < window.scene.nodes[t].pos().y()
    assert "11,689,512 parameters" in window.statusBar().currentMessage()
    assert window.windowTitle().startswith("ResNet-18")
    assert window.document.path is None  # a built-in template opens as an untitled copy
    assert not window.isWindowModified()
    assert window.summary.model.rowCount() == len(design)


def test_errors_and_warnings_show_on_the_right_cards(window, tmp_path):
    window.open_path(write(tmp_path, BROKEN))
    conv, fc = window.scene.nodes["conv"], window.scene.nodes["fc"]
    assert conv.info.warnings and not conv.info.errors  # (7 − 3)/3 + 1 = 2.33
    assert fc.info.errors and "insert a Flatten" in fc.hover_text()
    assert "2.33" in conv.hover_text()
    assert window.scene.edges[("conv", "fc")].pen().color() == ERROR
    assert window.scene.edges[("input", "conv")].pen().color() != ERROR
    assert window.problems.count() == 2
    assert "1 error" in window.statusBar().currentMessage()
    assert WARNING != ERROR


def test_clicking_a_problem_selects_its_node(window, tmp_path):
    window.open_path(write(tmp_path, BROKEN))
    row = next(i for i in range(window.problems.count()) if "fc:" in window.problems.item(i).text())
    item = window.problems.item(row)
    window.problems.itemClicked.emit(item)
    assert window.scene.selected_node_ids() == ["fc"]


def test_dragging_a_card_moves_it_with_one_undo_step(window, qtbot, tmp_path):
    window.open_path(write(tmp_path, BROKEN))
    window.view.resetTransform()
    window.view.centerOn(window.scene.nodes["conv"])
    before = window.document.design.node("conv").position
    drag(window.view, card_centre(window, "conv"), card_centre(window, "conv") + QPointF(60, 25))
    after = window.document.design.node("conv").position
    assert after == pytest.approx((before[0] + 60, before[1] + 25), abs=1.5)
    assert window.isWindowModified()
    assert window.document.undo_stack.count() == 1
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.document.design.node("conv").position == before
    assert window.scene.nodes["conv"].pos() == QPointF(*before)
    assert not window.isWindowModified()
    qtbot.keyClick(window.view, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.document.design.node("conv").position == pytest.approx(after)


def test_delete_key_removes_node_with_its_edges_and_undo_restores_them_in_order(window, qtbot):
    window.open_path(find_template("inception-block").path)
    design = window.document.design
    edges_before = design.edges
    concat_inputs = design.sources("concat")
    window.scene.select_node("branch2_relu")
    qtbot.keyClick(window.view, Qt.Key.Key_Delete)
    assert "branch2_relu" not in design and "branch2_relu" not in window.scene.nodes
    assert not any("branch2_relu" in e for e in design.edges)
    assert window.document.analysis.info("concat").errors == ()  # 3 inputs still concatenate
    assert window.document.analysis.info("concat").shape[0] == 256 - 128
    window.document.undo_stack.undo()
    assert design.edges == edges_before
    assert design.sources("concat") == concat_inputs  # Concat's operand order is back
    assert window.document.analysis.info("concat").shape == (256, 28, 28)
    assert set(window.scene.edges) == set(edges_before)


def test_save_and_open_round_trip(window, tmp_path, monkeypatch):
    window.new_from_template(find_template("lenet5"))
    assert window.document.path is None  # a template is never saved over
    window.document.auto_layout()
    target = tmp_path / "mine.json"
    monkeypatch.setattr("designer.app.files.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(target), ""))
    assert window.save()  # a new design has no file yet: Save asks where
    assert not window.isWindowModified() and window.windowTitle().startswith("mine.json")
    suggested = []
    monkeypatch.setattr("designer.app.files.QFileDialog.getSaveFileName",
                        lambda parent, title, name, *a: suggested.append(name) or ("", ""))
    assert not window.save_as()  # cancelled
    assert suggested and suggested[0].endswith("mine.json") and ".json.json" not in suggested[0]
    saved = load_design(target)
    assert saved.node_ids == window.document.design.node_ids
    assert saved.edges == window.document.design.edges
    assert all(saved.node(n).position is not None for n in saved.node_ids)
    other = MainWindow()
    try:
        assert other.open_path(target)
        assert other.document.design.node_ids == saved.node_ids
        assert other.document.analysis.totals()["params"] == 61706
    finally:
        other.document.undo_stack.setClean()
        other.close()


def test_a_broken_file_is_explained_and_the_design_kept(window, tmp_path, monkeypatch):
    window.open_path(find_template("lenet5").path)
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args[2]))
    (tmp_path / "bad.json").write_text('{"format": "cnn-designer", "version": 1, "nodes": [')
    assert not window.open_path(tmp_path / "bad.json")
    assert shown and "not valid JSON at line 1" in shown[0]
    assert "conv1" in window.document.design  # LeNet is still there
    assert window.windowTitle().startswith("LeNet-5")


def test_closing_with_unsaved_changes_asks(window, tmp_path, monkeypatch):
    window.open_path(write(tmp_path, BROKEN))
    window.document.auto_layout()
    asked = []
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda *args: asked.append(args[2]) or QMessageBox.StandardButton.Cancel)
    assert not window.close()  # cancelled: the window stays
    assert asked and "unsaved changes" in asked[0]
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda *args: QMessageBox.StandardButton.Discard)
    assert window.close()


def test_summary_copies_as_text_and_csv(window):
    window.open_path(find_template("lecture-conv-layer").path)
    text = window.summary.as_text()
    assert "760" in text and "conv1" in text and "Total params: 760" in text
    lines = window.summary.as_csv().splitlines()
    assert lines[0].startswith("Layer,Type,Output shape,Param #")
    assert lines[2].startswith("conv1,Conv2d,\"[10, 32, 32]\",760,778240")


def test_cards_show_the_lecture_notation(window):
    window.open_path(find_template("lecture-conv-layer").path)
    item = window.scene.nodes["conv1"]
    assert isinstance(item, NodeItem)
    from designer.core.notation import layer_notation, shape_notation
    assert layer_notation("Conv2d", item.info.values) == "10 × 5×5, s1, p2"
    assert shape_notation(item.info.shape) == "10×32×32"


def test_a_cut_chain_is_red_only_where_it_is_cut(window, qtbot):
    window.open_path(find_template("lenet5").path)
    window.scene.select_node("tanh1")
    qtbot.keyClick(window.view, Qt.Key.Key_Delete)
    pool1, conv2 = window.scene.nodes["pool1"], window.scene.nodes["conv2"]
    assert {p.code for p in pool1.info.errors} == {"input-count"}  # the cut: has no input
    assert {p.code for p in conv2.info.errors} == {"not-fed"}  # downstream: muted, not red
    assert window.scene.edges[("pool1", "conv2")].pen().color() != ERROR
