"""The summary table and problems list follow edits incrementally; what they show must always equal
a summary computed from scratch."""
from __future__ import annotations

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication

from designer.core.analysis import Analysis
from designer.core.design import Design, Node
from designer.core.summary import table_rows
from designer.io.templates import find_template


def fresh_rows(window):
    """An independent summary of the same design (a new analysis, formatted from scratch)."""
    analysis = Analysis(window.document.design.copy())
    try:
        return table_rows(analysis)
    finally:
        analysis.close()


def test_summary_rows_match_a_fresh_summary_after_every_kind_of_edit(window):
    window.open_path(find_template("vgg16").path)
    doc = window.document
    model = window.summary.model
    first_conv = next(n.id for n in doc.design.nodes if n.type == "Conv2d")
    edits = [
        lambda: doc.set_param("input", "height", 128),  # every shape below changes
        lambda: doc.set_param(first_conv, "out_channels", 32),  # parameter counts below change
        lambda: doc.add_node(Node("extra", "ReLU", {}, (0.0, 0.0)), after=doc.analysis.output),
        lambda: doc.set_param(first_conv, "stride", 3),  # a warning mark appears in the table
        lambda: doc.undo_stack.undo(),
        lambda: doc.undo_stack.undo(),  # the added node goes: rows are removed
        lambda: doc.undo_stack.redo(),
    ]
    for edit in edits:
        edit()
        QApplication.processEvents()
        assert model.ids == doc.analysis.order
        assert model.rows == fresh_rows(window)
        shown = [[model.data(model.index(r, c)) for c in range(model.columnCount())]
                 for r in range(model.rowCount())]
        assert shown == model.rows
        fresh = Analysis(doc.design.copy()).totals()  # the totals line follows every edit too
        assert f"Total params: {fresh['params']:,}" in window.summary.totals.text()
        assert f"Mult-adds: {fresh['macs']:,}" in window.summary.totals.text()


def test_problems_list_follows_edits_and_clears(window):
    window.open_path(find_template("lenet5").path)
    doc = window.document
    panel = window.problems
    assert panel.counts() == (0, 0) and panel.item(0).text() == "No errors or warnings."
    conv = next(n.id for n in doc.design.nodes if n.type == "Conv2d")
    doc.set_param(conv, "kernel_size", 40)  # larger than the image
    texts = [panel.item(i).text() for i in range(panel.count())]
    assert any(conv in t and t.startswith("✗") for t in texts)
    doc.undo_stack.undo()
    assert panel.count() == 1 and panel.item(0).text() == "No errors or warnings."


def test_cards_and_edges_explain_themselves_on_hover(window, tmp_path):
    doc = window.document
    doc.add_node(Node("input", "Input", {"channels": 3, "height": 8, "width": 8}, (0.0, 0.0)))
    doc.add_node(Node("fc", "Linear", {"out_features": 4}, (0.0, 150.0)), after="input")
    card = window.scene.nodes["fc"]
    edge = window.scene.edges[("input", "fc")]
    assert "Flatten" in card.hover_text()
    assert edge.error and "Flatten" in edge.hover_text(card)
    doc.undo_stack.undo()  # fc goes, and with it the edge
    doc.add_node(Node("relu", "ReLU", {}, (0.0, 150.0)), after="input")
    assert window.scene.nodes["relu"].hover_text() == "relu: ReLU → 3×8×8"
    ok = window.scene.edges[("input", "relu")]
    assert not ok.error and ok.hover_text(window.scene.nodes["relu"]) == "input → relu"
    # the card under the cursor is found from a scene position, as the tooltip event does
    items = window.scene.items(window.scene.nodes["relu"].pos() + QPointF(0, 30))
    assert window.scene.nodes["relu"] in items


def test_summary_columns_fit_their_text_after_a_new_design_grows(window, qtbot):
    window.document.replace(Design("Untitled"), None)  # File → New: an empty design
    QApplication.processEvents()
    doc = window.document
    doc.add_node(Node("input", "Input", {"channels": 3, "height": 224, "width": 224}, (0, 0)))
    doc.add_node(Node("conv_stride3", "Conv2d", {"out_channels": 512, "kernel_size": 3,
                                                 "stride": 3}, (0, 150)), after="input")
    doc.add_node(Node("gap", "AdaptiveAvgPool2d", {"output_size": 1}, (0, 300)),
                 after="conv_stride3")
    table = window.summary.table
    header = table.horizontalHeader()
    qtbot.waitUntil(lambda: header.sectionSize(0) > table.sizeHintForColumn(0) - 1)
    for column in range(8):  # layer (with its ⚠), type, output shape, …, RF: nothing elided
        assert table.sizeHintForColumn(column) <= header.sectionSize(column), column
    # an edit that changes figures without adding rows: the rows shown are measured again
    doc.set_param("conv_stride3", "out_channels", 123456)
    qtbot.waitUntil(lambda: all(table.sizeHintForColumn(c) <= header.sectionSize(c)
                                for c in range(8)))
    params = window.summary.model.row(doc.analysis.order.index("conv_stride3"))[3]
    assert params == "3,456,768"
    assert header.sectionSize(3) >= table.fontMetrics().horizontalAdvance(params)
