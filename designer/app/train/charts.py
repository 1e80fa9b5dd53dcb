"""The Train panel's live views: learning curves (pyqtgraph), the first convolution's filters,
the confusion matrix, the most confidently wrong images and the data's preview.

Each view keeps its pyqtgraph items alive and only hands them new data; the curves buffer the
points they are given and redraw on a timer at most ``REDRAW_HZ`` times a second, however often
points arrive.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QSizePolicy, QWidget

#: redraws of the curves per second at most (a redraw of both plots with the filters and the
#: progress line costs the GUI thread 10–20 ms: at 5 a second the window keeps ~90 % of a core
#: free even when the worker and the window share one)
REDRAW_HZ = 5
#: exponential smoothing of the per-step training curves (TensorBoard's slider; 0 = none)
SMOOTHING = 0.9
TRAIN_PEN = pg.mkPen((31, 119, 180), width=2)
RAW_PEN = pg.mkPen((31, 119, 180, 60), width=1)
VAL_PEN = pg.mkPen((230, 110, 20), width=2)
VAL_BRUSH = pg.mkBrush(230, 110, 20)
CONFUSION_MAP = pg.colormap.get("CET-L12") if "CET-L12" in pg.colormap.listMaps() else \
    pg.colormap.get("viridis")


def rgb_image(pixels: np.ndarray) -> QImage:
    """A uint8 RGB (H, W, 3) array as a QImage that owns its pixels."""
    pixels = np.ascontiguousarray(pixels)
    h, w, _ = pixels.shape
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def thumbnail(pixels: np.ndarray, size: int) -> QPixmap:
    """An image scaled up (or down) to fit ``size`` pixels, its pixels kept sharp."""
    image = rgb_image(pixels)
    return QPixmap.fromImage(image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation))


class Series:
    """A growing (x, y) series in an array that doubles when full (appends are amortised
    O(1); ``x``/``y`` are views, no copies)."""

    def __init__(self) -> None:
        self._data = np.zeros((2, 256))
        self.n = 0

    def extend(self, x: np.ndarray, y: np.ndarray) -> None:
        k = len(x)
        if self.n + k > self._data.shape[1]:
            grown = np.zeros((2, max(2 * self._data.shape[1], self.n + k)))
            grown[:, :self.n] = self._data[:, :self.n]
            self._data = grown
        self._data[0, self.n:self.n + k] = x
        self._data[1, self.n:self.n + k] = y
        self.n += k

    @property
    def x(self) -> np.ndarray:
        return self._data[0, :self.n]

    @property
    def y(self) -> np.ndarray:
        return self._data[1, :self.n]

    def clear(self) -> None:
        self.n = 0


class Smoother:
    """Exponential moving average with TensorBoard's debiasing (the first points aren't pulled
    toward 0), carried across calls."""

    def __init__(self, weight: float = SMOOTHING) -> None:
        self.weight = weight
        self.last = 0.0
        self.count = 0

    def __call__(self, values: np.ndarray) -> np.ndarray:
        out = np.empty(len(values))
        w = self.weight
        for i, v in enumerate(values):
            if not math.isfinite(v):
                out[i] = v
                continue
            self.last = self.last * w + (1 - w) * v
            self.count += 1
            out[i] = self.last / (1 - w ** self.count) if w > 0 else v
        return out

    def reset(self) -> None:
        self.last, self.count = 0.0, 0


#: the width of the curves' y axes, in pixels (room for "100" or "0.25" and the ticks)
AXIS_WIDTH = 40
#: below this height the curves are titles and axes only: the panel keeps them this tall
CURVES_MIN_HEIGHT = 180


class CurvesView(pg.GraphicsLayoutWidget):
    """Loss and accuracy: training per step (faint as measured, solid smoothed) and validation
    per epoch (dots joined), against epochs."""

    def __init__(self, parent: QWidget | None = None, timer: bool = True) -> None:
        super().__init__(parent)
        self.setBackground("w")
        # one legend above both plots, so neither has a box over its curves
        self.addLabel("<span style='color:#1f77b4'>━━</span> training &nbsp; "
                      "<span style='color:#e66e14'>━●━</span> validation", colspan=2, size="8pt",
                      color="#444")
        self.nextRow()
        self.loss_plot = self.addPlot(title="Loss")
        self.accuracy_plot = self.addPlot(title="Accuracy (%)")
        self.curves = {}
        for name, plot in (("loss", self.loss_plot), ("accuracy", self.accuracy_plot)):
            # (no grid: its lines are drawn with the axes on every repaint, which more than
            # doubled the cost of a redraw; the curves' shape is what matters)
            plot.setLabel("bottom", "epoch")
            plot.getAxis("bottom").enableAutoSIPrefix(False)
            plot.getAxis("left").enableAutoSIPrefix(False)
            # a fixed width: the plots keep their place as the labels change, and side by side
            # their axes line up
            plot.getAxis("left").setWidth(AXIS_WIDTH)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.setMenuEnabled(False)
            raw = plot.plot(pen=RAW_PEN)
            smooth = plot.plot(pen=TRAIN_PEN, name="training")
            val = plot.plot(pen=VAL_PEN, symbol="o", symbolSize=6, symbolBrush=VAL_BRUSH,
                            symbolPen=None, name="validation")
            self.curves[name] = (raw, smooth, val)
        self.accuracy_plot.setYRange(0, 100, padding=0.02)
        self.accuracy_plot.enableAutoRange(y=False)
        self.series = {key: Series() for key in ("loss", "loss_smooth", "accuracy",
                                                 "accuracy_smooth", "val_loss", "val_accuracy")}
        self.smoothers = {"loss": Smoother(), "accuracy": Smoother()}
        self._dirty = False
        self.redraws = 0
        self._timer = QTimer(self, interval=round(1000 / REDRAW_HZ))
        self._timer.timeout.connect(self.redraw)
        if timer:  # (else the owner calls redraw, e.g. in step with its other views)
            self._timer.start()

    def sizeHint(self):  # noqa: N802 (Qt's name)
        return QSize(360, 240)

    def reset(self, epochs: int | None = None) -> None:
        """Empty the curves for a new run of ``epochs`` (the x axis then spans the whole run,
        so the curves grow across it)."""
        for series in self.series.values():
            series.clear()
        for smoother in self.smoothers.values():
            smoother.reset()
        for plot in (self.loss_plot, self.accuracy_plot):
            if epochs is not None:
                plot.setXRange(0, epochs, padding=0.02)
                plot.enableAutoRange(x=False, y=True)
            else:
                plot.enableAutoRange(x=True, y=True)
        self.accuracy_plot.enableAutoRange(y=False)
        self.accuracy_plot.setYRange(0, 100, padding=0.02)
        self._dirty = True
        self.redraw()

    def add_steps(self, x: np.ndarray, loss: np.ndarray, accuracy: np.ndarray) -> None:
        accuracy = 100 * np.asarray(accuracy, float)
        self.series["loss"].extend(x, loss)
        self.series["loss_smooth"].extend(x, self.smoothers["loss"](np.asarray(loss, float)))
        self.series["accuracy"].extend(x, accuracy)
        self.series["accuracy_smooth"].extend(x, self.smoothers["accuracy"](accuracy))
        self._dirty = True

    def add_epoch(self, epoch: float, val_loss: float, val_accuracy: float) -> None:
        self.series["val_loss"].extend(np.array([epoch]), np.array([val_loss]))
        self.series["val_accuracy"].extend(np.array([epoch]), np.array([100 * val_accuracy]))
        self._dirty = True

    def redraw(self) -> None:
        """Hand the curves their points if any came since the last time (cheap otherwise)."""
        if not self._dirty or not self.isVisible() and self.series["loss"].n:
            return  # (hidden: drawn when shown; see showEvent)
        self._dirty = False
        self.redraws += 1
        for name in ("loss", "accuracy"):
            raw, smooth, val = self.curves[name]
            s = self.series
            raw.setData(s[name].x, s[name].y)
            smooth.setData(s[name + "_smooth"].x, s[name + "_smooth"].y)
            val.setData(s["val_" + name].x, s["val_" + name].y)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self.redraw()

    def point_count(self) -> dict[str, int]:
        """How many points each curve holds as drawn (for tests)."""
        return {name: len(item.getData()[0]) if item.getData()[0] is not None else 0
                for key in ("loss", "accuracy")
                for name, item in zip((key, key + "_smooth", "val_" + key), self.curves[key])}


class ImageView(pg.GraphicsLayoutWidget):
    """One RGB image, as large as fits, pixels kept square; a title above."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.label = self.addLabel(title, color="k", size="9pt")
        self.nextRow()
        self.box = self.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.box.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        self.shape: tuple[int, ...] | None = None

    def set_rgb(self, rgb: np.ndarray, title: str | None = None) -> None:
        self.image.setLevels(None, update=False)
        self.image.setImage(rgb, autoLevels=False)
        if rgb.shape != self.shape:
            self.shape = rgb.shape
            self.box.autoRange(padding=0.02)
        if title is not None:
            self.label.setText(title, color="k", size="9pt")

    def reset(self, title: str = "") -> None:
        self.image.clear()
        self.shape = None
        self.label.setText(title, color="k", size="9pt")


