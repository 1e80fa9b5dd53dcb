"""The canvas: a QGraphicsScene that draws the design and follows the model's events.

Items hold no state the model doesn't: a card shows its node's analysis, an edge its two ends.
Dragging cards moves them freely; the move is committed to the model (one undo step) on release.
"""
from __future__ import annotations

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (QBrush, QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen,
                           QTransform, QWheelEvent)
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsObject, QGraphicsPathItem, QGraphicsScene,
                               QGraphicsView, QStyleOptionGraphicsItem, QToolTip, QWidget)

from designer.app.document import Document
from designer.app.palette import MIME_TYPE
from designer.core.analysis import NodeInfo
from designer.core.catalog import LAYER_TYPES
from designer.core.design import GraphError, Node
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
        if isinstance(scene, CanvasScene) and self.node_id in scene.document.design:
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
            if isinstance(scene, CanvasScene):
                scene.node_item_moved(self.node_id)
        return super().itemChange(change, value)

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        scene = self.scene()
        if isinstance(scene, CanvasScene):
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


def local_files(mime) -> list[str]:
    """Local files in a drag from outside the app (a file manager)."""
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


def type_accepts_input(type_name: str) -> bool:
    """Whether a layer of this type can be fed (everything but an Input)."""
    layer = LAYER_TYPES.get(type_name)
    return layer is None or layer.max_inputs != 0


