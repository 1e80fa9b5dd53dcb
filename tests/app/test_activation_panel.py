"""The activation panel draws large grids off the GUI thread: the grid that arrives is the one the
synchronous path would draw, and an answer that comes after something else was drawn is ignored."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QObject, Signal

from designer.app.run.activations import ASYNC_VALUES, ActivationPanel
from designer.app.run.pictures import gap_for, map_statistics, tile


class _Result:
    def __init__(self, activations):
        self.activations = activations
        self.stats = {}


class _Controller(QObject):
    """What the panel reads of a RunController: a result and two signals."""

    finished = Signal(object)
    stale_changed = Signal(bool)

    def __init__(self, activations) -> None:
        super().__init__()
        self.result = _Result(activations)


RNG = np.random.default_rng(7)
BIG = np.maximum(RNG.standard_normal((40, 90, 90)), 0).astype(np.float32)  # 324,000 values
SMALL = RNG.standard_normal((6, 12, 12)).astype(np.float32)


@pytest.fixture
def panel(qtbot):
    assert BIG.size > ASYNC_VALUES >= SMALL.size
    controller = _Controller({"big": BIG, "small": SMALL, "big2": BIG[::-1].copy()})
    widget = ActivationPanel(controller)
    qtbot.addWidget(widget)
    widget.controller_ref = controller  # keep it alive as long as the panel
    widget.resize(900, 400)
    widget.show()
    yield widget
    widget.tiler.shutdown()


def expected_grid(maps, cols):
    stats = map_statistics(maps)
    levels = (float(stats[:, 0].min()), float(stats[:, 1].max()))
    return tile(maps, levels, stats[:, 3] == 1.0, gap_for(*maps.shape[1:]), cols=cols)


def settle(qtbot, panel):
    """Let the tiler finish whatever it has and deliver its answers."""
    panel.tiler._pool.submit(int).result(timeout=30)
    qtbot.wait(30)


def test_a_large_grid_arrives_later_and_equals_the_synchronous_drawing(qtbot, panel):
    panel.show_node("big")
    assert panel.drawing and panel.image.image is None  # nothing stale shown meanwhile
    qtbot.waitUntil(lambda: not panel.drawing, timeout=30_000)
    assert np.array_equal(panel.image.image, expected_grid(BIG, panel.cols))
    # hover and click geometry follow the grid: the unit under a point is the one drawn there
    origin = panel.unit_origin(17, 40, 3)
    assert panel.locate(origin) == (17, 40, 3)


def test_a_small_grid_is_drawn_at_once(qtbot, panel):
    panel.show_node("small")
    assert not panel.drawing
    assert np.array_equal(panel.image.image, expected_grid(SMALL, panel.cols))


def test_a_late_grid_does_not_replace_what_was_drawn_since(qtbot, panel):
    panel.show_node("big")
    panel.show_node("small")  # drawn at once, while the big grid may still be tiled
    settle(qtbot, panel)
    assert np.array_equal(panel.image.image, expected_grid(SMALL, panel.cols))
    panel.show_node("big")
    panel.show_node("big2")  # the newer of two large requests wins
    qtbot.waitUntil(lambda: not panel.drawing, timeout=30_000)
    settle(qtbot, panel)
    assert np.array_equal(panel.image.image, expected_grid(BIG[::-1].copy(), panel.cols))


def test_opening_one_map_while_the_grid_is_tiled_keeps_that_map(qtbot, panel):
    panel.show_node("big")
    panel.show_channel(5)
    settle(qtbot, panel)
    assert panel.image.image.shape == (90, 90, 3)
    assert panel.channel == 5


def test_the_grid_reaches_qt_pixel_for_pixel(qtbot, panel):
    """Shown without levels, the RGB grid goes to Qt unchanged (no rescaling on repaint)."""
    panel.show_node("small")
    panel.image.render()
    qimage = panel.image.qimage
    expected = expected_grid(SMALL, panel.cols)
    assert (qimage.height(), qimage.width()) == expected.shape[:2]
    pixels = [[qimage.pixelColor(x, y).getRgb()[:3] for x in range(qimage.width())]
              for y in range(qimage.height())]
    assert np.array_equal(np.array(pixels, np.uint8), expected)


STATS = np.array([[0.0, 2.0, 0.5, 0.25],
                  [-1.0, 3.0, 0.5, 0.0],
                  [0.0, 0.0, 0.0, 1.0],   # a dead map
                  [-1.0, 1.0, 0.1, 0.5]])


def shown_channels(model):
    return [int(model.data(model.index(r, 0))) for r in range(model.rowCount())]


@pytest.mark.parametrize("column", range(5))
@pytest.mark.parametrize("descending", [False, True])
def test_statistics_table_sorts_like_a_stable_sort(qtbot, column, descending):
    from PySide6.QtCore import Qt

    from designer.app.run.activations import StatsModel
    model = StatsModel()
    model.set_stats(STATS)
    model.sort(column, Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder)
    # reference: Python's stable sort of the channels by the column's value (ties keep channel
    # order in both directions)
    key = (lambda ch: ch) if column == 0 else (lambda ch: STATS[ch, column - 1])
    expected = sorted(range(4), key=lambda ch: -key(ch) if descending else key(ch))
    assert shown_channels(model) == expected
    assert [model.channel(r) for r in range(4)] == expected
    row = expected.index(2)  # the dead map, wherever it lands, is marked
    assert model.data(model.index(row, 1), Qt.ItemDataRole.ForegroundRole.value) is not None
    assert model.data(model.index(expected.index(0), 1),
                      Qt.ItemDataRole.ForegroundRole.value) is None


def test_sorting_keeps_the_selected_channel_selected_and_double_click_opens_it(qtbot, panel):
    from PySide6.QtCore import Qt
    panel.show_node("small")
    table, model = panel.table, panel.stats_model
    table.selectRow(4)
    assert model.channel(4) == 4
    table.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # by max, largest first
    maxima = map_statistics(SMALL)[:, 1]
    assert [model.channel(r) for r in range(6)] == sorted(range(6), key=lambda ch: -maxima[ch])
    selected = table.selectionModel().selectedRows()
    assert [model.channel(i.row()) for i in selected] == [4]
    table.doubleClicked.emit(selected[0])
    assert panel.channel == 4
