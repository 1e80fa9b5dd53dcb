"""File › New: a gallery of the built-in templates (with a preview of each graph) and a blank
design."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QVBoxLayout, QWidget)

from designer.app.canvas import GROUP_COLOURS
from designer.core.analysis import Analysis
from designer.core.catalog import LAYER_TYPES
from designer.core.design import Design
from designer.core.layout import CARD_W, layout
from designer.core.notation import shape_notation
from designer.io.design_file import DesignError
from designer.io.templates import Template, list_templates

PREVIEW = QSize(168, 150)


def design_preview(design: Design, size: QSize = PREVIEW) -> QPixmap:
    """The design's graph in miniature, as the automatic layout (``designer.layout``) draws it:
    a block per layer (coloured by group) and each connection along its route, so branches and
    skip connections show."""
    pixmap = QPixmap(size)
    pixmap.fill(QColor("white"))
    lay = layout(design)
    if not lay.cards:
        return pixmap
    left, top, width, height = lay.bounds()
    margin = 8
    room_w, room_h = size.width() - 2 * margin, size.height() - 2 * margin
    scale = min(room_w / width, room_h / height)
    # a deep chain would be a hairline: blocks stay at least 45 % of the preview wide
    scale_x = min(room_w / width, max(scale, 0.45 * room_w / CARD_W))
    dx = (size.width() - width * scale_x) / 2
    dy = (size.height() - height * scale) / 2

    def to_pixmap(x: float, y: float) -> QPointF:
        return QPointF(dx + (x - left) * scale_x, dy + (y - top) * scale)

    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("#9aa4b2"), 1))
    for points in lay.edges.values():
        painter.drawPolyline([to_pixmap(*p) for p in points])
    painter.setPen(QPen(QColor("#7b8794"), 0.8))
    for node in design.nodes:
        x, y, w, h = lay.cards[node.id]
        layer = LAYER_TYPES.get(node.type)
        painter.setBrush(QColor(GROUP_COLOURS.get(layer.group if layer else "Other", "#f5f5f5"))
                         .darker(112))
        corner = to_pixmap(x, y)
        block = QRectF(corner.x(), corner.y(), max(w * scale_x, 3), max(h * scale, 2))
        painter.drawRoundedRect(block, 2, 2)
    painter.end()
    return pixmap


def _blank_preview(size: QSize = PREVIEW) -> QPixmap:
    pixmap = QPixmap(size)
    pixmap.fill(QColor("white"))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("#9aa4b2"), 1.5, Qt.PenStyle.DashLine))
    painter.drawRoundedRect(QRectF(12, 12, size.width() - 24, size.height() - 24), 8, 8)
    painter.setPen(QPen(QColor("#7b8794"), 3))
    c = QPointF(size.width() / 2, size.height() / 2)
    painter.drawLine(c - QPointF(14, 0), c + QPointF(14, 0))
    painter.drawLine(c - QPointF(0, 14), c + QPointF(0, 14))
    painter.end()
    return pixmap


@dataclass
class _Entry:
    template: Template | None  # None: a blank design
    title: str
    details: str


def _describe(template: Template) -> _Entry:
    try:
        design = template.load()
    except DesignError as exc:  # a damaged installation: say so instead of failing
        return _Entry(template, template.title, f"This template can't be read: {exc}")
    analysis = Analysis(design)
    try:
        totals = analysis.totals()
        inputs = [i for i in analysis.infos() if i.type == "Input" and i.shape is not None]
        output = analysis.output
        shape = analysis.info(output).shape if output is not None else None
    finally:
        analysis.close()
    input_text = shape_notation(inputs[0].shape) if inputs else "?"
    details = (f"<b>{template.title}</b><p>{template.description}</p>"
               f"<p>{len(design)} layers · {totals['params']:,} parameters · "
               f"{totals['macs'] / 1e6:,.1f} M mult-adds<br>"
               f"input {input_text} → output {shape_notation(shape) if shape else '?'}</p>")
    return _Entry(template, template.title, details)


class TemplateGallery(QDialog):
    """Pick a blank design or a template; ``chosen`` is the template (None for blank)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New design")
        self.resize(860, 560)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(PREVIEW)
        self.list.setGridSize(QSize(PREVIEW.width() + 24, PREVIEW.height() + 44))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setSpacing(4)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.details.setMinimumWidth(230)
        self.details.setMaximumWidth(260)
        self.entries: list[_Entry] = [_Entry(None, "Blank design",
                                             "<b>Blank design</b><p>An empty canvas. Drag an Input "
                                             "from the Layers panel to start.</p>")]
        blank = _blank_preview()
        self._add(self.entries[0], blank)
        for template in list_templates():
            entry = _describe(template)
            self.entries.append(entry)
            try:
                preview = design_preview(template.load())
            except DesignError:
                preview = blank
            self._add(entry, preview)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.list.currentRowChanged.connect(self._show_details)
        self.list.itemDoubleClicked.connect(self.accept)
        body = QHBoxLayout()
        body.addWidget(self.list, 1)
        body.addWidget(self.details)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(buttons)
        self.list.setCurrentRow(0)

    def _add(self, entry: _Entry, preview: QPixmap) -> None:
        item = QListWidgetItem(QIcon(preview), entry.title)
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.list.addItem(item)

    def _show_details(self, row: int) -> None:
        self.details.setText(self.entries[row].details if row >= 0 else "")

    @property
    def chosen(self) -> Template | None:
        row = self.list.currentRow()
        return self.entries[row].template if row >= 0 else None
