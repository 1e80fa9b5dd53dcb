"""The activation panel: every channel map of the selected node for the current image (pyqtgraph),
or a bar chart for flat outputs (the output's bars named after the design's classes).

All maps are tiled into one image, coloured with viridis on a shared or per-map scale, so hundreds
of maps draw as fast as one. Hovering shows ``(channel, row, column) = value``; clicking a map
picks that unit (its receptive field is drawn on the image); double-clicking opens the map large.
Per-map statistics sit in a sortable table beside the grid, or below it when the panel is
taller than wide (the table can be hidden); maps that are all zero (dead ReLUs) are framed in red
there and in the grid. The grid takes the shape of the room it gets, so its maps are as large as
they can be there.
"""
from __future__ import annotations

import html
import math
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (QAbstractTableModel, QModelIndex, QObject, QPointF, QRectF, QSize,
                            Qt, QTimer, Signal)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QApplication, QComboBox, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QSizePolicy, QSplitter, QStackedWidget, QTableView,
                               QToolButton, QVBoxLayout, QWidget)

from designer.app.run.pictures import (COLORMAP, LUT, NONFINITE_LEGEND, best_columns,
                                       class_names, colour_map, finite_range, gap_for,
                                       grid_columns, map_statistics, nonfinite_maps,
                                       shared_levels, tile)
from designer.app.panels import roles
from designer.core.problems import num

PICK_PEN = pg.mkPen((255, 64, 64), width=2, cosmetic=True)
SHARED, PER_MAP = "Shared scale", "Per-map scale"
TOP_K = 5
GRID_PIXELS = 1_000_000  # above this, the grid shows maps at a reduced step (screens hold less)
#: grids of more values than this are tiled off the GUI thread (64 maps of 224×224 take tens of
#: milliseconds, which would stall the window)
ASYNC_VALUES = 250_000
DEAD_TEXT = QColor(200, 30, 30)
#: the statistics table below the grid: this share of the height, within these bounds (pixels)
TABLE_BELOW_SHARE, TABLE_BELOW_MIN, TABLE_BELOW_MAX = 0.3, 110, 260
#: width the colour bar and its axis take beside the grid (pixels), for choosing where the
#: table goes
BAR_ROOM = 70
#: the grid is laid out again this long after the room it gets stops changing (milliseconds)
REFIT_MS = 80
#: what the mouse does, on the line below the maps while it reads out no value
HINT_GRID = "Hover: values · click: receptive field · double-click: one map large"
HINT_ONE = "Hover: values · click: receptive field · ◀ All maps: back to the grid"
HINT_FLAT = "Hover: values · click: pick one"


def show_rgb(item: pg.ImageItem, rgb: np.ndarray) -> None:
    """Show a ready RGB uint8 image as it is: without levels pyqtgraph hands the pixels to Qt
    directly (with levels 0–255 it would rescale every pixel on every repaint)."""
    item.setLevels(None, update=False)
    item.setImage(rgb, autoLevels=False)


