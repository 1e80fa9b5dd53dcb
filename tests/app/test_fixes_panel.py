"""The Problems panel's fixes: a problem with a fix that works can be fixed with one click (or the
keyboard, or its context menu) as one undo step; undo gives back exactly the design before, redo
the fixed one. Fixes that would break the design are not offered."""
from __future__ import annotations

import json

from PySide6.QtCore import Qt

from designer.app.panels import tables
from designer.core.analysis import Analysis
from designer.io.design_file import design_to_json
from designer.io.templates import find_template


def write(tmp_path, nodes, edges, name="design.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"format": "cnn-designer", "version": 1, "name": "fixes",
                                "nodes": nodes, "edges": edges}))
    return path


def node(node_id, type_name, params=None, y=0):
    return {"id": node_id, "type": type_name, "params": params or {}, "position": [0, y]}


def row_of(panel, node_id, code):
    rows = [r for r, p in enumerate(panel._rows) if p is not None and (p.node_id, p.code) ==
            (node_id, code)]
    assert len(rows) == 1, [panel.item(r).text() for r in range(panel.count())]
    return rows[0]


def snapshot(doc):
    """The design as its file holds it (parsed: a position moved back is 300.0 where the file
    said 300, the same number)."""
    return json.loads(design_to_json(doc.design))


def test_apply_on_a_problem_fixes_it_and_undo_redo_follow_exactly(window, qtbot):
    window.open_path(find_template("lecture-strides").path)
    doc, panel = window.document, window.problems
    before = snapshot(doc)
    row = row_of(panel, "conv_stride3", "fractional-output")
    assert panel.item(row).text().endswith("try padding 1 or stride 2\n"
                                           "      Fix: set padding to 1  ·  set stride to 2")
    panel.list.setCurrentRow(row)
    assert panel.apply_button.isEnabled()
    assert [panel.fix_choice.itemText(i) for i in range(panel.fix_choice.count())] == \
        ["set padding to 1", "set stride to 2"]
    steps = doc.undo_stack.count()
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert doc.design.node("conv_stride3").params["padding"] == 1
    assert not doc.analysis.info("conv_stride3").warnings
    assert doc.undo_stack.count() == steps + 1  # one step
    assert not any("conv_stride3: output" in panel.item(r).text() for r in range(panel.count()))
    fixed = snapshot(doc)
    doc.undo_stack.undo()
    assert snapshot(doc) == before
    assert doc.analysis.info("conv_stride3").warnings
    doc.undo_stack.redo()
    assert snapshot(doc) == fixed


