"""The activation panel uses the room it gets: the grid takes the shape of the area so maps are as
large as they can be (64 of VGG's 224×224 maps at 48 px or more in a maps area of a 1920×1080
window), the statistics table sits beside or below the grid with every column whole (or is
hidden), dead maps are framed on four sides on screen, and the colour bar forgets old ranges."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QTextDocument
from PySide6.QtWidgets import QApplication

from designer.app.run.activations import ActivationPanel
from designer.app.run.pictures import DEAD_RGB, best_columns, grid_shape


class _Design:
    def node(self, node_id):
        return SimpleNamespace(type="Linear" if node_id == "flat" else "ReLU")


class _Result:
    def __init__(self, activations):
        self.activations = activations
        self.stats = {}
        self.design = _Design()


class _Controller(QObject):
    """What the panel reads of a RunController: a result and two signals."""

    finished = Signal(object)
    stale_changed = Signal(bool)

    def __init__(self, activations) -> None:
        super().__init__()
        self.result = _Result(activations)
        self.cleared = 0

    def clear_pick(self) -> None:
        self.cleared += 1


RNG = np.random.default_rng(11)
VGG1 = np.maximum(RNG.standard_normal((64, 224, 224)), 0).astype(np.float32)
DEEP = np.maximum(RNG.standard_normal((512, 14, 14)), 0).astype(np.float32)
DEAD = RNG.standard_normal((9, 10, 10)).astype(np.float32) + 3
DEAD[4] = 0  # the middle map of a 3×3 grid is all zero
FLAT = RNG.standard_normal(10).astype(np.float32)


@pytest.fixture
def panel(qtbot):
    controller = _Controller({"vgg": VGG1, "deep": DEEP, "dead": DEAD, "flat": FLAT})
    widget = ActivationPanel(controller)
    qtbot.addWidget(widget)
    widget.controller_ref = controller
    widget.resize(1150, 650)  # about what the maps get of a 1920×1080 window with Maps large
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.tiler.shutdown()


def shown(qtbot, panel, node: str) -> None:
    """Show a node and wait until its grid is drawn and fitted to the view."""
    panel.show_node(node)
    qtbot.waitUntil(lambda: not panel.drawing, timeout=30_000)
    QApplication.processEvents()
    panel._refit()  # what the timer does after a resize
    qtbot.waitUntil(lambda: not panel.drawing, timeout=30_000)
    QApplication.processEvents()


def largest_possible(panel, values) -> float:
    """Screen pixels per map with the best of every column count, worked out here by trying
    them all: the view's room over the grid's size (in map units), the smaller ratio."""
    c, h, w = values.shape
    gap = panel.gap
    width, height = panel.view.width(), panel.view.height()
    best = 0.0
    for cols in range(1, c + 1):
        rows = -(-c // cols)
        scale = min(width / (cols * (w + gap) + gap), height / (rows * (h + gap) + gap))
        best = max(best, scale * w)
    return best


def test_64_vgg_maps_get_at_least_48_pixels_and_as_many_as_fit(qtbot, panel):
    shown(qtbot, panel, "vgg")
    pixels = panel.map_pixels()
    assert pixels >= 48
    assert pixels == pytest.approx(largest_possible(panel, VGG1), rel=0.02)
    # drawn at every second row and column (a grid larger than a screen), hover and click
    # still find every unit where it is drawn
    rows = -(-64 // panel.cols)
    assert panel.image.image.shape[:2] == (rows * 123 + 11, panel.cols * 123 + 11)  # 112 + 11
    for channel, row, col in ((0, 0, 0), (63, 223, 223), (37, 101, 5)):
        origin = panel.unit_origin(channel, row, col)
        assert panel.locate(QPointF(origin.x() + 0.5, origin.y() + 0.5)) == (channel, row, col)
        # and the pixel there is the map's own colour, not the gap's
        y, x = int(origin.y()) // 2, int(origin.x()) // 2
        assert tuple(panel.image.image[y, x]) != (40, 40, 40)


def test_512_maps_are_as_large_as_fits(qtbot, panel):
    shown(qtbot, panel, "deep")
    assert panel.map_pixels() == pytest.approx(largest_possible(panel, DEEP), rel=0.02)
    assert panel.map_pixels() >= 20  # a near-square 23×23 grid would give them about 16


def test_best_columns_against_trying_every_count():
    for count, h, w, gap, width, height in [(64, 224, 224, 22, 700, 540), (512, 14, 14, 1, 700, 540),
                                             (16, 32, 32, 3, 1200, 150), (16, 32, 32, 3, 150, 1200),
                                             (10, 5, 50, 5, 300, 300), (1, 9, 9, 1, 10, 10),
                                             (7, 1, 1, 1, 0, 100)]:
        cols = best_columns(count, h, w, gap, width, height)
        if width <= 0:
            assert cols == grid_shape(count, h, w, gap)[0]  # no room known: near-square
            continue
        scales = [min(width / (k * (w + gap) + gap), height / (-(-count // k) * (h + gap) + gap))
                  for k in range(1, count + 1)]
        assert scales[cols - 1] == max(scales)
        assert cols == scales.index(max(scales)) + 1  # the fewest columns among the best


def test_the_grid_follows_the_shape_of_its_room(qtbot, panel):
    shown(qtbot, panel, "deep")
    wide_cols = panel.cols
    panel.resize(700, 1100)
    qtbot.waitUntil(lambda: panel.cols < wide_cols and not panel.drawing, timeout=5000)
    QApplication.processEvents()
    assert panel.map_pixels() == pytest.approx(largest_possible(panel, DEEP), rel=0.02)
    # hover and click geometry follow the new grid
    for channel, row, col in ((0, 0, 0), (511, 13, 13), (300, 5, 9)):
        origin = panel.unit_origin(channel, row, col)
        assert panel.locate(QPointF(origin.x() + 0.5, origin.y() + 0.5)) == (channel, row, col)
    assert panel.locate(QPointF(0.5, 0.5)) is None  # the margin around the grid


def table_columns_whole(panel) -> bool:
    header = panel.table.horizontalHeader()
    last = header.count() - 1
    return header.sectionViewportPosition(last) + header.sectionSize(last) <= \
        panel.table.viewport().width() and header.sectionViewportPosition(0) >= 0


def test_table_beside_a_wide_grid_below_a_tall_one_every_column_whole(qtbot, panel):
    panel.resize(1800, 560)
    shown(qtbot, panel, "vgg")
    qtbot.waitUntil(lambda: panel._split.orientation() == Qt.Orientation.Horizontal, timeout=5000)
    QApplication.processEvents()
    assert panel.table.isVisible() and table_columns_whole(panel)
    panel.resize(560, 900)
    qtbot.waitUntil(lambda: panel._split.orientation() == Qt.Orientation.Vertical, timeout=5000)
    QApplication.processEvents()
    assert panel.table.isVisible() and table_columns_whole(panel)
    assert panel.table.height() >= 4 * panel.table.verticalHeader().defaultSectionSize()
    # squeezed beside the grid, the table keeps every column whole: the grid gives way
    panel.resize(1800, 560)
    qtbot.waitUntil(lambda: panel._split.orientation() == Qt.Orientation.Horizontal, timeout=5000)
    panel._split.setSizes([2000, 10])
    QApplication.processEvents()
    assert table_columns_whole(panel)


def test_the_table_can_be_hidden_and_the_maps_take_its_room(qtbot, panel):
    shown(qtbot, panel, "vgg")
    before = panel.map_pixels()
    panel.table_button.click()
    assert not panel.table.isVisible()
    qtbot.waitUntil(lambda: panel.map_pixels() > before * 1.1 and not panel.drawing,
                    timeout=5000)
    panel.table_button.click()
    assert panel.table.isVisible()
    panel.show_node("flat")  # a flat output has no table, whatever the button says
    assert not panel.table.isVisible() and panel.table_button.isChecked()
    panel.show_node("vgg")
    assert panel.table.isVisible()


def pixel_at(image, panel, point: QPointF) -> tuple[int, int, int]:
    scene = panel.view.mapViewToScene(point)
    widget = panel.plots.mapFromScene(scene)
    ratio = image.devicePixelRatio()
    return QColor(image.pixel(int(widget.x() * ratio), int(widget.y() * ratio))).getRgb()[:3]


def test_a_dead_map_is_framed_on_all_four_sides_on_screen(qtbot, panel):
    panel.resize(700, 650)
    shown(qtbot, panel, "dead")
    assert panel.cols == 3  # 9 maps in a square room
    image = panel.plots.viewport().grab().toImage()
    origin = panel.unit_origin(4, 0, 0)  # top-left of the dead map, in map units
    x0, y0, half = origin.x(), origin.y(), panel.gap / 2
    sides = {"top": QPointF(x0 + 5, y0 - half), "bottom": QPointF(x0 + 5, y0 + 10 + half),
             "left": QPointF(x0 - half, y0 + 5), "right": QPointF(x0 + 10 + half, y0 + 5)}
    colours = {side: pixel_at(image, panel, p) for side, p in sides.items()}
    assert all(c == DEAD_RGB for c in colours.values()), colours
    # a live map's gap stays grey: the map to the left of the dead one, on its far side
    live = panel.unit_origin(3, 0, 0)
    assert pixel_at(image, panel, QPointF(live.x() - half, live.y() + 5)) != DEAD_RGB


def test_the_colour_bar_forgets_the_last_range_when_nothing_is_shown(qtbot, panel):
    shown(qtbot, panel, "dead")
    lo, hi = panel.bar.levels()
    assert (lo, hi) == pytest.approx((float(DEAD.min()), float(DEAD.max())))
    assert (lo, hi) != (0.0, 1.0)
    panel.show_node(None)  # what a new design does
    assert tuple(panel.bar.levels()) == (0.0, 1.0)
    panel.controller.result = None
    panel.show_node("dead")
    # shown as "layer's", not "layer&#x27;s"
    assert panel.title.textFormat() == Qt.TextFormat.RichText
    rendered = QTextDocument()
    rendered.setHtml(panel.title.text())
    assert "this layer's output" in rendered.toPlainText()
    panel.controller.result = _Result({"dead": DEAD})


def test_another_layer_clears_the_picked_unit_everywhere(qtbot, panel):
    shown(qtbot, panel, "dead")
    with qtbot.waitSignal(panel.unit_picked):
        panel.pick(2, 3, 4)
    assert panel.marker.isVisible()
    with qtbot.waitSignal(panel.pick_cleared):
        panel.show_node("vgg")
    assert not panel.marker.isVisible() and panel.controller.cleared == 1
    panel.show_node("deep")  # nothing picked: nothing to clear
    assert panel.controller.cleared == 1


def test_maps_shown_is_announced_with_their_count(qtbot, panel):
    with qtbot.waitSignal(panel.maps_shown) as seen:
        panel.show_node("dead")
    assert seen.args == ["dead", 9]
    with qtbot.waitSignal(panel.maps_shown) as seen:
        panel.show_node("flat")
    assert seen.args == ["flat", 10]
    assert panel.sizeHint().width() > panel.table_width + 400