class Tiler(QObject):
    """Tiles large grids on a background thread. Only the newest request is worked on: one that
    is superseded before it starts is dropped, and the panel ignores late answers."""

    ready = Signal(int, object)  # request number, RGB image (or a message if it failed)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnn-designer tiles")
        self.latest = 0

    def request(self, maps: np.ndarray, levels: tuple[float, float] | None, dead: np.ndarray,
                gap: int, nonfinite: np.ndarray | None = None, cols: int | None = None) -> int:
        self.latest += 1
        self._pool.submit(self._work, self.latest, (maps, levels, dead, gap, nonfinite, cols))
        return self.latest

    def _work(self, number: int, args: tuple) -> None:
        if number != self.latest:
            return
        try:
            rgb: object = tile(*args)
        except MemoryError:
            rgb = "not enough memory to draw these maps: pick another layer"
        except Exception as exc:  # a bug: say so rather than leave the panel waiting
            rgb = f"couldn't draw these maps ({type(exc).__name__}: {exc})"
        try:
            self.ready.emit(number, rgb)
        except RuntimeError:  # the panel was closed meanwhile
            pass

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class StatsModel(QAbstractTableModel):
    """Per-map statistics: channel, min, max, mean, % zeros. Sorts itself (a sort proxy would ask
    Python for every comparison) and formats a row's cells once, when first shown."""

    HEADERS = ("channel", "min", "max", "mean", "% zeros")

    def __init__(self) -> None:
        super().__init__()
        self.stats = np.zeros((0, 4))
        self.order = np.zeros(0, np.intp)  # view row -> channel
        self._sort = (0, Qt.SortOrder.AscendingOrder)
        self._cells: dict[int, tuple[str, ...]] = {}

    def set_stats(self, stats: np.ndarray) -> None:
        self.beginResetModel()
        self.stats = stats
        self._cells = {}
        self.order = self._sorted()
        self.endResetModel()

    def channel(self, row: int) -> int:
        return int(self.order[row])

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        channels = [int(self.order[i.row()]) for i in before]
        self._sort = (column, order)
        self.order = self._sorted()
        row_of = np.empty_like(self.order)
        row_of[self.order] = np.arange(len(self.order))
        self.changePersistentIndexList(
            before, [self.index(int(row_of[ch]), i.column()) for ch, i in zip(channels, before)])
        self.layoutChanged.emit()

    def _sorted(self) -> np.ndarray:
        column, order = self._sort
        n = len(self.stats)
        keys = np.arange(n, dtype=np.float64) if column == 0 else self.stats[:, column - 1]
        if order == Qt.SortOrder.DescendingOrder:
            keys = -keys
        return np.argsort(keys, kind="stable")

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.stats)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def cells(self, channel: int) -> tuple[str, ...]:
        cells = self._cells.get(channel)
        if cells is None:
            lo, hi, mean, zeros = self.stats[channel]
            cells = self._cells[channel] = (str(channel), f"{lo:.3g}", f"{hi:.3g}", f"{mean:.3g}",
                                            f"{zeros * 100:.0f}")
        return cells

    def data(self, index, role=roles.DISPLAY):
        if role == roles.DISPLAY:
            return self.cells(int(self.order[index.row()]))[index.column()]
        if role == roles.ALIGNMENT:
            return roles.ALIGN_RIGHT
        if role == roles.FOREGROUND or role == roles.TOOLTIP:
            if self.stats[self.order[index.row()], 3] == 1.0:  # a dead map
                return DEAD_TEXT if role == roles.FOREGROUND else \
                    "every value of this map is 0 (a dead ReLU for this image)"
        return None


def _typical_map_size(width: float, height: float) -> float:
    """How large 64 square maps (with gaps of a tenth) come out in an area, in pixels."""
    if width <= 0 or height <= 0:
        return 0.0
    cols = best_columns(64, 10, 10, 1, width, height)
    rows = math.ceil(64 / cols)
    return 10 * min(width / (cols * 11 + 1), height / (rows * 11 + 1))