def test_inserting_a_flatten_is_one_step_and_undo_restores_positions(window, qtbot, tmp_path):
    window.open_path(write(tmp_path, [
        node("input", "Input", {"channels": 3, "height": 8, "width": 8}),
        node("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}, 150),
        node("fc", "Linear", {"out_features": 10}, 300),
        node("out", "Softmax", {}, 450)],
        [["input", "conv"], ["conv", "fc"], ["fc", "out"]]))
    doc, panel = window.document, window.problems
    before = snapshot(doc)
    panel.list.setCurrentRow(row_of(panel, "fc", "spatial-input"))
    panel.list.setFocus()
    qtbot.keyClick(panel.list, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert doc.design.sources("fc") == ["flatten1"]
    assert doc.design.sources("flatten1") == ["conv"]
    assert doc.analysis.valid and doc.analysis.info("fc").params == 10 * 257
    assert doc.undo_stack.undoText() == "Fix fc: insert a Flatten between conv and fc"
    fixed = snapshot(doc)
    doc.undo_stack.undo()
    assert snapshot(doc) == before  # the layers pushed down to make room are back too
    doc.undo_stack.redo()
    assert snapshot(doc) == fixed
    assert panel.count() == 1 and panel.item(0).text() == "No errors or warnings."


def test_a_fix_of_several_edits_is_one_step(window, tmp_path):
    # an Input fed by two layers: both connections go in one fix
    window.open_path(write(tmp_path, [
        node("input", "Input", {"channels": 3, "height": 8, "width": 8}),
        node("a", "ReLU", {}, 150), node("b", "ReLU", {}, 300)],
        [["input", "a"], ["a", "b"], ["a", "input"], ["b", "input"]]))
    doc, panel = window.document, window.problems
    before = snapshot(doc)
    panel.list.setCurrentRow(row_of(panel, "input", "input-count"))
    assert panel.fixes()[0].label == "remove the connections from a, b"
    steps = doc.undo_stack.count()
    assert panel.apply_fix()
    assert doc.undo_stack.count() == steps + 1
    assert doc.design.edges == [("input", "a"), ("a", "b")] and doc.analysis.valid
    doc.undo_stack.undo()
    assert snapshot(doc) == before


def test_a_fix_that_would_break_the_design_is_neither_shown_nor_offered(window, tmp_path):
    # stride 1 on c would give the Add below unequal inputs; padding 2 keeps them equal
    window.open_path(write(tmp_path, [
        node("input", "Input", {"channels": 1, "height": 8, "width": 8}),
        node("c", "Conv2d", {"out_channels": 4, "kernel_size": 3, "stride": 3}, 150),
        node("a", "MaxPool2d", {"kernel_size": 2}, 300),
        node("b", "Conv2d", {"out_channels": 4, "kernel_size": 1, "stride": 3}, 300),
        node("add", "Add", {}, 450)],
        [["input", "c"], ["c", "a"], ["c", "b"], ["a", "add"], ["b", "add"]]))
    panel = window.problems
    row = row_of(panel, "c", "fractional-output")
    text = panel.item(row).text()
    assert "try padding 2\n      Fix: set padding to 2" in text and "stride 1" not in text
    panel.list.setCurrentRow(row)
    assert [panel.fix_choice.itemText(i) for i in range(panel.fix_choice.count())] == \
        ["set padding to 2"]


def test_the_context_menu_applies_a_chosen_fix(window):
    window.open_path(find_template("lecture-strides").path)
    doc, panel = window.document, window.problems
    row = row_of(panel, "conv_stride3", "fractional-output")
    panel.list.setCurrentRow(row)
    panel._menu(row, panel.list.mapToGlobal(panel.list.rect().center()))
    actions = [a for a in panel._open_menu.actions() if a.text().startswith("Apply fix")]
    assert [a.text() for a in actions] == ["Apply fix: set padding to 1",
                                           "Apply fix: set stride to 2"]
    panel._open_menu.close()
    actions[1].trigger()
    assert doc.design.node("conv_stride3").params["stride"] == 2


def test_rows_without_a_fix_offer_none(window):
    window.open_path(find_template("lecture-strides").path)
    panel = window.problems
    panel.list.setCurrentRow(row_of(panel, "conv_stride1", "dead-end"))
    assert not panel.apply_button.isEnabled() and not panel.apply_fix()
    assert panel.fix_choice.currentText() == "no automatic fix for this problem"


def test_fixes_are_checked_a_slice_at_a_time_never_shown_unchecked(window, qtbot, monkeypatch,
                                                                  tmp_path):
    monkeypatch.setattr(tables, "CHECK_SLICE_SECONDS", -1.0)  # one problem per round
    nodes = [node("input", "Input", {"channels": 1, "height": 7, "width": 7}),
             node("cat", "Concat", {}, 450)]
    edges = []
    for i in range(6):
        nodes += [node(f"c{i}", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": 3}, 150),
                  node(f"f{i}", "Flatten", {}, 300)]
        edges += [["input", f"c{i}"], [f"c{i}", f"f{i}"], [f"f{i}", "cat"]]
    window.open_path(write(tmp_path, nodes, edges))
    panel = window.problems
    seen = []

    def rows_are_honest():
        texts = [panel.item(r).text() for r in range(panel.count())]
        seen.append(sum("Fix:" in t for t in texts))
        for t in texts:  # checked (its fixes listed) or advising nothing
            assert (t.endswith("try padding 1 or stride 2\n      Fix: set padding to 1  ·  set "
                               "stride to 2")
                    or t.endswith("floors this to 2); try another kernel size, stride or "
                                  "padding")), t
        return seen[-1] == 6

    rows_are_honest()
    panel.reload()  # an edit: checked again, one row per round
    assert rows_are_honest() is False
    qtbot.waitUntil(rows_are_honest)
    assert len(set(seen)) > 2  # the rows were checked over several rounds


def test_the_panels_follow_a_new_analysis_after_opening_another_design(window):
    window.open_path(find_template("lecture-strides").path)
    old = window.document.analysis
    window.open_path(find_template("resnet18").path)
    assert window.document.analysis is not old
    assert window.problems.item(0).text() == "No errors or warnings."
    assert Analysis(window.document.design).valid


def test_fixing_one_problem_after_another_from_the_keyboard(window, qtbot, tmp_path):
    """Each fix reveals the next problem below it; the selection moves on to it, so Ctrl+Enter
    fixes the design step by step, and undo takes the steps back one by one."""
    window.open_path(write(tmp_path, [
        node("input", "Input", {"channels": 3, "height": 32, "width": 32}),
        node("conv1", "Conv2d", {"out_channels": 16, "kernel_size": 5, "stride": 2,
                                 "padding": "same"}, 150),
        node("conv2", "Conv2d", {"out_channels": 32, "kernel_size": 3, "groups": 3}, 300),
        node("pool", "MaxPool2d", {"kernel_size": 2}, 450),
        node("fc", "Linear", {"out_features": 10}, 600)],
        [["input", "conv1"], ["conv1", "conv2"], ["conv2", "pool"], ["pool", "fc"]]))
    doc, panel = window.document, window.problems
    states = [snapshot(doc)]
    panel.list.setCurrentRow(0)
    panel.list.setFocus()
    for words in ("use padding 2 instead, or stride 1\n      Fix: set padding to 2  ·  set "
                  "stride to 1",
                  "try groups 1, 2, 4, 8, 16\n      Fix: set groups to 1, 2, 4, 8 or 16",
                  "insert a Flatten before it (that gives [1568], so this layer would have "
                  "15,690 parameters)\n      Fix: insert a Flatten between pool and fc"):
        assert panel.count() == 1 and panel.list.currentRow() == 0
        assert panel.item(0).text().endswith(words)
        qtbot.keyClick(panel.list, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        states.append(snapshot(doc))
    assert doc.analysis.valid and panel.item(0).text() == "No errors or warnings."
    assert doc.design.node("conv1").params["padding"] == 2
    assert doc.design.node("conv2").params["groups"] == 1
    for state in reversed(states[:-1]):
        doc.undo_stack.undo()
        assert snapshot(doc) == state
