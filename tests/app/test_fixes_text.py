"""The inspector and a card's tooltip advise only fixes that were checked to work."""
from __future__ import annotations

from designer.app.canvas import NodeItem
from designer.core.design import Design, Node


def broken_add() -> Design:
    """A strided "same" convolution whose stride-1 fix would break the Add below it."""
    return Design.from_parts("fixes", [
        Node("input", "Input", {"channels": 1, "height": 8, "width": 8}),
        Node("conv", "Conv2d", {"out_channels": 1, "kernel_size": 5, "padding": "same",
                                "stride": 2}),
        Node("pool", "MaxPool2d", {"kernel_size": 2}),
        Node("add", "Add")],
        [("input", "conv"), ("input", "pool"), ("conv", "add"), ("pool", "add")])


def test_inspector_and_tooltip_leave_out_advice_that_would_break_the_design(qtbot, window):
    window.document.replace(broken_add(), None)
    raw = window.document.analysis.info("conv").errors[0].text
    assert "or stride 1" in raw  # the unchecked advice offers both
    checked = window.document.analysis.fix_checker().text(window.document.analysis.info("conv")
                                                          .errors[0])
    assert "or stride 1" not in checked and "use padding 2 instead" in checked
    window.scene.select_node("conv")
    qtbot.waitUntil(lambda: "padding 2" in window.inspector.figures.toPlainText(), timeout=2000)
    assert "or stride 1" not in window.inspector.figures.toPlainText()
    card = next(i for i in window.scene.items() if isinstance(i, NodeItem) and i.node_id == "conv")
    tip = card.hover_text()
    assert "use padding 2 instead" in tip and "or stride 1" not in tip