class ActivationPanel(QWidget):
    """See the module docstring. ``unit_picked(node_id, channel, unit)``: unit is (row, col) for
    maps (channel ≥ 0) or (index,) for flat outputs (channel −1). ``pick_cleared``: the unit
    picked before belongs to a layer no longer shown (its field should go too); the controller's
    ``pick_cleared`` is emitted with it, so the Run panel follows without being wired to this
    panel. ``maps_shown(node_id, count)``: a layer's maps (or values, for a flat output) are
    on screen; a window can give the panel more room then (``sizeHint`` says how much it would
    like)."""

    unit_picked = Signal(str, int, object)
    pick_cleared = Signal()
    maps_shown = Signal(str, int)

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.node_id: str | None = None
        self.values: np.ndarray | None = None  # the node's output for the image
        self.stats = np.zeros((0, 4))
        self.channel: int | None = None  # the map shown large, if any
        self.picked: tuple[int, tuple[int, ...]] | None = None
        self.tiler = Tiler(self)
        self.tiler.ready.connect(self._tiles_ready)
        self._pending: tuple[int, int] | None = None  # (tiler request, step) of the grid awaited

        self.title = QLabel("Run the design on an image to see what each layer does to it.")
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)  # its texts are HTML, ids escaped
        # two lines, whatever the text: a label that grows or shrinks with its text would re-lay
        # out the whole panel (plots included) on every selection and every hover
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.title.setFixedHeight(2 * self.fontMetrics().lineSpacing() + 4)
        self.stale = QLabel()
        self.stale.setStyleSheet("color: #a05a00; font-weight: bold")
        self.stale.hide()
        # where the run's numbers went bad (inf or NaN), on that layer and every later one
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #c82020; font-weight: bold")
        self.warning.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.warning.hide()
        self.scale = QComboBox()
        self.scale.addItems([SHARED, PER_MAP])
        self.scale.setToolTip("Shared: one colour scale for every map, so maps compare. "
                              "Per map: each map stretched to its own range, so weak maps show "
                              "their pattern too.")
        self.scale.currentTextChanged.connect(lambda _: self._redraw())
        self.back = QPushButton("◀ All maps")
        self.back.setToolTip("Back to the grid of every map")
        self.back.clicked.connect(self.show_grid)
        self.back.hide()
        self.table_button = QToolButton()
        self.table_button.setText("Statistics")
        self.table_button.setCheckable(True)
        self.table_button.setChecked(True)
        self.table_button.setToolTip("Show or hide the table of each map's min, max, mean and "
                                     "% zeros (hidden, the maps get its room)")
        self.table_button.toggled.connect(self._table_toggled)
        self.readout = QLabel(" ")
        self._hint = " "  # what the readout says while the mouse reads out nothing
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        # what the image shows, where that is known (a sample of the built-in data)
        self.image_class = QLabel()
        self.image_class.setTextFormat(Qt.TextFormat.RichText)
        self.image_class.hide()
        head = QHBoxLayout()
        head.addWidget(self.back)
        head.addWidget(self.title, 1)
        head.addWidget(self.image_class)
        head.addWidget(self.table_button)
        head.addWidget(self.scale)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(None)
        self.view = self.plots.addViewBox(row=0, col=0, lockAspect=True, invertY=True,
                                          enableMenu=False)
        self.view.setDefaultPadding(0)  # the grid has a margin of its own
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.marker = pg.QtWidgets.QGraphicsRectItem()
        self.marker.setPen(PICK_PEN)
        self.marker.setZValue(10)
        self.marker.hide()
        self.view.addItem(self.marker)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=COLORMAP, interactive=False, width=14)
        self.plots.addItem(self.bar, row=0, col=1)
        self.chart = pg.PlotWidget()
        self.chart.setBackground(None)
        self.chart.showGrid(y=True, alpha=0.3)
        self.chart.setMouseEnabled(x=True, y=False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=pg.mkBrush(LUT[170]))
        self.chart.addItem(self.bars)
        self.chart_marker = pg.InfiniteLine(angle=90, pen=PICK_PEN)
        self.chart_marker.hide()
        self.chart.addItem(self.chart_marker)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.plots)
        self.stack.addWidget(self.chart)

        self.stats_model = StatsModel()
        self.table = QTableView()
        self.table.setModel(self.stats_model)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 4)
        # fixed widths from the font: sizing to contents would read every row on every update
        header = self.table.horizontalHeader()
        header_font = header.fontMetrics()
        digits = max(self.fontMetrics().horizontalAdvance("−0.000e+00") + 8,
                     header_font.horizontalAdvance("mean") + 24)
        widths = (header_font.horizontalAdvance("channel") + 28, digits, digits, digits,
                  header_font.horizontalAdvance("% zeros") + 28)  # room for the sort arrow
        self._column_widths = widths
        for column, width in enumerate(widths):
            self.table.setColumnWidth(column, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        # every column fits: the splitter can't squeeze the table into cutting one off
        self.table_width = (sum(widths) + self.table.verticalScrollBar().sizeHint().width()
                            + 2 * self.table.frameWidth() + 2)
        self.table.setMinimumWidth(self.table_width)
        self.table.setMinimumHeight(4 * (self.fontMetrics().height() + 4))
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setToolTip("Statistics of each map for this image; sort by a column, "
                              "double-click a row to see that map large")
        self.table.doubleClicked.connect(
            lambda index: self.show_channel(self.stats_model.channel(index.row())))
        split = QSplitter()
        split.addWidget(self.stack)
        split.addWidget(self.table)
        split.setStretchFactor(0, 1)  # more room goes to the maps; the table keeps its size
        split.setStretchFactor(1, 0)
        split.setCollapsible(0, False)
        split.setCollapsible(1, False)
        split.setSizes([480, self.table_width])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(head)
        layout.addWidget(self.stale)
        layout.addWidget(self.warning)
        layout.addWidget(split, 1)
        layout.addWidget(self.readout)
        self._split = split
        self._table_wanted = True  # the Statistics button (the table is hidden for flat outputs)
        self._refit_timer = QTimer(self, singleShot=True, interval=REFIT_MS)
        self._refit_timer.timeout.connect(self._refit)
        self.view.sigResized.connect(lambda _: self._refit_timer.start())

        scene = self.plots.scene()
        scene.sigMouseMoved.connect(self._hover)
        scene.sigMouseClicked.connect(self._clicked)
        self.chart.scene().sigMouseMoved.connect(self._hover_chart)
        self.chart.scene().sigMouseClicked.connect(self._clicked_chart)
        controller.finished.connect(lambda _: self.show_node(self.node_id))
        controller.stale_changed.connect(self._show_stale)
        image_changed = getattr(controller, "image_changed", None)
        if image_changed is not None:
            image_changed.connect(self._show_image_class)
        self.names: list[str] | None = None  # the flat output's bars' class names

    # ------------------------------------------------------------------ what is shown

    def _show_image_class(self) -> None:
        """The class the image shows, beside the title, where it is known."""
        image = getattr(self.controller, "image", None)
        name = getattr(image, "class_name", None)
        if not name:
            self.image_class.hide()
            return
        data = getattr(image, "data", None)
        self.image_class.setText(f"Image: <b>{html.escape(name)}</b>")
        self.image_class.setToolTip(f"The image shows a {name}" + (
            f" (a validation image of {data}, never trained on)" if data else ""))
        self.image_class.show()

    def class_names_for(self, node_id: str | None, count: int) -> list[str] | None:
        """The class names of a flat node's values when it is the network's output, or the
        logits an output Softmax takes, and the design names its classes; else None."""
        result = self.controller.result
        design = getattr(result, "design", None)
        analysis = getattr(result, "analysis", None)
        out = getattr(analysis, "output", None)
        if design is None or out is None or node_id is None:
            return None
        try:
            logits = (design.sources(out)[0] if design.node(out).type == "Softmax"
                      else out)
        except (KeyError, IndexError, AttributeError):
            logits = out
        if node_id not in (out, logits):
            return None
        document = getattr(self.controller, "document", None)
        live = getattr(getattr(document, "design", None), "classes", None)
        classes = live if live is not None and len(live) == count else getattr(
            design, "classes", None)
        if classes is None or len(classes) != count:
            return None
        return class_names(classes, count)

    def show_node(self, node_id: str | None) -> None:
        """Show ``node_id``'s output from the last run (or say why there is none)."""
        same_node = node_id == self.node_id
        self.node_id = node_id
        result = self.controller.result
        self.values = None
        self._set_hint(" ")
        if not same_node:
            had_pick = self.picked is not None
            self.channel, self.picked = None, None
            if had_pick:
                self._clear_pick()
        if node_id is None:
            self._message("Select a layer on the canvas to see its output for the image.")
            return
        if result is None:
            self._message("Run the design on an image (Run panel, F5) to see this layer's output.")
            return
        if node_id not in result.activations:
            self._message(f"{node_id} was not part of the last run: run again (F5).")
            return
        self.values = result.activations[node_id]
        self._redraw()

    def _clear_pick(self) -> None:
        """The picked unit's layer is no longer shown: nothing should point at it any more."""
        self.marker.hide()
        self.chart_marker.hide()
        self.pick_cleared.emit()
        clear = getattr(self.controller, "clear_pick", None)
        if clear is not None:
            clear()

    def _set_hint(self, hint: str) -> None:
        self._hint = hint
        self.readout.setText(hint)

    def _set_title(self, html_text: str) -> None:
        """The two lines above the maps, whole in the tooltip should they not fit."""
        self.title.setText(html_text)
        self.title.setToolTip(html_text)

    def _message(self, text: str) -> None:
        self._pending = None
        self._set_title(html.escape(text))
        self.stack.setCurrentWidget(self.plots)
        self.image.clear()
        self._drawn = None
        self.marker.hide()
        self.bars.setOpts(x=[], height=[])
        self.stats_model.set_stats(np.zeros((0, 4)))
        self.stats = np.zeros((0, 4))
        self.back.hide()
        self._set_bar(0.0, 1.0, "value")  # no maps: no range left from earlier ones
        self._show_table()
        self._show_nonfinite()

    def _set_bar(self, lo: float, hi: float, label: str) -> None:
        if (lo, hi, label) != self._bar_shown:  # the colour bar's axis is costly to lay out
            self._bar_shown = (lo, hi, label)
            self.bar.setLevels((lo, hi))
            self.bar.setLabel("right", label)

    def _show_stale(self, stale: bool) -> None:
        self.stale.setText("These results are from before your last change: run again (F5) to "
                           "update them." if stale else "")
        self.stale.setVisible(stale)

    def show_grid(self) -> None:
        self.channel = None
        self._redraw()

    def show_channel(self, channel: int) -> None:
        if self.values is not None and self.values.ndim == 3 and 0 <= channel < len(self.values):
            self.channel = channel
            self._redraw()

    def _redraw(self) -> None:
        v = self.values
        self._pending = None  # whatever is drawn now replaces a grid still being tiled
        if v is None:
            return
        if v.ndim == 1:
            self._draw_flat(v)
            return
        self.stack.setCurrentWidget(self.plots)
        self._show_table()
        self.scale.setEnabled(True)
        c, h, w = v.shape
        if v is not self._drawn:
            known = getattr(self.controller.result, "stats", None) or {}
            self.stats = known.get(self.node_id)  # worked out on the worker after the run
            if self.stats is None or len(self.stats) != c:
                self.stats = map_statistics(v)
            self.stats_model.set_stats(self.stats)
        shared = self.scale.currentText() == SHARED
        bad = nonfinite_maps(self.stats)
        # the colour scale spans the finite values: inf and NaN have colours of their own
        lo, hi = shared_levels(v, self.stats) if shared else (0.0, 1.0)
        dead = self.stats[:, 3] == 1.0
        if self.channel is None:
            # a grid larger than a screen shows every step-th row and column of each map (the
            # large view of one map is always whole); image coordinates stay in map units
            step = max(1, math.isqrt(math.ceil(c * h * w / GRID_PIXELS)))
            self.gap = gap_for(h, w)
            self.gap += -(h + self.gap) % step
            self.cols = self._columns(c, h, w, self.gap)
            small = v if step == 1 else v[:, ::step, ::step]
            shown_gap = (h + self.gap) // step - small.shape[1]
            self.margin = shown_gap * step  # the grid's own margin, in map units
            levels = (lo, hi) if shared else None
            if small.size > ASYNC_VALUES:  # shown when the tiler is done (``_tiles_ready``)
                self.image.clear()
                self._pending = (self.tiler.request(small, levels, dead, shown_gap, bad,
                                                    self.cols), step)
            else:
                self._show_tiles(tile(small, levels, dead, shown_gap, bad, self.cols), step)
            self.back.hide()
            n_dead = int(dead.sum())
            self._set_title(
                f"<b>{html.escape(self.node_id)}</b>: {num(c)} map{'s' if c != 1 else ''} of "
                f"{h}×{w}"
                + (f", <span style='color:#c82020'>{n_dead} all zero</span>" if n_dead else ""))
            self._set_hint(HINT_GRID)
        else:
            ch = self.channel
            m = v[ch]
            if not shared:
                lo, hi = (float(m.min()), float(m.max())) if not bad[ch] else \
                    (finite_range(m) or (0.0, 1.0))
            show_rgb(self.image, colour_map(m, lo, hi))
            self.image.setRect(QRectF(0, 0, w, h))
            self.back.show()
            s = self.stats[ch]
            self._set_title(
                f"<b>{html.escape(self.node_id)}</b>, channel {ch} ({h}×{w}): min {s[0]:.3g}, "
                f"max {s[1]:.3g}, mean {s[2]:.3g}, {s[3] * 100:.0f}% zeros")
            self._set_hint(HINT_ONE)
        label = "value" if shared or self.channel is not None else "per map: min → max"
        self._set_bar(lo, hi, label)
        self._drawn = v
        self.view.enableAutoRange()
        self._place_marker()
        self._show_nonfinite()
        self.maps_shown.emit(self.node_id, c)

    _drawn: np.ndarray | None = None
    _bar_shown: tuple | None = None  # (low, high, label) the colour bar shows
    gap = margin = 0
    cols = 1

    def _columns(self, c: int, h: int, w: int, gap: int) -> int:
        """Columns of the grid: those that make the maps largest in the room the view has now
        (near-square until the view has been laid out)."""
        width, height = self.view.width(), self.view.height()
        if width < 20 or height < 20:
            return grid_columns(c, h, w)
        return best_columns(c, h, w, gap, width, height)

    def _refit(self) -> None:
        """The view's room changed: lay the grid out again if other columns now fit better."""
        v = self.values
        if v is None or v.ndim != 3 or self.channel is not None or not self.isVisible():
            return
        c, h, w = v.shape
        if self._columns(c, h, w, self.gap) != self.cols:
            self._redraw()

    def map_pixels(self) -> float | None:
        """How many screen pixels the width of one map takes now (None without a grid)."""
        v = self.values
        if v is None or v.ndim != 3 or self.stack.currentWidget() is not self.plots:
            return None
        (x_size, _) = self.view.viewPixelSize()
        if not x_size or not math.isfinite(x_size):
            return None
        return v.shape[2] / x_size

    # ------------------------------------------------------------------ room

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """Room for a grid of 64 maps of about 64 pixels beside the table."""
        return QSize(64 * 8 + BAR_ROOM + self.table_width + 24, 64 * 8 + 120)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(240, 200)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._place_table()

    def _table_toggled(self, on: bool) -> None:
        self._table_wanted = on
        self._show_table()

    def _show_table(self) -> None:
        """The table is shown when asked for and there are maps (flat outputs have none)."""
        flat = self.values is not None and self.values.ndim == 1
        visible = self._table_wanted and not flat
        if self.table.isHidden() == visible:
            self.table.setVisible(visible)
            self._place_table(force=True)

    def _place_table(self, force: bool = False) -> None:
        """Beside the grid or below it: wherever a typical grid (64 square maps) comes out
        larger. The same for every layer, so the panel doesn't rearrange itself from one
        selection to the next."""
        split = self._split
        width, height = split.width(), split.height()
        if width <= 0 or height <= 0:
            return
        below_h = int(min(max(height * TABLE_BELOW_SHARE, TABLE_BELOW_MIN), TABLE_BELOW_MAX))
        beside = _typical_map_size(width - self.table_width - BAR_ROOM, height)
        below = _typical_map_size(width - BAR_ROOM, height - below_h)
        orientation = (Qt.Orientation.Horizontal if beside >= below
                       else Qt.Orientation.Vertical)
        if orientation == split.orientation() and not force:
            return
        split.setOrientation(orientation)
        # below the grid the table is wider than its columns: they share the width evenly
        header = self.table.horizontalHeader()
        if orientation == Qt.Orientation.Horizontal:
            header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
            for column, column_width in enumerate(self._column_widths):
                self.table.setColumnWidth(column, column_width)
        else:
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        if self.table.isHidden():
            return
        if orientation == Qt.Orientation.Horizontal:
            split.setSizes([max(1, width - self.table_width), self.table_width])
        else:
            split.setSizes([max(1, height - below_h), below_h])

    def _show_tiles(self, rgb: np.ndarray, step: int) -> None:
        show_rgb(self.image, rgb)
        self.image.setRect(QRectF(0, 0, rgb.shape[1] * step, rgb.shape[0] * step))

    def _tiles_ready(self, number: int, rgb: object) -> None:
        if self._pending is None or self._pending[0] != number:
            return  # something else has been drawn since
        step = self._pending[1]
        self._pending = None
        if isinstance(rgb, str):
            self._set_title(html.escape(rgb))
            return
        self._show_tiles(rgb, step)
        self.view.enableAutoRange()

    @property
    def drawing(self) -> bool:
        """A large grid is being tiled off the GUI thread."""
        return self._pending is not None

    def _draw_flat(self, v: np.ndarray) -> None:
        self.stack.setCurrentWidget(self.chart)
        self._show_table()
        self.back.hide()
        self.scale.setEnabled(False)
        finite = np.isfinite(v)
        # bars of inf or NaN can't be drawn: they stay at 0, and the title counts them
        heights = v if finite.all() else np.where(finite, v, 0)
        self.bars.setOpts(x=np.arange(len(v)), height=heights, width=0.8)
        self.chart.enableAutoRange()
        result = self.controller.result
        node_type = result.design.node(self.node_id).type if result is not None else ""
        self.names = self.class_names_for(self.node_id, len(v))
        # the class names under the bars (pyqtgraph leaves out the ones that would overlap)
        self.chart.getAxis("bottom").setTicks(
            None if self.names is None else [list(enumerate(self.names))])
        span = finite_range(v)
        text = f"<b>{html.escape(self.node_id)}</b>: {num(len(v))} values" + (
            f", min {span[0]:.3g}, max {span[1]:.3g}" if span is not None else "")
        if not finite.all():
            text += (f", <span style='color:#c82020'>{num(int((~finite).sum()))} inf or NaN "
                     f"(drawn at 0)</span>")
        if node_type == "Softmax":
            top = np.argsort(-v, kind="stable")[:TOP_K]
            text += " — top classes: " + ", ".join(
                (f"{html.escape(self.names[i])} ({v[i]:.3f})" if self.names is not None
                 else f"#{i} ({v[i]:.3f})") for i in top)
        elif self.names is not None:
            text += " — one per class (the logits)"
        self._set_title(text)
        self._set_hint(HINT_FLAT)
        self._place_marker()
        self._show_nonfinite()
        self.maps_shown.emit(self.node_id, len(v))

    def _show_nonfinite(self) -> None:
        """The line above the maps saying where the run's numbers went bad, on that layer and
        every later one; hidden elsewhere."""
        result, v = self.controller.result, self.values
        bad = getattr(result, "nonfinite", None)
        if bad is None or v is None or self.node_id not in result.after_nonfinite:
            if not self.warning.isHidden():
                self.warning.hide()
            return
        what = "overflow" if bad.kind == "overflow" else "NaN"
        if v.ndim == 3:
            count = int(nonfinite_maps(self.stats).sum())
            here = f"{num(count)} of {num(len(v))} maps hold inf or NaN"
        else:
            count = int((~np.isfinite(v)).sum())
            here = f"{num(count)} of {num(len(v))} values are inf or NaN"
        legend = f" ({NONFINITE_LEGEND})" if count and v.ndim == 3 else ""
        message = bad.message[:1].upper() + bad.message[1:]
        if self.node_id == bad.node_id:
            text = f"⚠ {message}. Here: {here}{legend}."
        else:
            text = (f"⚠ {what} from {bad.node_id} on: this layer comes after it. Here: "
                    f"{here}{legend}.")
        self.warning.setText(text)
        self.warning.setToolTip(message)
        self.warning.show()

    # ------------------------------------------------------------------ mouse

    def locate(self, point: QPointF) -> tuple[int, int, int] | None:
        """(channel, row, col) under a point in image coordinates, or None (a gap, outside)."""
        v = self.values
        if v is None or v.ndim != 3:
            return None
        c, h, w = v.shape
        x, y = point.x(), point.y()
        if x < 0 or y < 0:
            return None
        if self.channel is not None:
            row, col = int(y), int(x)
            return (self.channel, row, col) if row < h and col < w else None
        x, y = x - self.margin, y - self.margin
        if x < 0 or y < 0:
            return None
        step_y, step_x = h + self.gap, w + self.gap
        grid_row, row = divmod(int(y), step_y)
        grid_col, col = divmod(int(x), step_x)
        channel = grid_row * self.cols + grid_col
        if row >= h or col >= w or grid_col >= self.cols or channel >= c:
            return None
        return channel, row, col

    def unit_origin(self, channel: int, row: int, col: int) -> QPointF:
        """Top-left corner of a unit in image coordinates (the inverse of ``locate``)."""
        if self.channel is not None:
            return QPointF(col, row)
        _, h, w = self.values.shape
        grid_row, grid_col = divmod(channel, self.cols)
        return QPointF(self.margin + grid_col * (w + self.gap) + col,
                       self.margin + grid_row * (h + self.gap) + row)

    def _hover(self, scene_pos) -> None:
        if self.values is None or self.values.ndim != 3:
            return
        where = self.locate(self.view.mapSceneToView(scene_pos))
        if where is None:
            self.readout.setText(self._hint)
            return
        ch, r, c = where
        s = self.stats[ch]
        self.readout.setText(f"({ch}, {r}, {c}) = {self.values[ch, r, c]:.4g}     "
                             f"channel {ch}: min {s[0]:.3g}, max {s[1]:.3g}, mean {s[2]:.3g}, "
                             f"{s[3] * 100:.0f}% zeros")

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        where = self.locate(self.view.mapSceneToView(event.scenePos()))
        if where is None:
            return
        # a second click on the same map soon after the first is a double-click (the scene's own
        # flag is lost when the view box takes the press)
        now = time.monotonic()
        last, self._last_click = self._last_click, (now, where[0])
        double = event.double() or (last is not None and last[1] == where[0]
                                    and now - last[0] <= QApplication.doubleClickInterval() / 1000)
        if double and self.channel is None:
            self.show_channel(where[0])
            self._last_click = None
        self.pick(*where)

    _last_click: tuple[float, int] | None = None

    def pick(self, channel: int, row: int, col: int) -> None:
        """Pick a unit of a map (what a click does)."""
        self.picked = (channel, (row, col))
        self._place_marker()
        self.unit_picked.emit(self.node_id, channel, (row, col))

    def pick_index(self, index: int) -> None:
        """Pick one value of a flat output (what a click on a bar does)."""
        self.picked = (-1, (index,))
        self._place_marker()
        self.unit_picked.emit(self.node_id, -1, (index,))

    def _place_marker(self) -> None:
        v, picked = self.values, self.picked
        if v is None or picked is None:
            self.marker.hide()
            self.chart_marker.hide()
            return
        channel, unit = picked
        if v.ndim == 1 and len(unit) == 1 and unit[0] < len(v):
            self.chart_marker.setValue(unit[0])
            self.chart_marker.show()
            return
        if v.ndim != 3 or len(unit) != 2 or channel >= len(v):
            self.marker.hide()
            return
        if self.channel is not None and channel != self.channel:
            channel = self.channel  # the same unit, on the map shown large
            self.picked = (channel, unit)
        origin = self.unit_origin(channel, *unit)
        self.marker.setRect(origin.x(), origin.y(), 1, 1)
        self.marker.show()

    def _hover_chart(self, scene_pos) -> None:
        v = self.values
        if v is None or v.ndim != 1:
            return
        i = round(self.chart.getPlotItem().vb.mapSceneToView(scene_pos).x())
        name = f" {self.names[i]}" if self.names is not None and 0 <= i < len(self.names) else ""
        self.readout.setText(f"({i}){name} = {v[i]:.4g}" if 0 <= i < len(v) else self._hint)

    def _clicked_chart(self, event) -> None:
        v = self.values
        if v is None or v.ndim != 1 or event.button() != Qt.MouseButton.LeftButton:
            return
        i = round(self.chart.getPlotItem().vb.mapSceneToView(event.scenePos()).x())
        if 0 <= i < len(v):
            self.pick_index(i)
