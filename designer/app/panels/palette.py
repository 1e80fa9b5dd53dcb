"""The palette of layer types, grouped, each with an icon and a tooltip; drag one onto the canvas,
or double-click it (or find it with the search box and press Enter) to add it below the selected
layer."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QMimeData, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QLineEdit, QStyle, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

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
    "Add": "+", "Concat": "⧺", "ReLU6": "R6", "SiLU": "Si", "Hardswish": "Hs", "Hardsigmoid": "Hσ",
    "Identity": "Id",
}
#: stems for new node ids: conv1, pool2, fc1 …
ID_STEMS = {
    "Input": "input", "Conv2d": "conv", "MaxPool2d": "pool", "AvgPool2d": "avgpool",
    "AdaptiveAvgPool2d": "gap", "BatchNorm2d": "bn", "LayerNorm": "ln", "Linear": "fc",
    "Flatten": "flatten", "ReLU": "relu", "LeakyReLU": "lrelu", "Sigmoid": "sigmoid",
    "Tanh": "tanh", "GELU": "gelu", "Softmax": "softmax", "Dropout": "dropout", "Add": "add",
    "Concat": "concat", "ReLU6": "relu6", "SiLU": "silu", "Hardswish": "hswish",
    "Hardsigmoid": "hsigmoid", "Identity": "identity",
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


#: other names people search for a layer by (lower case)
ALIASES = {
    "Input": ("image", "data"), "Conv2d": ("convolution", "filter", "kernel"),
    "MaxPool2d": ("pool", "subsample", "downsample"), "AvgPool2d": ("average", "mean", "pool"),
    "AdaptiveAvgPool2d": ("gap", "global", "average", "pool"),
    "BatchNorm2d": ("bn", "batch", "normalization"), "LayerNorm": ("ln", "normalization"),
    "Linear": ("dense", "fc", "fully connected", "affine"), "Flatten": ("flat", "reshape"),
    "ReLU": ("rectifier", "activation"), "LeakyReLU": ("leaky", "lrelu"),
    "Sigmoid": ("logistic",), "Tanh": ("tanh",), "GELU": ("gelu",),
    "Softmax": ("probabilities", "classifier"), "Dropout": ("drop", "regularization"),
    "Add": ("sum", "plus", "residual", "skip", "shortcut"),
    "Concat": ("concatenate", "cat", "join", "inception"),
    "ReLU6": ("relu6", "clip", "mobilenet"), "SiLU": ("swish", "efficientnet"),
    "Hardswish": ("hard swish", "h-swish", "mobilenetv3"),
    "Hardsigmoid": ("hard sigmoid", "h-sigmoid", "mobilenetv3"),
    "Identity": ("pass", "noop", "no-op", "placeholder"),
}


def match_rank(type_name: str, query: str) -> int | None:
    """How well a layer type matches a search (lower is better), or None if it doesn't: the
    name's start, then an abbreviation or another name for it, then anywhere in the name, its
    group, other names, or its description."""
    q = " ".join(query.lower().split())
    if not q:
        return 0
    name = type_name.lower()
    layer = LAYER_TYPES[type_name]
    aliases = ALIASES.get(type_name, ())
    short = {ABBREVIATIONS.get(type_name, "").lower(), ID_STEMS.get(type_name, "").lower()}
    if name.startswith(q):
        return 0
    if q in short or any(a == q for a in aliases):
        return 1
    if q in name:
        return 2
    if any(a.startswith(q) for a in aliases) or layer.group.lower().startswith(q):
        return 3
    if any(q in a for a in aliases) or q in layer.group.lower():
        return 4
    if q in layer.summary.lower():
        return 5
    return None


class LayerTree(QTreeWidget):
    """Every layer type under its group. Drag an entry onto the canvas, or double-click it."""

    def __init__(self) -> None:
        super().__init__()
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QTreeWidget.DragDropMode.DragOnly)
        self.setIconSize(QSize(22, 22))
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.items: dict[str, QTreeWidgetItem] = {}
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
                self.items[layer.name] = item
            top.setExpanded(True)

    def text_width(self) -> int:
        """The width every entry needs to show in full (indent, icon, name, scroll bar)."""
        metrics = self.fontMetrics()
        bold = QFont(self.font())
        bold.setBold(True)
        widest = max(metrics.horizontalAdvance(name) for name in LAYER_TYPES)
        widest_group = max(QFontMetricsF(bold).horizontalAdvance(g) for g in GROUPS)
        scroll = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        entry = 2 * self.indentation() + self.iconSize().width() + 12 + widest
        return int(max(entry, self.indentation() + widest_group + 8) + scroll
                   + 2 * self.frameWidth() + 8)

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        data = QMimeData()
        names = [i.data(0, Qt.ItemDataRole.UserRole) for i in items]
        if names and names[0]:
            data.setData(MIME_TYPE, names[0].encode("utf-8"))
            data.setText(names[0])
        return data

    def mimeTypes(self) -> list[str]:
        return [MIME_TYPE]


class PalettePanel(QWidget):
    """The search box above the tree of layer types. Typing filters the tree (by name,
    abbreviation, other names, group or description) and marks the best match; Enter adds it
    below the selected layer as a double-click does; Up and Down pick another match; Escape
    clears the search."""

    add_requested = Signal(str)  # double-click or Enter: the type name

    def __init__(self) -> None:
        super().__init__()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search layers (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Type to find a layer type; Enter adds the marked one below the "
                               "selected layer; Up/Down pick another; Escape clears")
        self.tree = LayerTree()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self.add_current)
        self.search.installEventFilter(self)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.tree.setMinimumWidth(self.tree.text_width())

    def preferred_width(self) -> int:
        return self.tree.text_width()

    def matches(self) -> list[str]:
        """The layer types shown, best match first."""
        query = self.search.text()
        ranked = [(rank, i, name) for i, name in enumerate(self.tree.items)
                  if (rank := match_rank(name, query)) is not None]
        return [name for _, _, name in sorted(ranked)]

    def filter(self, text: str = "") -> None:
        shown = set(self.matches())
        for name, item in self.tree.items.items():
            item.setHidden(name not in shown)
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            top.setHidden(all(top.child(j).isHidden() for j in range(top.childCount())))
        best = self.matches()[:1] if self.search.text().strip() else []
        if best:
            self.tree.setCurrentItem(self.tree.items[best[0]])
            self.tree.scrollToItem(self.tree.items[best[0]])
        else:
            self.tree.clearSelection()
            self.tree.setCurrentItem(None)

    def current_type(self) -> str | None:
        item = self.tree.currentItem()
        if item is None or item.isHidden() or not item.isSelected():
            return None
        return item.data(0, Qt.ItemDataRole.UserRole)

    def add_current(self) -> None:
        """Enter in the search box: add the marked match (nothing if nothing matches)."""
        if not self.search.text().strip():
            return
        type_name = self.current_type()
        if type_name:
            self.add_requested.emit(type_name)

    def _step(self, delta: int) -> None:
        names = [n for n, item in self.tree.items.items() if not item.isHidden()]
        if not names:
            return
        current = self.current_type()
        index = names.index(current) + delta if current in names else 0
        self.tree.setCurrentItem(self.tree.items[names[max(0, min(len(names) - 1, index))]])

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key == Qt.Key.Key_Escape:
                if self.search.text():
                    self.search.clear()
                else:
                    self.search.clearFocus()
                return True
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                self._step(1 if key == Qt.Key.Key_Down else -1)
                return True
        return super().eventFilter(watched, event)

    def _double_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        type_name = item.data(0, Qt.ItemDataRole.UserRole)
        if type_name:
            self.add_requested.emit(type_name)
