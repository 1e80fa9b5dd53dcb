"""The canvas's graphics items: a card per layer (``NodeItem``) and a line per connection
(``EdgeItem``). Items hold no state the model doesn't: a card shows its node's analysis, an edge its
two ends."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsObject, QGraphicsPathItem, QGraphicsScene,
                               QStyleOptionGraphicsItem, QWidget)

from designer.app.document import Document
from designer.core.analysis import NodeInfo
from designer.core.catalog import LAYER_TYPES
from designer.core.design import Node
from designer.core.notation import layer_notation, shape_notation
from designer.core.problems import num

CARD_W, CARD_H = 216.0, 78.0
PORT_R = 5.0
ERROR, WARNING, BORDER = QColor("#d32f2f"), QColor("#f59e0b"), QColor("#9aa4b2")
GROUP_COLOURS = {
    "Input": "#e8f1fb", "Convolution": "#e6f4ea", "Pooling": "#fdf3e1", "Normalization": "#f1e9f7",
    "Fully connected": "#e3f2f9", "Activation": "#fbe9ee", "Merge": "#ececec", "Other": "#f5f5f5",
}
#: errors that are about a node's inputs: the incoming edges are drawn red too
INPUT_ERRORS = {"input-count", "flat-input", "spatial-input", "add-shapes", "concat-sizes", "cycle"}
#: a node whose only error is being cut off from the Input: the cause is upstream, so it is drawn
#: muted and the red stays on the node where the chain is broken
CUT_OFF = "not-fed"
MUTED = QColor("#b0b8c4")
HIGHLIGHT = QColor("#1a73e8")
EDGE_GRAB = 6.0  # how near (scene units) a drop must be to a connection to insert into it
CARD_RECT = QRectF(-CARD_W / 2, 0, CARD_W, CARD_H)
SELECTION_RECT = CARD_RECT.adjusted(-4, -4, 4, 4)
TEXT_RECT = CARD_RECT.adjusted(10, 6, -10, -6)
NOTATION_RECT, SHAPE_RECT = TEXT_RECT.adjusted(0, 22, 0, 0), TEXT_RECT.adjusted(0, 44, 0, 0)
_TOP_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
_LEFT, _RIGHT = Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignRight




class DesignScene(QGraphicsScene):
    """What the items need of the scene that draws a document (``CanvasScene``): the document,
    and to hear of cards being moved."""

    document: Document

    def node_item_moved(self, node_id: str) -> None:
        """A card's position changed (while dragging)."""

    def commit_moves(self) -> None:
        """A drag ended: commit the moved cards to the model."""


class _CardStyle:
    """What a card is painted with, made once per font (fonts need a running application)."""

    _made: dict[str, "_CardStyle"] = {}

    @classmethod
    def get(cls, font: QFont) -> "_CardStyle":
        key = font.key()
        style = cls._made.get(key)
        if style is None:
            style = cls._made[key] = cls(font, key)
        return style

    def __init__(self, font: QFont, key: str) -> None:
        self.key = key
        self.bold = QFont(font)
        self.bold.setBold(True)
        self.regular = QFont(font)
        self.regular.setBold(False)
        self.metrics = QFontMetrics(self.bold)
        self.plain = QPen(BORDER, 1.2)
        self.muted = QPen(MUTED, 1.2, Qt.PenStyle.DashLine)
        self.error, self.warning = QPen(ERROR, 3.0), QPen(WARNING, 3.0)
        self.selected = QPen(HIGHLIGHT, 2, Qt.PenStyle.DashLine)
        self.port, self.port_fill = QPen(QColor("#5f6b7a"), 1), QBrush(QColor("white"))
        self.fills = {group: QBrush(QColor(colour)) for group, colour in GROUP_COLOURS.items()}
        self.muted_fills = {group: QBrush(QColor(colour).lighter(104))
                            for group, colour in GROUP_COLOURS.items()}
        self.title_colour, self.notation_colour = QColor("#1f2933"), QColor("#3e4c59")
        self.shape_colour, self.params_colour = QColor("#102a43"), QColor("#627d98")


