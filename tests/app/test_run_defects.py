"""Defects of the run views seen in the real window: the receptive field of a unit stayed on the
image after another layer was selected, the colour bar kept the last design's range after New,
the first-layer filters were cut off below, and "Classic filters (first convol" was cut off."""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication, QScrollArea, QStyle, QStyleOptionComboBox

from designer.app.run.controller import CLASSIC, MAX_FILTERS
from designer.core.design import Design
from designer.io.design_file import load_design
from designer.io.samples import sample_images
from designer.io.templates import resources_dir
from tests.app.test_run import WAIT_MS, run_and_wait

TEMPLATES = resources_dir() / "templates"


def open_and_run(qtbot, window, design, sample: str = "Scene"):
    window.document.replace(design, None)
    window.runner.auto_run = False
    path = next(s.path for s in sample_images() if s.title == sample)
    assert window.run_panel.load_image(path)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=WAIT_MS)
    return run_and_wait(qtbot, window)


def select(qtbot, window, node_id: str) -> None:
    window.scene.select_node(node_id)
    qtbot.waitUntil(lambda: window.activations.node_id == node_id, timeout=5000)


def test_the_field_goes_with_its_layer_and_the_colour_bar_with_its_design(qtbot, window):
    """The picked unit's field stayed on the image when another layer was selected; the
    colour bar kept the last design's range after New."""
    result = open_and_run(qtbot, window, load_design(TEMPLATES / "cifar10-convnet.json"))
    select(qtbot, window, "conv2")
    run_panel = window.run_panel
    with qtbot.waitSignal(window.runner.gradient_ready, timeout=WAIT_MS):
        window.activations.pick(3, 5, 6)
    drawn = list(run_panel.rect_items)
    assert drawn and all(item.scene() is not None for item in drawn)
    assert run_panel.heat.image is not None
    select(qtbot, window, "relu1")
    assert run_panel.rect_items == [] and run_panel.pick is None
    assert all(item.scene() is None for item in drawn)  # taken off the image, not just listed
    assert run_panel.heat.image is None
    assert "Click a unit" in run_panel.field_text.text()
    assert not window.activations.marker.isVisible()

    maps = result.activations["relu1"]
    assert tuple(window.activations.bar.levels()) == (float(maps.min()), float(maps.max()))
    window.document.replace(Design(), None)  # File ▸ New, blank
    QApplication.processEvents()
    assert tuple(window.activations.bar.levels()) == (0.0, 1.0)
    assert window.activations.image.image is None


def conv_design(filters: int, kernel: int, side: int = 24) -> Design:
    return load_design({
        "format": "cnn-designer", "version": 1,
        "nodes": [{"id": "input", "type": "Input",
                   "params": {"channels": 3, "height": side, "width": side}},
                  {"id": "conv", "type": "Conv2d",
                   "params": {"out_channels": filters, "kernel_size": kernel}}],
        "edges": [["input", "conv"]]})


def scroll_area_of(widget):
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    return parent


def test_filters_captions_and_title_whole_at_1280_by_800(qtbot, window):
    """The first-layer filters were cut off below; captions and the maps' title too."""
    window.resize(1280, 800)
    for filters, kernel in ((16, 5), (64, 3), (96, 11), (300, 3)):
        open_and_run(qtbot, window, conv_design(filters, kernel, 32 if kernel == 11 else 24))
        QApplication.processEvents()
        grid, panel = window.run_panel.filters, window.run_panel
        shown = min(filters, MAX_FILTERS)
        assert grid.weight.shape[0] == shown
        drawn = grid.drawn_rect()
        # every filter is drawn, inside the widget, which lies inside the panel
        cols, rows, scale = grid.arrangement(grid.width())
        assert cols * rows >= shown and drawn.height() <= grid.height()
        assert drawn.width() <= grid.width()
        assert grid.geometry().bottom() <= panel.height()
        # the rows fill the width: one more column would not fit
        kh = kw = kernel
        gap = max(1, (2 * kernel + 5) // 10)  # a fifth of the kernel, rounded
        assert grid.image.shape[:2] == (rows * (kh + gap) + gap, cols * (kw + gap) + gap)
        assert drawn.width() + (kw + gap) * scale > grid.width() or cols == shown
        # what is drawn is the filters, pixel for pixel: the last one too
        image = grid.grab().toImage()
        last = shown - 1
        r, q = divmod(last, cols)
        y = (gap + r * (kh + gap)) * scale + scale // 2
        x = (gap + q * (kw + gap)) * scale + scale // 2
        ratio = image.devicePixelRatio()
        colour = image.pixelColor(int(x * ratio), int(y * ratio)).getRgb()[:3]
        assert colour == tuple(int(v) for v in grid.image[y // scale, x // scale])
        assert grid.filter_at(x, y) == last
        # taller than its room, the panel scrolls, with the scroll bar showing it
        area = scroll_area_of(panel)
        if area is not None and panel.height() > area.viewport().height():
            assert area.verticalScrollBar().isVisible()

    # "Network input 3×224×2" was cut off by the next column, and the maps' title by its
    # second line
    open_and_run(qtbot, window, conv_design(64, 3, 224))
    select(qtbot, window, "conv")
    QApplication.processEvents()
    run_panel = window.run_panel
    plots = run_panel.plots
    viewport = plots.viewport().rect()
    rects = []
    for label in (run_panel.original_label, run_panel.input_label):
        rect = plots.mapFromScene(label.item.sceneBoundingRect()).boundingRect()
        assert viewport.contains(rect), (label.item.toPlainText(), rect, viewport)
        rects.append(rect)
    assert not rects[0].intersects(rects[1])
    assert "3×224×224" in run_panel.input_label.item.toPlainText()
    title = window.activations.title
    assert title.heightForWidth(title.width()) <= title.height(), title.text()
    assert "64 maps of 222×222" in title.text()


def test_weights_choices_whole_and_no_error_before_an_image(qtbot, window):
    """"Classic filters (first convol" was cut off at 1280×800; picking it before an image
    said "Can't run: load an image first" in red."""
    window.resize(1280, 800)
    QApplication.processEvents()
    combo = window.run_panel.weights
    option = QStyleOptionComboBox()
    combo.initStyleOption(option)
    field = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                         QStyle.SubControl.SC_ComboBoxEditField, combo)
    for i in range(combo.count()):
        assert combo.fontMetrics().horizontalAdvance(combo.itemText(i)) <= field.width(), \
            combo.itemText(i)
        assert combo.itemData(i, 3)  # a tooltip (Qt.ToolTipRole) says what the choice does

    window.document.replace(load_design(TEMPLATES / "cifar10-convnet.json"), None)
    assert window.runner.image is None and window.runner.auto_run
    failures: list[str] = []
    window.runner.failed.connect(failures.append)
    combo.setCurrentIndex(combo.findData(CLASSIC))
    combo.activated.emit(combo.currentIndex())  # as a choice with the mouse does
    assert "first convolution" in combo.toolTip()
    QApplication.processEvents()
    assert window.runner.weights_mode == CLASSIC
    assert failures == [] and not window.runner.busy
    assert "Can't run" not in window.run_panel.status.text()
    # the image then runs the design with those weights by itself, and the filters show them
    assert window.run_panel.load_image(next(s.path for s in sample_images()
                                            if s.title == "Shapes"))
    qtbot.waitUntil(lambda: window.runner.result is not None and not window.runner.busy,
                    timeout=WAIT_MS)
    result = window.runner.result
    assert result.classic["node"] == "conv1" and failures == []
    np.testing.assert_array_equal(window.run_panel.filters.weight,
                                  result.network.weights["conv1.weight"])
