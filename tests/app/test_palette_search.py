"""The search box above the layer types: typing filters, Enter adds the marked match below the
selected layer (as a double-click does), Up/Down pick another, Escape clears, Ctrl+F focuses it."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from designer.app.panels.palette import PalettePanel, match_rank
from designer.core.catalog import LAYER_TYPES
from designer.io.templates import find_template


@pytest.fixture
def active(qtbot, window):
    """The shared window, active: key presses reach its shortcuts."""
    with qtbot.waitActive(window):
        window.activateWindow()
    return window


def shown_types(palette: PalettePanel) -> list[str]:
    return [name for name, item in palette.tree.items.items() if not item.isHidden()]


def type_in(qtbot, palette: PalettePanel, text: str) -> None:
    palette.search.setFocus()
    palette.search.clear()
    qtbot.keyClicks(palette.search, text)


def test_typing_filters_and_marks_the_best_match(qtbot, window):
    palette = window.palette
    type_in(qtbot, palette, "pool")
    assert shown_types(palette) == ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]
    assert palette.current_type() == "MaxPool2d"
    groups = {palette.tree.topLevelItem(i).text(0): palette.tree.topLevelItem(i).isHidden()
              for i in range(palette.tree.topLevelItemCount())}
    assert groups["Pooling"] is False and groups["Convolution"] is True
    type_in(qtbot, palette, "DENSE")  # another name for it, any case
    assert shown_types(palette) == ["Linear"]
    type_in(qtbot, palette, "bn")
    assert palette.current_type() == "BatchNorm2d"
    type_in(qtbot, palette, "residual")
    assert palette.current_type() == "Add"
    type_in(qtbot, palette, "qqq")
    assert shown_types(palette) == []
    assert all(palette.tree.topLevelItem(i).isHidden()
               for i in range(palette.tree.topLevelItemCount()))


def test_enter_adds_the_match_below_the_selected_layer(qtbot, window):
    window.new_from_template(find_template("lecture-conv-layer"))
    window.scene.select_node("conv1")
    palette = window.palette
    type_in(qtbot, palette, "relu")
    assert palette.current_type() == "ReLU"  # the name's start beats LeakyReLU's middle
    qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    design = window.document.design
    assert ("conv1", "relu1") in design.edges
    assert design.node("relu1").type == "ReLU"
    assert window.scene.selected_node_ids() == ["relu1"]
    y_conv = design.node("conv1").position[1]
    assert design.node("relu1").position[1] > y_conv  # below it
    # Down picks the next match; Enter adds that one, below the new selection
    type_in(qtbot, palette, "pool")
    qtbot.keyClick(palette.search, Qt.Key.Key_Down)
    assert palette.current_type() == "AvgPool2d"
    qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert ("relu1", "avgpool1") in design.edges
    assert window.document.undo_stack.count() == 2  # one undo step each


def test_enter_on_an_empty_design_adds_an_input(qtbot, window):
    palette = window.palette
    type_in(qtbot, palette, "inp")
    qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert [n.type for n in window.document.design.nodes] == ["Input"]
    type_in(qtbot, palette, "zzz")  # nothing matches: nothing is added
    qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert len(window.document.design) == 1


def test_escape_clears_the_search_then_leaves_the_box(qtbot, window):
    palette = window.palette
    type_in(qtbot, palette, "conv")
    assert shown_types(palette) == ["Conv2d"]
    qtbot.keyClick(palette.search, Qt.Key.Key_Escape)
    assert palette.search.text() == ""
    assert sorted(shown_types(palette)) == sorted(LAYER_TYPES)
    assert palette.current_type() is None  # Enter on an empty box adds nothing
    qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert len(window.document.design) == 0
    qtbot.keyClick(palette.search, Qt.Key.Key_Escape)
    assert not palette.search.hasFocus()


def test_ctrl_f_focuses_the_search_box(qtbot, active):
    window = active
    window.palette_dock.hide()
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.palette_dock.isVisible()
    assert QApplication.focusWidget() is window.palette.search
    qtbot.keyClicks(window.palette.search, "flat")
    qtbot.keyClick(window.palette.search, Qt.Key.Key_Return)
    assert [n.type for n in window.document.design.nodes] == ["Flatten"]


def test_double_click_still_adds_and_entries_show_whole(qtbot, window):
    window.new_from_template(find_template("lecture-conv-layer"))
    window.scene.select_node("conv1")
    tree = window.palette.tree
    item = tree.items["MaxPool2d"]
    tree.itemDoubleClicked.emit(item, 0)
    assert ("conv1", "pool1") in window.document.design.edges
    # the longest name fits in the dock ("AdaptiveAvgPool…" was cut off) and has a tooltip
    longest = tree.items["AdaptiveAvgPool2d"]
    rect = tree.visualItemRect(longest)
    needed = tree.fontMetrics().horizontalAdvance("AdaptiveAvgPool2d") + tree.iconSize().width()
    assert rect.width() >= needed and rect.right() <= tree.viewport().width()
    assert "AdaptiveAvgPool2d" in longest.toolTip(0)


def test_match_ranks_against_every_layer():
    """Every type is found by its own name, and a name's start ranks first."""
    for name in LAYER_TYPES:
        assert match_rank(name, name) == 0
        assert match_rank(name, name.lower()[:3]) is not None
    assert match_rank("Conv2d", "nothing like it") is None
    assert match_rank("MaxPool2d", "max") < match_rank("AdaptiveAvgPool2d", "pool")