class NodeItem(QGraphicsObject):
    """A card: type and id, key parameters in the lecture's notation, output shape, parameters."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node_id = node.id
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setAcceptHoverEvents(True)
        self.setCacheMode(QGraphicsItem.CacheMode.NoCache)  # see info
        self.setZValue(1)
        self._title: tuple[tuple, str] | None = None  # (what it was made from, elided title)

    def boundingRect(self) -> QRectF:
        return QRectF(-CARD_W / 2 - 2, -PORT_R - 2, CARD_W + 4, CARD_H + 2 * PORT_R + 4)

    def input_port(self) -> QPointF:
        return self.pos() + QPointF(0, 0)

    def output_port(self) -> QPointF:
        return self.pos() + QPointF(0, CARD_H)

    @property
    def info(self) -> NodeInfo | None:
        """The node's current figures. Cards read them when painted (and are not cached as
        pixmaps), so an edit only has to ask the cards in view to repaint: the others are
        current whenever they are scrolled to."""
        scene = self.scene()
        if isinstance(scene, DesignScene) and self.node_id in scene.document.design:
            return scene.document.analysis.info(self.node_id)
        return None

    def hover_text(self) -> str:
        """The tooltip: every error and warning, or what the layer is (built when hovered, so an
        edit reaching a thousand cards doesn't format a thousand tooltips)."""
        info = self.info
        if info is None:
            return self.node_id
        lines = [str(p) for p in info.errors] + [str(p) for p in info.warnings]
        if lines:
            return "\n".join(lines)
        shape = f" → {shape_notation(info.shape)}" if info.shape is not None else ""
        return f"{info.id}: {info.type}{shape}"

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        # an edit at the top of a large design repaints every card in view: pens, brushes, fonts
        # and flags are made once (``_CardStyle``), and the elided title once per font
        info = self.info
        style = _CardStyle.get(painter.font())
        type_name = info.type if info is not None else ""
        layer = LAYER_TYPES.get(type_name)
        group = layer.group if layer else "Other"
        pen, fill = style.plain, style.fills.get(group, style.fills["Other"])
        if info is not None and info.errors:
            if all(p.code == CUT_OFF for p in info.errors):
                pen, fill = style.muted, style.muted_fills.get(group, style.muted_fills["Other"])
            else:
                pen = style.error
        elif info is not None and info.warnings:
            pen = style.warning
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRoundedRect(CARD_RECT, 8, 8)
        if self.isSelected():
            painter.setPen(style.selected)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(SELECTION_RECT, 10, 10)
        # ports
        painter.setPen(style.port)
        painter.setBrush(style.port_fill)
        if layer is None or layer.max_inputs != 0:
            painter.drawEllipse(QPointF(0, 0), PORT_R, PORT_R)
        painter.drawEllipse(QPointF(0, CARD_H), PORT_R, PORT_R)
        # text
        painter.setFont(style.bold)
        painter.setPen(style.title_colour)
        key = (type_name, self.node_id, style.key)
        if self._title is None or self._title[0] != key:
            self._title = (key, style.metrics.elidedText(
                f"{type_name}  {self.node_id}", Qt.TextElideMode.ElideRight,
                int(TEXT_RECT.width())))
        painter.drawText(TEXT_RECT, _TOP_LEFT, self._title[1])
        if info is not None:
            painter.setFont(style.regular)
            params = f"{num(info.params)} params" if info.params else ""
            painter.setPen(style.notation_colour)
            painter.drawText(NOTATION_RECT, _LEFT, layer_notation(info.type, info.values))
            painter.setPen(style.shape_colour)
            painter.drawText(SHAPE_RECT, _LEFT, shape_notation(info.shape))
            painter.setPen(style.params_colour)
            painter.drawText(SHAPE_RECT, _RIGHT, params)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            scene = self.scene()
            if isinstance(scene, DesignScene):
                scene.node_item_moved(self.node_id)
        return super().itemChange(change, value)

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        scene = self.scene()
        if isinstance(scene, DesignScene):
            scene.commit_moves()


class EdgeItem(QGraphicsPathItem):
    def __init__(self, source: str, target: str) -> None:
        super().__init__()
        self.source, self.target = source, target
        self.setZValue(0)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.error = False
        self.highlighted = False
        self.set_state(False)

    def set_state(self, error: bool) -> None:
        self.error = error
        self._apply_pen()

    def set_highlight(self, on: bool) -> None:
        if on != self.highlighted:
            self.highlighted = on
            self._apply_pen()

    def _apply_pen(self) -> None:
        if self.highlighted:
            self.setPen(QPen(HIGHLIGHT, 4.0, Qt.PenStyle.DashLine))
        else:
            self.setPen(QPen(ERROR if self.error else QColor("#7b8794"),
                             2.4 if self.error else 1.8))

    def hover_text(self, target: NodeItem | None) -> str:
        """Why the connection is red (its target's input errors), else what flows along it."""
        info = target.info if target is not None else None
        if info is not None:
            errors = [str(p) for p in info.errors if p.code in INPUT_ERRORS]
            if errors:
                return "\n".join(errors)
        return f"{self.source} → {self.target}"

    def update_path(self, start: QPointF, end: QPointF) -> None:
        path = QPainterPath(start)
        bend = max(40.0, abs(end.y() - start.y()) / 2)
        path.cubicTo(start + QPointF(0, bend), end - QPointF(0, bend), end)
        self.setPath(path)
