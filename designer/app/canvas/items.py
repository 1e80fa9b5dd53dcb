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
from designer.core.layout import CARD_H, CARD_W
from designer.core.notation import layer_notation, shape_notation
from designer.core.problems import num

PORT_R = 5.0
ERROR, WARNING, BORDER = QColor("#d32f2f"), QColor("#f59e0b"), QColor("#9aa4b2")
GROUP_COLOURS = {
    "Input": "#e8f1fb", "Convolution": "#e6f4ea", "Pooling": "#fdf3e1", "Normalization": "#f1e9f7",
    "Fully connected": "#e3f2f9", "Activation": "#fbe9ee", "Merge": "#ececec", "Other": "#f5f5f5",
}
#: a card whose only error is being cut off from the Input is filled this much lighter (percent)
MUTED_LIGHTER = 104
#: the card text's sizes in points (the view picks a default zoom that keeps the smallest
#: readable on screen)
TITLE_POINTS = 9.0  # bold; a larger title would cut ResNet's ids short (layer2.0.bn1)
TEXT_POINTS = 9.0
CARD_FONT_POINTS = {"title": TITLE_POINTS, "text": TEXT_POINTS}
#: below this zoom a card is drawn as a plain box (its 9 pt text would be under 2 pt on screen)
SKETCH_BELOW = 0.2
#: the card text's colours: each has a contrast of at least 4.5:1 (WCAG AA) on every group's
#: fill, muted or not (tests/app/test_canvas_cards.py)
TITLE_COLOUR, NOTATION_COLOUR = QColor("#1f2933"), QColor("#323f4b")
SHAPE_COLOUR, PARAMS_COLOUR = QColor("#102a43"), QColor("#3e4c59")
TEXT_COLOURS = {"title": TITLE_COLOUR, "notation": NOTATION_COLOUR, "shape": SHAPE_COLOUR,
                "params": PARAMS_COLOUR}
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
SELECTION_PEN_W = 2.0
#: everything a card paints: the selection outline (with half its pen), the ports (with their
#: pen) and a pixel for antialiasing, so moving, deleting or deselecting leaves no trace
CARD_BOUNDS = SELECTION_RECT.adjusted(-SELECTION_PEN_W / 2 - 1, -SELECTION_PEN_W / 2 - 1,
                                      SELECTION_PEN_W / 2 + 1, SELECTION_PEN_W / 2 + 1).united(
    QRectF(-PORT_R - 2, -PORT_R - 2, 2 * PORT_R + 4, CARD_H + 2 * PORT_R + 4))
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
        self.bold.setPointSizeF(TITLE_POINTS)
        self.regular = QFont(font)
        self.regular.setBold(False)
        self.regular.setPointSizeF(TEXT_POINTS)
        self.metrics = QFontMetrics(self.bold)
        self.plain = QPen(BORDER, 1.2)
        self.muted = QPen(MUTED, 1.2, Qt.PenStyle.DashLine)
        self.error, self.warning = QPen(ERROR, 3.0), QPen(WARNING, 3.0)
        self.selected = QPen(HIGHLIGHT, SELECTION_PEN_W, Qt.PenStyle.DashLine)
        self.port, self.port_fill = QPen(QColor("#5f6b7a"), 1), QBrush(QColor("white"))
        self.fills = {group: QBrush(QColor(colour)) for group, colour in GROUP_COLOURS.items()}
        self.muted_fills = {group: QBrush(QColor(colour).lighter(MUTED_LIGHTER))
                            for group, colour in GROUP_COLOURS.items()}
        self.title_colour, self.notation_colour = TITLE_COLOUR, NOTATION_COLOUR
        self.shape_colour, self.params_colour = SHAPE_COLOUR, PARAMS_COLOUR


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
        return CARD_BOUNDS

    def shape(self) -> QPainterPath:
        """The card and its ports (what the mouse finds), not the room kept for the outline."""
        path = QPainterPath()
        path.addRect(CARD_RECT.adjusted(0, -PORT_R, 0, PORT_R))
        return path

    def card_rect(self) -> QRectF:
        """The card in scene coordinates."""
        return CARD_RECT.translated(self.pos())

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
        # worded with only the fixes that work (checked now, for this card's problems only)
        describe = self.scene().document.analysis.fix_checker().describe
        lines = [describe(p) for p in info.errors] + [describe(p) for p in info.warnings]
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
        detail = option.levelOfDetailFromTransform(painter.worldTransform())
        if detail < SKETCH_BELOW:
            # zoomed far out (the whole of a large design): text would be specks and ports
            # dots, so the card is its coloured box, outlined as usual
            painter.setPen(pen)
            painter.setBrush(fill)
            painter.drawRect(CARD_RECT)
            if self.isSelected():
                painter.setPen(style.selected)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(SELECTION_RECT)
            return
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


