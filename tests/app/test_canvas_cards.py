"""Cards: readable text (WCAG AA contrast, fonts of named sizes), nothing left behind on screen
after a move, a delete or an undo, and a layer double-clicked in the palette inserted after the
selected one."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QApplication, QTreeWidgetItemIterator

from designer.app.canvas import items
from designer.app.canvas.items import (CARD_BOUNDS, CARD_FONT_POINTS, GROUP_COLOURS,
                                       MUTED_LIGHTER, PORT_R, SELECTION_PEN_W, SELECTION_RECT,
                                       TEXT_COLOURS, NodeItem)
from designer.core.layout import CARD_H, CARD_W, ROW
from designer.io.templates import find_template


def relative_luminance(colour: QColor) -> float:
    """WCAG 2.x: sRGB channels linearised, weighted 0.2126, 0.7152, 0.0722."""
    def linear(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    return (0.2126 * linear(colour.red()) + 0.7152 * linear(colour.green())
            + 0.0722 * linear(colour.blue()))


def contrast(a: QColor, b: QColor) -> float:
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_itself():
    assert contrast(QColor("black"), QColor("white")) == pytest.approx(21.0)
    assert contrast(QColor("#777777"), QColor("white")) == pytest.approx(4.48, abs=0.01)
    # the parameter count's old colour on the convolution green: the complaint
    assert contrast(QColor("#627d98"), QColor(GROUP_COLOURS["Convolution"])) < 4.5


@pytest.mark.parametrize("group", sorted(GROUP_COLOURS))
def test_card_text_meets_wcag_aa_on_every_fill(group):
    fills = [QColor(GROUP_COLOURS[group]), QColor(GROUP_COLOURS[group]).lighter(MUTED_LIGHTER)]
    for name, colour in TEXT_COLOURS.items():
        for fill in fills:
            assert contrast(colour, fill) >= 4.5, (name, group, fill.name())


def test_cards_paint_with_the_named_font_sizes_and_colours(window):
    window.new_from_template(find_template("lecture-conv-layer"))
    window.view.viewport().repaint()
    style = items._CardStyle.get(window.view.font())
    assert style.bold.pointSizeF() == CARD_FONT_POINTS["title"]
    assert style.regular.pointSizeF() == CARD_FONT_POINTS["text"]
    assert min(CARD_FONT_POINTS.values()) >= 9.0
    assert style.params_colour == TEXT_COLOURS["params"]
    # and they fit: the title row and two text rows inside the card
    title_h = QFont(style.bold).pointSizeF() * 96 / 72
    assert 6 + title_h + 2 * 22 <= CARD_H


def test_the_bounding_rect_holds_everything_a_card_paints():
    pen = SELECTION_PEN_W / 2
    assert CARD_BOUNDS.contains(SELECTION_RECT.adjusted(-pen - 0.5, -pen - 0.5, pen + 0.5,
                                                        pen + 0.5))
    assert CARD_BOUNDS.top() <= -PORT_R - 1 and CARD_BOUNDS.bottom() >= CARD_H + PORT_R + 1
    assert CARD_BOUNDS.left() <= -CARD_W / 2 - 5


def settled(window):
    for _ in range(4):
        QApplication.processEvents()


def on_screen(window):
    """The canvas as it is on screen (the window's backing store, not a fresh rendering)."""
    settled(window)
    viewport = window.view.viewport()
    at = viewport.mapTo(window, QPoint(0, 0))
    return window.screen().grabWindow(window.winId(), at.x(), at.y(), viewport.width(),
                                      viewport.height()).toImage()


def fresh(window):
    window.view.viewport().repaint()
    return on_screen(window)


def differing_pixels(a, b) -> int:
    assert a.size() == b.size()
    return sum(1 for y in range(a.height()) for x in range(a.width()) if a.pixel(x, y) != b.pixel(x, y))


def test_no_traces_after_move_delete_and_undo(window, qtbot):
    window.new_from_template(find_template("lecture-receptive-field"))
    view, doc = window.view, window.document
    view.resetTransform()
    view.centerOn(window.scene.nodes["conv2"])
    window.scene.select_node("conv2")
    selected = on_screen(window)
    assert differing_pixels(selected, fresh(window)) == 0
    # moved by an edit while selected, then undone
    x, y = doc.design.node("conv2").position
    doc.move_nodes({"conv2": ((x, y), (x + 260, y + 30))})
    assert differing_pixels(on_screen(window), fresh(window)) == 0
    doc.undo_stack.undo()
    assert differing_pixels(on_screen(window), fresh(window)) == 0
    # deleted while selected, and the delete undone
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert "conv2" not in doc.design
    assert differing_pixels(on_screen(window), fresh(window)) == 0
    doc.undo_stack.undo()
    assert differing_pixels(on_screen(window), fresh(window)) == 0
    window.scene.clearSelection()
    assert differing_pixels(on_screen(window), fresh(window)) == 0


def test_the_trace_check_sees_traces(window, monkeypatch):
    """With the old, too small bounding rect the same steps leave the selection outline behind."""
    from PySide6.QtCore import QRectF
    monkeypatch.setattr(NodeItem, "boundingRect", lambda self: QRectF(
        -CARD_W / 2 - 2, -PORT_R - 2, CARD_W + 4, CARD_H + 2 * PORT_R + 4))
    window.new_from_template(find_template("lecture-receptive-field"))
    window.view.resetTransform()
    window.view.centerOn(window.scene.nodes["conv2"])
    window.scene.select_node("conv2")
    on_screen(window)
    doc = window.document
    x, y = doc.design.node("conv2").position
    doc.move_nodes({"conv2": ((x, y), (x + 260, y + 30))})
    assert differing_pixels(on_screen(window), fresh(window)) > 0


def double_click_palette(window, qtbot, type_name: str) -> None:
    tree = window.palette.tree
    it = QTreeWidgetItemIterator(tree)
    while it.value() is not None:
        item = it.value()
        if item.data(0, Qt.ItemDataRole.UserRole) == type_name:
            tree.scrollToItem(item)
            rect = tree.visualItemRect(item)
            # as Qt sees a double-click: a press and release, then the double-click
            qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
            qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
            return
        it += 1
    raise AssertionError(f"{type_name} is not in the palette")


def positions(design):
    return {n: design.node(n).position for n in design.node_ids}


def test_double_click_inserts_between_the_selection_and_its_successor(window, qtbot):
    window.new_from_template(find_template("cifar10-convnet"))
    doc, design = window.document, window.document.design
    chain_after = design.targets("conv1")
    assert len(chain_after) == 1
    successor = chain_after[0]
    edges_before, where_before = design.edges, positions(design)
    window.scene.select_node("conv1")
    double_click_palette(window, qtbot, "BatchNorm2d")
    new = design.node_ids[-1]
    assert design.node(new).type == "BatchNorm2d"
    assert design.sources(new) == ["conv1"] and design.targets(new) == [successor]
    assert design.targets("conv1") == [new] and design.sources(successor) == [new]
    # one row below conv1, in its column; the rest pushed down a row
    cx, cy = where_before["conv1"]
    assert design.node(new).position == (cx, cy + ROW)
    for n in design.downstream(successor):
        assert design.node(n).position[1] == where_before[n][1] + ROW
    assert window.scene.selected_node_ids() == [new]
    # not on top of anything: every card is clear of the others
    cards = [items.CARD_RECT.translated(i.pos()) for i in window.scene.nodes.values()]
    assert not any(a.intersects(b) for i, a in enumerate(cards) for b in cards[i + 1:])
    # the shapes follow: BatchNorm keeps them
    assert doc.analysis.valid
    # one undo step puts everything back
    doc.undo_stack.undo()
    assert design.edges == edges_before and positions(design) == where_before
    doc.undo_stack.redo()
    assert design.sources(successor) == [new]


def test_inserting_into_a_merge_keeps_the_operand_order(window, qtbot):
    window.new_from_template(find_template("inception-block"))
    design = window.document.design
    operands = design.sources("concat")
    window.scene.select_node("branch2_relu")
    double_click_palette(window, qtbot, "Dropout")
    new = design.node_ids[-1]
    assert design.sources("concat") == [operands[0], new, operands[2], operands[3]]
    assert window.document.analysis.info("concat").shape == (256, 28, 28)
    window.document.undo_stack.undo()
    assert design.sources("concat") == operands


def test_inserting_after_a_fork_feeds_all_its_branches(window, qtbot):
    window.new_from_template(find_template("inception-block"))
    design = window.document.design
    branches = design.targets("input")
    window.scene.select_node("input")
    double_click_palette(window, qtbot, "BatchNorm2d")
    new = design.node_ids[-1]
    assert design.targets("input") == [new]
    assert design.targets(new) == branches  # in their order
    assert window.document.analysis.valid
    assert window.document.undo_stack.count() == 1


def test_double_click_at_the_end_of_a_chain_appends(window, qtbot):
    window.new_from_template(find_template("lecture-conv-layer"))
    design = window.document.design
    window.scene.select_node("conv1")
    double_click_palette(window, qtbot, "ReLU")
    assert design.edges[-1] == ("conv1", "relu1")
    assert design.node("relu1").position == (design.node("conv1").position[0],
                                             design.node("conv1").position[1] + ROW)


def test_a_card_added_where_it_can_be_seen_does_not_move_the_view(window, qtbot):
    window.new_from_template(find_template("vgg16"))
    view = window.view
    view.resetTransform()
    view.centerOn(window.scene.nodes["features.2"])
    settled(window)
    before = (view.horizontalScrollBar().value(), view.verticalScrollBar().value())
    # a card whose top shows at the bottom edge: selected, the view stays
    bottom = view.mapToScene(view.viewport().rect().bottomLeft() - QPoint(-200, 10))
    window.add_at("ReLU", QPointF(bottom.x(), bottom.y()))
    settled(window)
    assert (view.horizontalScrollBar().value(), view.verticalScrollBar().value()) == before
    # a card added out of sight is scrolled to
    window.scene.select_node("classifier.6")
    settled(window)
    shown = view.mapToScene(view.viewport().rect()).boundingRect()
    assert shown.intersects(window.scene.nodes["classifier.6"].sceneBoundingRect())


def test_far_out_cards_are_plain_boxes_and_close_up_they_have_text(window):
    """Zoomed out to a whole large design, cards skip their unreadable text (an edit then
    repaints hundreds of cards in view quickly)."""
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter
    window.new_from_template(find_template("lecture-conv-layer"))
    scene = window.scene
    card = items.CARD_RECT.translated(scene.nodes["conv1"].pos())
    fill = QColor(GROUP_COLOURS["Convolution"])

    def interior_colours(scale: float) -> set[int]:
        size = (int(card.width() * scale), int(card.height() * scale))
        image = QImage(*size, QImage.Format.Format_RGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
        scene.render(painter, QRectF(0, 0, *size), card)
        painter.end()
        inset = max(3, int(8 * scale))
        return {image.pixel(x, y) for x in range(inset, size[0] - inset)
                for y in range(inset, size[1] - inset)}
    assert interior_colours(0.15) == {fill.rgb()}
    assert len(interior_colours(1.0)) > 10  # the text
    assert items.SKETCH_BELOW * max(CARD_FONT_POINTS.values()) < 2.0  # nothing readable lost
