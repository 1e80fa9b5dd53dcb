"""Pictures of a training run, drawn with QtGui's QPainter on a QImage (no widgets, no plotting
library): ``curves.png`` (loss and accuracy per epoch, training and validation, with axes,
labels and a legend) and ``confusion.png`` (the last validation's confusion matrix, labelled
with the class names). Both are encoded to PNG bytes; the caller writes them atomically."""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

#: the size of curves.png: two panels side by side
CURVES_SIZE = (1000, 420)
TRAIN_COLOUR = (31, 119, 180)
VAL_COLOUR = (255, 127, 14)


def ensure_gui() -> None:
    """A QGuiApplication (QPainter needs one for text); the offscreen platform when there is no
    display to connect to."""
    from PySide6.QtGui import QGuiApplication

    if QGuiApplication.instance() is None:
        if not os.environ.get("QT_QPA_PLATFORM") and not (
                os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or os.name == "nt" or os.uname().sysname == "Darwin"):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        QGuiApplication.instance() or QGuiApplication([])


def _png(image) -> bytes:
    from designer.io.images import image_png_bytes
    return image_png_bytes(image)


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step + 1e-9) * step
    stop = math.ceil(hi / step - 1e-9) * step  # the first tick at or above hi: the plot's top
    return [round(start + i * step, 10) for i in range(int(round((stop - start) / step)) + 1)]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def _panel(painter, rect, title: str, ylabel: str, epochs: Sequence[float],
           series: Sequence[tuple[str, Sequence[float], tuple[int, int, int]]],
           y_range: tuple[float, float] | None = None) -> None:
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QPen

    x0, y0, w, h = rect
    left, right, top, bottom = 64, 16, 30, 46
    plot = QRectF(x0 + left, y0 + top, w - left - right, h - top - bottom)
    values = [v for _, vs, _ in series for v in vs if math.isfinite(v)]
    if y_range is not None:
        lo, hi = y_range
    else:
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        lo = min(lo, 0.0)
        if hi <= lo:
            hi = lo + 1.0
    yticks = _nice_ticks(lo, hi)
    lo, hi = min(lo, yticks[0]), max(hi, yticks[-1])
    last = max(1.0, float(max(epochs) if epochs else 1))
    xticks = sorted(set(int(round(t)) for t in _nice_ticks(1.0, last, min(8, int(last))))
                    ) if last > 1 else [1]
    xticks = [t for t in xticks if 1 <= t <= last] or [1]
    # the x axis runs past the first and last epoch, so their markers sit inside the plot (a
    # single epoch in its middle)
    pad = 0.5 if last <= 10 else 0.04 * (last - 1)
    first, end = 1.0 - pad, last + pad

    def to_point(epoch: float, value: float) -> QPointF:
        fx = (epoch - first) / (end - first)
        fy = (value - lo) / (hi - lo)
        return QPointF(plot.left() + fx * plot.width(), plot.bottom() - fy * plot.height())

    painter.setPen(QPen(QColor(40, 40, 40)))
    font = painter.font()
    font.setPixelSize(15)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(QRectF(x0, y0 + 4, w, 22), Qt.AlignmentFlag.AlignCenter, title)
    font.setBold(False)
    font.setPixelSize(12)
    painter.setFont(font)
    grid = QPen(QColor(225, 225, 225))
    for t in yticks:
        p = to_point(first, t)
        painter.setPen(grid)
        painter.drawLine(QPointF(plot.left(), p.y()), QPointF(plot.right(), p.y()))
        painter.setPen(QPen(QColor(60, 60, 60)))
        painter.drawText(QRectF(x0, p.y() - 8, left - 6, 16),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, _label(t))
    for t in xticks:
        p = to_point(t, lo)
        painter.setPen(QPen(QColor(60, 60, 60)))
        painter.drawLine(QPointF(p.x(), plot.bottom()), QPointF(p.x(), plot.bottom() + 4))
        painter.drawText(QRectF(p.x() - 20, plot.bottom() + 5, 40, 16),
                         Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, str(t))
    painter.setPen(QPen(QColor(60, 60, 60), 1))
    painter.drawLine(plot.bottomLeft(), plot.bottomRight())
    painter.drawLine(plot.bottomLeft(), plot.topLeft())
    painter.drawText(QRectF(plot.left(), plot.bottom() + 22, plot.width(), 18),
                     Qt.AlignmentFlag.AlignCenter, "epoch")
    painter.save()
    painter.translate(x0 + 14, plot.center().y())
    painter.rotate(-90)
    painter.drawText(QRectF(-plot.height() / 2, -9, plot.height(), 18),
                     Qt.AlignmentFlag.AlignCenter, ylabel)
    painter.restore()

    for _, vs, colour in series:
        pen = QPen(QColor(*colour), 2.5)
        painter.setPen(pen)
        points = [to_point(e, v) for e, v in zip(epochs, vs) if math.isfinite(v)]
        for a, b in zip(points, points[1:]):
            painter.drawLine(a, b)
        painter.setBrush(QColor(*colour))
        for p in points:
            painter.drawEllipse(p, 3.5, 3.5)
    painter.setBrush(Qt.BrushStyle.NoBrush)