class CanvasScene(QGraphicsScene):
    """Draws the document's design; every change arrives as a model event."""

    node_activated = Signal(str)  # a card was double-clicked
    hint = Signal(str)  # what a connection drag would do (or why it can't), for the status bar

    def __init__(self, document: Document) -> None:
        super().__init__()
        self.document = document
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[tuple[str, str], EdgeItem] = {}
        self._red_targets: set[str] = set()  # nodes whose incoming edges are drawn red
        self._drag_start: dict[str, tuple[float, float] | None] = {}
        self._link_source: str | None = None  # a connection being dragged from this node
        self._link_line: QGraphicsPathItem | None = None
        self._link_target: str | None = None
        self.setBackgroundBrush(QColor("#fbfcfe"))
        document.design_replaced.connect(self.rebuild)
        document.refreshed.connect(self.update_infos)
        self.rebuild()

    # ------------------------------------------------------------------ following the model

    def rebuild(self) -> None:
        self.clear()
        self.nodes.clear()
        self.edges.clear()
        self._red_targets.clear()
        design = self.document.design
        design.node_added.connect(self._on_node_added)
        design.node_removed.connect(self._on_node_removed)
        design.node_moved.connect(self._on_node_moved)
        design.node_renamed.connect(self._on_node_renamed)
        design.edge_added.connect(self._on_edge_added)
        design.edge_removed.connect(self._on_edge_removed)
        for node in design.nodes:
            self._on_node_added(node, 0)
        for edge in design.edges:
            self._on_edge_added(edge, 0)
        self.update_infos(set(design.node_ids))

    def _on_node_added(self, node: Node, index: int) -> None:
        item = NodeItem(node)
        self.nodes[node.id] = item
        self.addItem(item)
        item.setPos(QPointF(*(node.position or (0.0, 0.0))))

    def _on_node_removed(self, node: Node, index: int) -> None:
        self._red_targets.discard(node.id)
        item = self.nodes.pop(node.id)
        self.removeItem(item)

    def _on_node_moved(self, node_id: str, old, new) -> None:
        item = self.nodes[node_id]
        if new is not None and (item.pos().x(), item.pos().y()) != tuple(new):
            item.setPos(QPointF(*new))

    def _on_node_renamed(self, old: str, new: str) -> None:
        if old in self._red_targets:
            self._red_targets.discard(old)
            self._red_targets.add(new)
        item = self.nodes.pop(old)
        item.node_id = new
        self.nodes[new] = item
        for (s, t), edge in list(self.edges.items()):
            if old in (s, t):
                del self.edges[(s, t)]
                edge.source = new if s == old else s
                edge.target = new if t == old else t
                self.edges[(edge.source, edge.target)] = edge

    def _on_edge_added(self, edge: tuple[str, str], index: int) -> None:
        item = EdgeItem(*edge)
        self.edges[edge] = item
        self.addItem(item)
        self._route(item)

    def _on_edge_removed(self, edge: tuple[str, str], index: int) -> None:
        self.removeItem(self.edges.pop(edge))

    def update_infos(self, changed: set[str]) -> None:
        """After an edit: repaint the changed cards that are in view (the others read their
        figures when next painted) and colour the connections into nodes with input errors.
        Both steps look only at what is in view or in trouble, never at every changed node: an
        edit at the top of a large design changes them all."""
        if not changed:
            return
        for view in self.views():
            shown = view.mapToScene(view.viewport().rect()).boundingRect()
            for item in self.items(shown, Qt.ItemSelectionMode.IntersectsItemBoundingRect):
                if isinstance(item, NodeItem) and item.node_id in changed:
                    item.update()
        red = self._red_targets
        bad = {p.node_id for p in self.document.analysis.problems() if p.code in INPUT_ERRORS}
        for node_id in (bad | red) & changed:
            is_bad = node_id in bad
            for source in self.document.design.sources(node_id):
                edge = self.edges.get((source, node_id))
                if edge is not None and edge.error != is_bad:
                    edge.set_state(is_bad)
            if is_bad:
                red.add(node_id)
            else:
                red.discard(node_id)

    # ------------------------------------------------------------------ geometry

    def _route(self, edge: EdgeItem) -> None:
        source, target = self.nodes.get(edge.source), self.nodes.get(edge.target)
        if source is not None and target is not None:
            edge.update_path(source.output_port(), target.input_port())

    def node_item_moved(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is not None and node_id not in self._drag_start:
            self._drag_start[node_id] = self.document.design.node(node_id).position
        for (s, t), edge in self.edges.items():
            if node_id in (s, t):
                self._route(edge)

    def commit_moves(self) -> None:
        """Turn a finished drag into one undoable move of every card that moved."""
        moves = {}
        for node_id, old in self._drag_start.items():
            item = self.nodes.get(node_id)
            if item is None:
                continue
            new = (round(item.pos().x(), 1), round(item.pos().y(), 1))
            if old is None or tuple(old) != new:
                moves[node_id] = (old, new)
        self._drag_start.clear()
        if moves:
            self.document.move_nodes(moves)

    def edge_at(self, pos: QPointF) -> tuple[str, str] | None:
        """The connection under a scene position (within a few pixels), unless a card is there."""
        if self._card_at(pos) is not None:
            return None
        probe = QRectF(pos.x() - EDGE_GRAB, pos.y() - EDGE_GRAB, 2 * EDGE_GRAB, 2 * EDGE_GRAB)
        for item in self.items(probe):
            if isinstance(item, EdgeItem):
                return (item.source, item.target)
        return None

    def highlight_edge(self, edge: tuple[str, str] | None) -> None:
        """Mark the connection a dragged layer would be inserted into (None: no mark)."""
        for key, item in self.edges.items():
            item.set_highlight(key == edge)

    def selected_node_ids(self) -> list[str]:
        return [i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)]

    def selected_edges(self) -> list[tuple[str, str]]:
        return [(i.source, i.target) for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def select_node(self, node_id: str) -> None:
        self.clearSelection()
        item = self.nodes.get(node_id)
        if item is not None:
            item.setSelected(True)
            for view in self.views():
                view.ensureVisible(item)

    # ------------------------------------------------------------------ connecting by mouse

    def _card_at(self, pos: QPointF, exclude: str | None = None) -> NodeItem | None:
        for item in self.items(pos):
            while item is not None and not isinstance(item, NodeItem):
                item = item.parentItem()
            if item is not None and item.node_id != exclude:
                return item
        return None

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            card = self._card_at(event.scenePos())
            if card is not None and QLineF(card.output_port(), event.scenePos()).length() <= 10:
                self._link_source = card.node_id
                self._link_line = QGraphicsPathItem()
                self._link_line.setZValue(2)
                self.addItem(self._link_line)
                self._update_link(event.scenePos())
                event.accept()
                return
        super().mousePressEvent(event)

    def _update_link(self, pos: QPointF) -> None:
        source = self.nodes[self._link_source]
        target = self._card_at(pos, exclude=self._link_source)
        self._link_target = None
        colour, text = QColor("#7b8794"), f"Connect {self._link_source} to …"
        end = pos
        if target is not None:
            end = target.input_port()
            try:
                self.document.design.check_connect(self._link_source, target.node_id)
            except GraphError as exc:
                colour, text = ERROR, f"Can't connect: {exc}"
            else:
                colour, text = QColor("#2e7d32"), f"Connect {self._link_source} → {target.node_id}"
                self._link_target = target.node_id
        path = QPainterPath(source.output_port())
        bend = max(40.0, abs(end.y() - source.output_port().y()) / 2)
        path.cubicTo(source.output_port() + QPointF(0, bend), end - QPointF(0, bend), end)
        self._link_line.setPath(path)
        self._link_line.setPen(QPen(colour, 2.4, Qt.PenStyle.DashLine))
        self.hint.emit(text)

    def mouseMoveEvent(self, event) -> None:
        if self._link_source is not None:
            self._update_link(event.scenePos())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._link_source is not None:
            source, target = self._link_source, self._link_target
            self.removeItem(self._link_line)
            self._link_source = self._link_line = self._link_target = None
            self.hint.emit("")
            if target is not None:
                self.document.connect(source, target)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def helpEvent(self, event) -> None:
        """Tooltips are built on demand from the item under the cursor."""
        text = ""
        for item in self.items(event.scenePos()):
            if isinstance(item, NodeItem):
                text = item.hover_text()
                break
            if isinstance(item, EdgeItem) and item.shape().contains(event.scenePos()):
                text = item.hover_text(self.nodes.get(item.target))
                break
        if text:
            QToolTip.showText(event.screenPos(), text)
        else:
            QToolTip.hideText()
        event.setAccepted(bool(text))

    def mouseDoubleClickEvent(self, event) -> None:
        item = self.itemAt(event.scenePos(), QTransform())
        while item is not None and not isinstance(item, NodeItem):
            item = item.parentItem()
        if isinstance(item, NodeItem):
            self.node_activated.emit(item.node_id)
        super().mouseDoubleClickEvent(event)


class CanvasView(QGraphicsView):
    """Wheel zooms about the cursor, middle-drag pans, drag on the background selects; palette
    entries dropped here become layers where they are dropped."""

    layer_dropped = Signal(str, QPointF)  # type name, scene position
    files_dropped = Signal(list)  # local file paths dropped from outside (images, designs)

    def __init__(self, scene: CanvasScene) -> None:
        super().__init__(scene)
        self.setAcceptDrops(True)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self._panning: QPointF | None = None
        self._drop_edge: tuple[str, str] | None = None  # highlighted while a layer is dragged

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(MIME_TYPE) or local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if local_files(event.mimeData()) and not event.mimeData().hasFormat(MIME_TYPE):
            event.acceptProposedAction()  # a file from outside: the window decides what it is
        elif event.mimeData().hasFormat(MIME_TYPE):
            event.acceptProposedAction()
            type_name = bytes(event.mimeData().data(MIME_TYPE)).decode("utf-8")
            pos = self.mapToScene(event.position().toPoint())
            edge = self.scene().edge_at(pos) if type_accepts_input(type_name) else None
            if edge != self._drop_edge:
                self._drop_edge = edge
                self.scene().highlight_edge(edge)
                self.scene().hint.emit(f"Drop to insert the {type_name} between {edge[0]} and "
                                       f"{edge[1]}" if edge is not None else "")
        else:
            super().dragMoveEvent(event)

    def dragLeaveEvent(self, event) -> None:
        self._drop_edge = None
        self.scene().highlight_edge(None)
        super().dragLeaveEvent(event)

    def dropEvent(self, event) -> None:
        self._drop_edge = None
        self.scene().highlight_edge(None)
        if event.mimeData().hasFormat(MIME_TYPE):
            type_name = bytes(event.mimeData().data(MIME_TYPE)).decode("utf-8")
            self.layer_dropped.emit(type_name, self.mapToScene(event.position().toPoint()))
            event.acceptProposedAction()
        elif files := local_files(event.mimeData()):
            self.files_dropped.emit(files)
            event.acceptProposedAction()
        else:
            super().dropEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.0015 ** event.angleDelta().y()
        scale = self.transform().m11() * factor
        if 0.05 <= scale <= 4.0:
            self.scale(factor, factor)

    def zoom(self, factor: float) -> None:
        self.scale(factor, factor)

    def fit_all(self, min_scale: float = 0.6, max_scale: float = 1.25) -> None:
        """Show the whole design if it is readable at that size; otherwise the top of it (where
        the Input is) at the smallest readable size."""
        rect = self.scene().itemsBoundingRect().adjusted(-40, -40, 40, 40)
        if not rect.isValid():
            return
        viewport = self.viewport().rect()
        scale = min(viewport.width() / rect.width(), viewport.height() / rect.height())
        scale = max(min_scale, min(max_scale, scale))
        self.resetTransform()
        self.scale(scale, scale)
        visible_height = viewport.height() / scale
        if rect.height() <= visible_height:
            self.centerOn(rect.center())
        else:
            self.centerOn(rect.center().x(), rect.top() + visible_height / 2)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._panning = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._panning is not None:
            delta = event.position() - self._panning
            self._panning = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton and self._panning is not None:
            self._panning = None
            self.unsetCursor()
            return
        super().mouseReleaseEvent(event)