class ConfusionView(QWidget):
    """The validation's confusion matrix: rows the true class, columns the predicted one; each
    cell coloured by its share of the row (so a class's recall reads the same for any class
    size) and labelled with its count; class names on both axes (the columns' written upward).
    Painted in one go with QPainter: a new matrix costs one repaint, whatever the classes."""

    EMPTY = "Confusion matrix: after the first epoch"
    MIN_TEXT_CELL = 14  # counts are written in cells at least this many pixels a side
    MARGIN = 4

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.confusion: np.ndarray | None = None
        self.classes: list[str] = []
        self.title = self.EMPTY
        self._share: np.ndarray | None = None
        self._lut = CONFUSION_MAP.getLookupTable(nPts=256, alpha=False)
        self.setMouseTracking(True)
        self.setMinimumSize(100, 60)
        self.setAutoFillBackground(False)

    def set_matrix(self, confusion: np.ndarray, classes: Sequence[str], title: str = "") -> None:
        k = confusion.shape[0]
        rows = confusion.sum(axis=1, keepdims=True)
        self._share = confusion / np.where(rows > 0, rows, 1)
        self.confusion = np.asarray(confusion)
        self.classes = [str(c) for c in classes][:k] + [str(i) for i in range(len(classes), k)]
        self.title = title or "Confusion matrix"
        self.update()

    def reset(self) -> None:
        self.confusion, self._share, self.classes = None, None, []
        self.title = self.EMPTY
        self.update()

    def geometry_of(self) -> tuple[QRect, float, int]:
        """(the matrix's rectangle, the side of a cell, the label width) for the widget's size."""
        metrics = self.fontMetrics()
        k = self.confusion.shape[0] if self.confusion is not None else 1
        label = min(90, max((metrics.horizontalAdvance(n) for n in self.classes), default=10) + 6)
        top = metrics.height() + 2 * self.MARGIN
        side = min(self.width() - label - metrics.height() - 3 * self.MARGIN,
                   self.height() - top - label - metrics.height() - 2 * self.MARGIN)
        cell = max(1.0, side / k)
        left = label + metrics.height() + 2 * self.MARGIN
        return QRect(left, top, round(cell * k), round(cell * k)), cell, label

    def cell_pixels(self) -> float:
        return self.geometry_of()[1] if self.confusion is not None else 0.0

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        if self.confusion is None:
            return None
        rect, cell, _ = self.geometry_of()
        if not rect.contains(int(x), int(y)):
            return None
        k = self.confusion.shape[0]
        return (min(k - 1, int((y - rect.top()) / cell)), min(k - 1, int((x - rect.left()) / cell)))

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        where = self.cell_at(event.position().x(), event.position().y())
        if where is None:
            self.setToolTip("Rows: the true class; columns: the class predicted. Each cell: "
                            "how many validation images, coloured by the share of its row")
            return
        r, c = where
        n, total = int(self.confusion[r, c]), int(self.confusion[r].sum())
        self.setToolTip(f"{n} of the {total} validation images of {self.classes[r]} were taken "
                        f"for {self.classes[c]} ({100 * n / max(1, total):.1f} %)")

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(255, 255, 255))
        metrics = self.fontMetrics()
        painter.setPen(QColor(90, 90, 90))
        painter.drawText(QRect(0, self.MARGIN, self.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignHCenter,
                         metrics.elidedText(self.title, Qt.TextElideMode.ElideRight, self.width()))
        if self.confusion is None:
            painter.end()
            return
        k = self.confusion.shape[0]
        rect, cell, label = self.geometry_of()
        colours = self._lut[np.clip((self._share * 255).round().astype(int), 0, 255)]
        text_font = QFont(self.font())
        text_font.setPointSizeF(max(6.0, min(10.0, cell * 0.3)))
        write = cell >= self.MIN_TEXT_CELL
        for r in range(k):
            for c in range(k):
                x0 = rect.left() + round(c * cell)
                y0 = rect.top() + round(r * cell)
                box = QRect(x0, y0, rect.left() + round((c + 1) * cell) - x0,
                            rect.top() + round((r + 1) * cell) - y0)
                red, green, blue = (int(v) for v in colours[r, c])
                painter.fillRect(box, QColor(red, green, blue))
                n = int(self.confusion[r, c])
                if write and (n or r == c):
                    painter.setFont(text_font)
                    light = 0.299 * red + 0.587 * green + 0.114 * blue < 140
                    painter.setPen(QColor(255, 255, 255) if light else QColor(30, 30, 30))
                    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, str(n))
        painter.setFont(self.font())
        painter.setPen(QColor(150, 150, 150))
        painter.drawRect(rect.adjusted(0, 0, -1, -1))
        painter.setPen(QColor(40, 40, 40))
        step = max(1, math.ceil(metrics.height() / cell))  # names that would overlap: every n-th
        for i, name in enumerate(self.classes):
            if i % step:
                continue
            middle = round((i + 0.5) * cell)
            text = metrics.elidedText(name, Qt.TextElideMode.ElideRight, label - 4)
            painter.drawText(QRect(rect.left() - label, rect.top() + middle - metrics.height(),
                                   label - 4, 2 * metrics.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
            painter.save()  # the columns' names upward, under the matrix
            painter.translate(rect.left() + middle, rect.bottom() + 4)
            painter.rotate(-90)
            painter.drawText(QRect(-label, -metrics.height(), label, 2 * metrics.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
            painter.restore()
        painter.setPen(QColor(90, 90, 90))
        painter.drawText(QRect(rect.left(), self.height() - metrics.height() - 2, rect.width(),
                               metrics.height()), Qt.AlignmentFlag.AlignHCenter, "predicted")
        painter.save()
        painter.translate(self.MARGIN, rect.top() + rect.height() / 2)
        painter.rotate(-90)
        painter.drawText(QRect(-rect.height() // 2, 0, rect.height(), metrics.height()),
                         Qt.AlignmentFlag.AlignHCenter, "true class")
        painter.restore()
        painter.end()


class WrongImages(QListWidget):
    """The most confidently wrong validation images, each with its true and predicted class
    and the probability given; clicking one emits ``chosen`` with it."""

    chosen = Signal(object)  # designer.app.train.controller.Wrong

    ICON = 56

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(self.ICON, self.ICON))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setWrapping(True)
        self.setWordWrap(True)
        self.setGridSize(QSize(self.ICON + 36, self.ICON + 36))
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setUniformItemSizes(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("The validation images the network was surest about and got wrong: "
                        "click one to open it in the Run panel")
        self.itemClicked.connect(lambda item: self.chosen.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.itemActivated.connect(
            lambda item: self.chosen.emit(item.data(Qt.ItemDataRole.UserRole)))

    def row_height(self) -> int:
        """The height one row of thumbnails needs."""
        return self.gridSize().height() + 2 * self.frameWidth() + 4

    def set_images(self, wrong: list, classes: Sequence[str]) -> None:
        self.clear()
        for w in wrong:
            true, predicted = _name(classes, w.true), _name(classes, w.predicted)
            item = QListWidgetItem(QIcon(thumbnail(w.pixels, self.ICON)),
                                   f"{true} → {predicted}\n{100 * w.confidence:.0f} %")
            item.setToolTip(f"Validation image {w.index}: a {true}, taken for a {predicted} with "
                            f"probability {100 * w.confidence:.1f} %. Click: open it in the Run "
                            f"panel")
            item.setData(Qt.ItemDataRole.UserRole, w)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.addItem(item)


def _name(classes: Sequence[str], index: int) -> str:
    return str(classes[index]) if 0 <= index < len(classes) else str(index)


class DataPreview(QWidget):
    """A few training images of each class, with the class's name and its number of training
    images below them."""

    THUMB = 22
    GAP = 3

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.counts: list[int] = []
        self.rows: list[list[QPixmap]] = []
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setToolTip("Training images of each class: the class's name, and below it how "
                        "many training images it has")

    def set_preview(self, preview) -> None:
        self.classes = list(preview.classes)
        self.counts = list(preview.train_counts)
        shown = min(len(self.classes), max((label for _, label in preview.samples), default=-1) + 1)
        self.rows = [[] for _ in range(shown)]
        for pixels, label in preview.samples:
            self.rows[label].append(thumbnail(pixels, self.THUMB))
        self._relayout()
        self.update()

    def clear(self) -> None:
        self.classes, self.counts, self.rows = [], [], []
        self._relayout()
        self.update()

    def _cell(self) -> QSize:
        thumbs = max((len(r) for r in self.rows), default=0)
        return QSize(max(thumbs * (self.THUMB + 1), 60) + 2 * self.GAP,
                     self.THUMB + 2 * self.fontMetrics().height() + 2 * self.GAP)

    def _columns(self, width: int) -> int:
        return max(1, width // max(1, self._cell().width()))

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt's name)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt's name)
        if not self.rows:
            return 0
        return math.ceil(len(self.rows) / self._columns(width)) * self._cell().height()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        width = 2 * self._cell().width()
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(self._cell().width(), self.heightForWidth(self.width() or 200))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        want = self.heightForWidth(self.width())
        if self.height() != want:
            self.setFixedHeight(want)

    def _relayout(self) -> None:
        self.setFixedHeight(self.heightForWidth(self.width() or self.sizeHint().width()))

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if not self.rows:
            return
        painter = QPainter(self)
        cell = self._cell()
        cols = self._columns(self.width())
        metrics = self.fontMetrics()
        for label, thumbs in enumerate(self.rows):
            r, c = divmod(label, cols)
            x0, y0 = c * cell.width() + self.GAP, r * cell.height() + self.GAP
            for i, pixmap in enumerate(thumbs):
                painter.drawPixmap(x0 + i * (self.THUMB + 1), y0, pixmap)
            count = self.counts[label] if label < len(self.counts) else 0
            width = cell.width() - self.GAP
            line = metrics.height()
            painter.setPen(self.palette().color(self.foregroundRole()))
            painter.drawText(QRect(x0, y0 + self.THUMB, width, line), Qt.AlignmentFlag.AlignLeft,
                             metrics.elidedText(self.classes[label], Qt.TextElideMode.ElideRight,
                                                width))
            painter.setPen(QColor(110, 110, 110))
            painter.drawText(QRect(x0, y0 + self.THUMB + line, width, line),
                             Qt.AlignmentFlag.AlignLeft,
                             metrics.elidedText(f"{count:,}", Qt.TextElideMode.ElideRight, width))
        painter.end()