def _legend(painter, centre_x: float, y: float,
            entries: Sequence[tuple[str, tuple[int, int, int]]]) -> None:
    """One legend for both panels, in a row centred at ``centre_x`` in the title band (above
    the plots, so it never hides a curve)."""
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QPen

    entry_width = 110
    x = centre_x - entry_width * len(entries) / 2
    for name, colour in entries:
        painter.setPen(QPen(QColor(*colour), 2.5))
        painter.drawLine(QPointF(x, y + 9), QPointF(x + 24, y + 9))
        painter.setPen(QPen(QColor(40, 40, 40)))
        painter.drawText(QRectF(x + 30, y, entry_width - 34, 18),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        x += entry_width


def curves_png(rows: Sequence[dict[str, float]]) -> bytes:
    """curves.png: loss (left) and accuracy (right) per epoch, training and validation."""
    from PySide6.QtGui import QColor, QImage, QPainter

    ensure_gui()
    width, height = CURVES_SIZE
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(255, 255, 255))
    epochs = [float(r["epoch"]) for r in rows]
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        _panel(painter, (0, 0, width // 2, height), "Loss", "cross-entropy", epochs,
               [("training", [r["train_loss"] for r in rows], TRAIN_COLOUR),
                ("validation", [r["val_loss"] for r in rows], VAL_COLOUR)])
        _panel(painter, (width // 2, 0, width - width // 2, height), "Accuracy",
               "accuracy (%)", epochs,
               [("training", [100 * r["train_accuracy"] for r in rows], TRAIN_COLOUR),
                ("validation", [100 * r["val_accuracy"] for r in rows], VAL_COLOUR)],
               (0.0, 100.0))
        _legend(painter, width / 2, 6, [("training", TRAIN_COLOUR), ("validation", VAL_COLOUR)])
    finally:
        painter.end()
    return _png(image)


#: the darkest colours of the confusion matrix's scales: right answers (the diagonal) and
#: mistakes; each cell goes from near white (a few images) to these (its whole row)
RIGHT_COLOUR = (8, 69, 148)
WRONG_COLOUR = (165, 15, 21)


def cell_colour(fraction: float, diagonal: bool, nonzero: bool):
    """(QColor, whether text on it should be white) for a confusion-matrix cell holding
    ``fraction`` of its row: empty cells near white; any count at least a visible tint (the
    square root spreads small shares apart), darkening to RIGHT_COLOUR on the diagonal and
    WRONG_COLOUR off it."""
    from PySide6.QtGui import QColor

    if not nonzero:
        return QColor(250, 250, 250), False
    t = 0.12 + 0.88 * math.sqrt(max(0.0, min(1.0, fraction)))
    end = RIGHT_COLOUR if diagonal else WRONG_COLOUR
    rgb = [round(255 + (e - 255) * t) for e in end]
    return QColor(*rgb), t > 0.6


def confusion_size(classes: int) -> tuple[int, int, int, int]:
    """(width, height, cell, margin) of confusion.png for ``classes`` classes."""
    cell = max(12, min(48, 640 // max(1, classes)))
    margin = 130
    side = margin + cell * classes + 20
    return side, side + 20, cell, margin


def confusion_png(confusion: np.ndarray, classes: Sequence[str]) -> bytes:
    """confusion.png: row = true class, column = predicted; each cell shaded by the share of its
    row and labelled with its count (when cells are large enough); class names on both axes."""
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QColor, QImage, QPainter, QPen

    ensure_gui()
    k = len(classes)
    width, height, cell, margin = confusion_size(k)
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(255, 255, 255))
    totals = confusion.sum(axis=1)
    painter = QPainter(image)
    try:
        font = painter.font()
        font.setPixelSize(14)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QPen(QColor(40, 40, 40)))
        correct = int(np.trace(confusion))
        total = int(confusion.sum())
        share = f" — {100 * correct / total:.1f} % correct" if total else ""
        painter.drawText(QRectF(0, 2, width, 20), Qt.AlignmentFlag.AlignCenter,
                         f"Confusion matrix (validation){share}")
        font.setBold(False)
        font.setPixelSize(max(8, min(12, cell - 4)))
        painter.setFont(font)
        top = margin + 20
        for i in range(k):
            for j in range(k):
                fraction = confusion[i, j] / totals[i] if totals[i] else 0.0
                colour, dark = cell_colour(fraction, i == j, bool(confusion[i, j]))
                rect = QRectF(margin + j * cell, top + i * cell, cell, cell)
                painter.fillRect(rect, colour)
                painter.setPen(QPen(QColor(210, 210, 210)))
                painter.drawRect(rect)
                if cell >= 24 and confusion[i, j]:
                    painter.setPen(QPen(QColor(255, 255, 255) if dark else QColor(30, 30, 30)))
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(int(confusion[i, j])))
        painter.setPen(QPen(QColor(40, 40, 40)))
        for i, name in enumerate(classes):
            painter.drawText(QRectF(4, top + i * cell, margin - 10, cell),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             _fit(painter, name, margin - 10))
            painter.save()
            painter.translate(margin + i * cell, top - 4)
            painter.rotate(-90)
            painter.drawText(QRectF(0, 0, margin - 30, cell),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             _fit(painter, name, margin - 30))
            painter.restore()
        font.setPixelSize(12)
        painter.setFont(font)
        painter.drawText(QRectF(margin, height - 24, cell * k, 20), Qt.AlignmentFlag.AlignCenter,
                         "predicted class →")
        painter.save()
        painter.translate(14, top + cell * k / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-cell * k / 2, -9, cell * k, 18), Qt.AlignmentFlag.AlignCenter,
                         "true class ↓")
        painter.restore()
    finally:
        painter.end()
    return _png(image)


def _fit(painter, text: str, width: float) -> str:
    from PySide6.QtCore import Qt
    return painter.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, int(width))
