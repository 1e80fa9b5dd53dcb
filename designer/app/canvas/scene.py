"""The canvas scene: draws the document's design and follows the model's events. Dragging cards
moves them freely; the move is committed to the model (one undo step) on release."""
from __future__ import annotations

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import QGraphicsPathItem, QToolTip

from designer.app.canvas.items import EDGE_GRAB, ERROR, INPUT_ERRORS, DesignScene, EdgeItem, NodeItem
from designer.app.document import Document
from designer.core.catalog import LAYER_TYPES
from designer.core.design import GraphError, Node


def local_files(mime) -> list[str]:
    """Local files in a drag from outside the app (a file manager)."""
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


def type_accepts_input(type_name: str) -> bool:
    """Whether a layer of this type can be fed (everything but an Input)."""
    layer = LAYER_TYPES.get(type_name)
    return layer is None or layer.max_inputs != 0


class CanvasScene(DesignScene):
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
