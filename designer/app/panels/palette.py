"""The palette of layer types, grouped, each with an icon and a tooltip; drag one onto the canvas."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

from designer.core.catalog import GROUPS, LAYER_TYPES

MIME_TYPE = "application/x-cnn-designer-layer"
GROUP_ICON_COLOURS = {
    "Input": "#4a90d9", "Convolution": "#34a853", "Pooling": "#f5a623", "Normalization": "#9b59b6",
    "Fully connected": "#1e88c7", "Activation": "#e0527a", "Merge": "#7f8c8d", "Other": "#95a5a6",
}
ABBREVIATIONS = {
    "Input": "In", "Conv2d": "Cv", "MaxPool2d": "Mx", "AvgPool2d": "Av", "AdaptiveAvgPool2d": "Ad",
    "BatchNorm2d": "BN", "LayerNorm": "LN", "Linear": "FC", "Flatten": "Fl", "ReLU": "Re",
    "LeakyReLU": "LR", "Sigmoid": "σ", "Tanh": "th", "GELU": "Ge", "Softmax": "Sm", "Dropout": "Dr",
    "Add": "+", "Concat": "⧺",
}
#: stems for new node ids: conv1, pool2, fc1 …
ID_STEMS = {
    "Input": "input", "Conv2d": "conv", "MaxPool2d": "pool", "AvgPool2d": "avgpool",
    "AdaptiveAvgPool2d": "gap", "BatchNorm2d": "bn", "LayerNorm": "ln", "Linear": "fc",
    "Flatten": "flatten", "ReLU": "relu", "LeakyReLU": "lrelu", "Sigmoid": "sigmoid",
    "Tanh": "tanh", "GELU": "gelu", "Softmax": "softmax", "Dropout": "dropout", "Add": "add",
    "Concat": "concat",
}


def layer_icon(type_name: str) -> QIcon:
    """A small coloured badge with the layer's abbreviation."""
    layer = LAYER_TYPES[type_name]
    pixmap = QPixmap(28, 28)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(GROUP_ICON_COLOURS[layer.group]))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawRoundedRect(QRectF(1, 1, 26, 26), 6, 6)
    font = QFont(painter.font())
    font.setBold(True)
    font.setPixelSize(12)
    painter.setFont(font)
    painter.setPen(QColor("white"))
    painter.drawText(QRectF(0, 0, 28, 28), Qt.AlignmentFlag.AlignCenter,
                     ABBREVIATIONS.get(type_name, type_name[:2]))
    painter.end()
    return QIcon(pixmap)


class PalettePanel(QTreeWidget):
    """Every layer type under its group. Drag an entry onto the canvas, or double-click it to add it
    after the selected layer."""

    add_requested = Signal(str)  # double-click: the type name

    def __init__(self) -> None:
        super().__init__()
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QTreeWidget.DragDropMode.DragOnly)
        self.setIconSize(QSize(22, 22))
        for group in GROUPS:
            top = QTreeWidgetItem([group])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            self.addTopLevelItem(top)
            for layer in LAYER_TYPES.values():
                if layer.group != group:
                    continue
                item = QTreeWidgetItem([layer.name])
                item.setIcon(0, layer_icon(layer.name))
                item.setToolTip(0, f"<b>{layer.name}</b><br>{layer.summary}<br><i>Drag onto the "
                                   f"canvas, or double-click to add after the selected layer.</i>")
                item.setData(0, Qt.ItemDataRole.UserRole, layer.name)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
                top.addChild(item)
            top.setExpanded(True)
        self.itemDoubleClicked.connect(self._double_clicked)

    def _double_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        type_name = item.data(0, Qt.ItemDataRole.UserRole)
        if type_name:
            self.add_requested.emit(type_name)

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        names = [i.data(0, Qt.ItemDataRole.UserRole) for i in items]
        if names and names[0]:
            data.setData(MIME_TYPE, names[0].encode("utf-8"))
            data.setText(names[0])
        return data

    def mimeTypes(self) -> list[str]:
        return [MIME_TYPE]