#: corners of a re-routed connection are rounded with this radius at most (scene units)
CORNER_RADIUS = 10.0
EDGE_COLOUR = QColor("#7b8794")


def smooth_path(points: list[tuple[float, float]]) -> QPainterPath:
    """A connection drawn along its polyline: vertical and horizontal pieces straight, with
    rounded corners where they meet; every slanted piece as an S-curve that leaves and arrives
    vertically. Each curve stays inside the box of its piece (and each rounded corner inside
    its corner), so a route clear of cards is drawn clear of them."""
    path = QPainterPath(QPointF(*points[0]))
    n = len(points)
    for i in range(1, n):
        (x0, y0), (x1, y1) = points[i - 1], points[i]
        if x0 != x1 and y0 != y1:
            middle = (y0 + y1) / 2
            path.cubicTo(QPointF(x0, middle), QPointF(x1, middle), QPointF(x1, y1))
            continue
        if i < n - 1:
            x2, y2 = points[i + 1]
            turns = (x1 != x2) != (y1 != y2) and ((x0 == x1) != (x1 == x2))
            if turns:  # a right angle between two straight pieces: round it
                before = abs(x1 - x0) + abs(y1 - y0)
                after = abs(x2 - x1) + abs(y2 - y1)
                r = min(CORNER_RADIUS, before / 2, after / 2)
                if r > 0:
                    ux, uy = (x1 - x0) / before, (y1 - y0) / before
                    vx, vy = (x2 - x1) / after, (y2 - y1) / after
                    path.lineTo(QPointF(x1 - ux * r, y1 - uy * r))
                    path.quadTo(QPointF(x1, y1), QPointF(x1 + vx * r, y1 + vy * r))
                    continue
        path.lineTo(QPointF(x1, y1))
    return path


class EdgeItem(QGraphicsPathItem):
    """A connection, drawn along its route (``set_route``). A route the canvas found no way
    around the cards for is drawn above them, dashed and lighter, never hidden beneath."""

    def __init__(self, source: str, target: str) -> None:
        super().__init__()
        self.source, self.target = source, target
        self.setZValue(0)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.error = False
        self.highlighted = False
        self.crossing = False  # the route passes over a card
        self.points: list[tuple[float, float]] = []
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
            return
        colour = QColor(ERROR if self.error else EDGE_COLOUR)
        width = 2.4 if self.error else 1.8
        if self.crossing:
            colour.setAlpha(190)
            self.setPen(QPen(colour, width, Qt.PenStyle.DashLine))
        else:
            self.setPen(QPen(colour, width))

    def hover_text(self, target: NodeItem | None) -> str:
        """Why the connection is red (its target's input errors), else what flows along it."""
        info = target.info if target is not None else None
        if info is not None:
            errors = [str(p) for p in info.errors if p.code in INPUT_ERRORS]
            if errors:
                return "\n".join(errors)
        return f"{self.source} → {self.target}"

    def set_route(self, points: list[tuple[float, float]], crossing: bool = False) -> None:
        """Draw along ``points`` (from the source's bottom port to the target's top port);
        ``crossing``: no way around the cards was found, so it is drawn above them."""
        if points == self.points and crossing == self.crossing:
            return
        self.points = list(points)
        if crossing != self.crossing:
            self.crossing = crossing
            self.setZValue(2 if crossing else 0)
            self._apply_pen()
        self.setPath(smooth_path(self.points))
