"""The canvas scene: draws the document's design and follows the model's events. Dragging cards
moves them freely; the move is committed to the model (one undo step) on release.

Connections follow the automatic layout's routes (``designer.core.layout``: each skip connection
in a lane of its own) while both their cards and every card near the route are where the layout
put them. Once cards are moved, the connections touching them, and those now passing under them,
are routed around the cards (``layout.route``); connections that went around a card that has
moved away are routed again too. Routing runs after each edit (and live for the cards being
dragged), only for the connections concerned."""
from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import QGraphicsPathItem, QToolTip

from designer.app.canvas.items import EDGE_GRAB, ERROR, INPUT_ERRORS, DesignScene, EdgeItem, NodeItem
from designer.app.document import Document
from designer.core.catalog import LAYER_TYPES
from designer.core.design import GraphError, Node
from designer.core.layout import (CARD_H, CARD_W, COLUMN, CROSSING, ROUTE_CLEARANCE, ROW, STRAIGHT,
                                  Layout, card_rect, route, route_box, route_crosses)

Rect = tuple[float, float, float, float]
#: a layout route is checked against the moved cards one by one up to this many of them; beyond,
#: against the grid of cards
_FEW_MOVED = 32
#: when more cards than this moved at once (Ctrl+L, undoing it, a big paste), every connection
#: is routed again rather than looking for the ones each card concerns
_MANY_MOVED = 64


def _intersects(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


class CardGrid:
    """Where the cards are, filed by the cells of a grid (a column wide, a row high): the
    router's question "which cards may lie in this rectangle?" answered in Python. (The
    scene's own index would be rebuilt by Qt between questions whenever a connection's path
    has just changed.)"""

    CELL_W, CELL_H = COLUMN, ROW

    def __init__(self) -> None:
        self._cells: dict[tuple[int, int], set[str]] = {}
        self._rects: dict[str, Rect] = {}

    def _cells_of(self, rect: Rect):
        x0, x1 = math.floor(rect[0] / self.CELL_W), math.floor((rect[0] + rect[2]) / self.CELL_W)
        y0, y1 = math.floor(rect[1] / self.CELL_H), math.floor((rect[1] + rect[3]) / self.CELL_H)
        return x0, x1, y0, y1

    def put(self, node_id: str, rect: Rect) -> None:
        if self._rects.get(node_id) == rect:
            return
        self.remove(node_id)
        self._rects[node_id] = rect
        x0, x1, y0, y1 = self._cells_of(rect)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                self._cells.setdefault((x, y), set()).add(node_id)

    def remove(self, node_id: str) -> None:
        rect = self._rects.pop(node_id, None)
        if rect is None:
            return
        x0, x1, y0, y1 = self._cells_of(rect)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                cell = self._cells.get((x, y))
                if cell is not None:
                    cell.discard(node_id)
                    if not cell:
                        del self._cells[(x, y)]

    def rename(self, old: str, new: str) -> None:
        rect = self._rects.get(old)
        if rect is not None:
            self.remove(old)
            self.put(new, rect)

    def clear(self) -> None:
        self._cells.clear()
        self._rects.clear()

    def ids_in(self, rect: Rect) -> set[str]:
        """The cards overlapping ``rect``."""
        x0, x1, y0, y1 = self._cells_of(rect)
        found: set[str] = set()
        if (x1 - x0 + 1) * (y1 - y0 + 1) > 4 * len(self._rects) + 16:  # a huge rectangle
            candidates = self._rects
        else:
            for x in range(x0, x1 + 1):
                for y in range(y0, y1 + 1):
                    cell = self._cells.get((x, y))
                    if cell:
                        found |= cell
            candidates = found
        return {n for n in candidates if _intersects(self._rects[n], rect)}

    def rects_in(self, rect: Rect) -> list[Rect]:
        return [self._rects[n] for n in self.ids_in(rect)]


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
        # routing (see the module's docstring)
        self._layout: Layout | None = None  # the document's layout the ideal routes come from
        self._ideal_cards: dict[str, tuple[float, float]] = {}  # positions in that layout
        self._ideal_routes: dict[tuple[str, str], list[tuple[float, float]]] = {}
        self._displaced: set[str] = set()  # cards not where that layout put them
        self._dirty: set[tuple[str, str]] = set()  # connections to route at the next flush
        self._moved: dict[str, Rect | None] = {}  # cards moved since then -> where they were
        self._vacated: list[Rect] = []  # where removed cards were
        self._detoured: dict[tuple[str, str], Rect] = {}  # off their ideal route -> its box
        self._syncing = False  # cards follow the model (not a drag)
        self._grid = CardGrid()
        self._design = None  # the design the items show (until design_replaced rebuilds them)
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(0)
        self._flush_timer.timeout.connect(self.flush_routes)
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
        self._layout = None
        self._moved.clear()
        self._vacated.clear()
        self._dirty.clear()
        self._detoured.clear()
        self._grid.clear()
        design = self._design = self.document.design
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
        self._moved.clear()
        self._adopt_layout(force=True)
        self.flush_routes()
        self.update_infos(set(design.node_ids))

    def _on_node_added(self, node: Node, index: int) -> None:
        item = NodeItem(node)
        self.nodes[node.id] = item
        self.addItem(item)
        self._syncing = True
        item.setPos(QPointF(*(node.position or (0.0, 0.0))))
        self._syncing = False
        self._grid.put(node.id, self._card(item))
        self._moved.setdefault(node.id, None)
        self._schedule()

    def _on_node_removed(self, node: Node, index: int) -> None:
        self._red_targets.discard(node.id)
        item = self.nodes.pop(node.id)
        self._vacated.append(self._card(item))
        self._grid.remove(node.id)
        self._displaced.discard(node.id)
        self._moved.pop(node.id, None)
        self.removeItem(item)
        self._schedule()

    def _on_node_moved(self, node_id: str, old, new) -> None:
        item = self.nodes[node_id]
        if new is not None and (item.pos().x(), item.pos().y()) != tuple(new):
            self._syncing = True
            item.setPos(QPointF(*new))
            self._syncing = False
        self._moved.setdefault(node_id, card_rect(old) if old is not None else None)
        self._schedule()

    def _on_node_renamed(self, old: str, new: str) -> None:
        if old in self._red_targets:
            self._red_targets.discard(old)
            self._red_targets.add(new)
        item = self.nodes.pop(old)
        item.node_id = new
        self.nodes[new] = item

        def renamed(key: tuple[str, str]) -> tuple[str, str]:
            return (new if key[0] == old else key[0], new if key[1] == old else key[1])
        for (s, t), edge in list(self.edges.items()):
            if old in (s, t):
                del self.edges[(s, t)]
                edge.source, edge.target = renamed((s, t))
                self.edges[(edge.source, edge.target)] = edge
        # the routing state follows the new id
        if old in self._ideal_cards:
            self._ideal_cards[new] = self._ideal_cards.pop(old)
        self._ideal_routes = {renamed(k): v for k, v in self._ideal_routes.items()}
        self._detoured = {renamed(k): v for k, v in self._detoured.items()}
        self._dirty = {renamed(k) for k in self._dirty}
        if old in self._displaced:
            self._displaced.discard(old)
            self._displaced.add(new)
        if old in self._moved:
            self._moved[new] = self._moved.pop(old)
        self._grid.rename(old, new)

    def _on_edge_added(self, edge: tuple[str, str], index: int) -> None:
        item = EdgeItem(*edge)
        self.edges[edge] = item
        self.addItem(item)
        self._dirty.add(edge)
        self._schedule()

    def _on_edge_removed(self, edge: tuple[str, str], index: int) -> None:
        self.removeItem(self.edges.pop(edge))
        self._dirty.discard(edge)
        self._detoured.pop(edge, None)

    def update_infos(self, changed: set[str]) -> None:
        """After an edit: route the connections it concerns, repaint the changed cards that are
        in view (the others read their figures when next painted) and colour the connections
        into nodes with input errors. Each step looks only at what is in view, moved or in
        trouble, never at every changed node: an edit at the top of a large design changes
        them all."""
        self.flush_routes()
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

    # ------------------------------------------------------------------ routing

    @staticmethod
    def _card(item: NodeItem) -> Rect:
        pos = item.pos()
        return (pos.x() - CARD_W / 2, pos.y(), CARD_W, CARD_H)

    def _cards_in(self, rect: Rect) -> list[Rect]:
        """The cards overlapping ``rect``."""
        return self._grid.rects_in(rect)

    def _schedule(self) -> None:
        """Route what changed once the current edit is over (an edit's end flushes at once)."""
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _adopt_layout(self, force: bool = False) -> None:
        """Take the routes of the document's latest automatic layout (after opening a design
        or Ctrl+L): every connection is routed again."""
        layout = getattr(self.document, "last_layout", None)
        if layout is self._layout and not force:
            return
        self._layout = layout
        self._ideal_cards = layout.positions() if layout is not None else {}
        self._ideal_routes = dict(layout.edges) if layout is not None else {}
        self._displaced = {n for n, item in self.nodes.items() if not self._in_place(n, item)}
        self._detoured.clear()
        self._dirty.update(self.edges)
        self._schedule()

    def _in_place(self, node_id: str, item: NodeItem) -> bool:
        ideal = self._ideal_cards.get(node_id)
        if ideal is None:
            return False
        pos = item.pos()
        return abs(pos.x() - ideal[0]) < 0.5 and abs(pos.y() - ideal[1]) < 0.5

    def _note_displaced(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is None or self._in_place(node_id, item):
            self._displaced.discard(node_id)
        else:
            self._displaced.add(node_id)

    def _edges_of(self, node_id: str) -> list[tuple[str, str]]:
        design = self.document.design
        if node_id not in design:
            return [key for key in self.edges if node_id in key]
        return ([(s, node_id) for s in design.sources(node_id)]
                + [(node_id, t) for t in design.targets(node_id)])

    def flush_routes(self) -> None:
        """Route the connections of the cards moved, added or removed since the last time, the
        ones now passing under those cards, and the ones that went around where they were."""
        self._flush_timer.stop()
        if self._design is not self.document.design:
            return  # a new design is coming: rebuild routes it all
        self._adopt_layout()
        if not (self._moved or self._vacated or self._dirty):
            return
        dirty, vacated = self._dirty, self._vacated
        if len(self._moved) > _MANY_MOVED:  # route everything
            for node_id in self._moved:
                self._note_displaced(node_id)
            self._moved = {}
            dirty.update(self.edges)
        for node_id, old in self._moved.items():
            item = self.nodes.get(node_id)
            if item is None:
                continue
            self._note_displaced(node_id)
            dirty.update(k for k in self._edges_of(node_id) if k in self.edges)
            if old is not None:
                vacated.append(old)
            card = self._card(item)
            grown = QRectF(*card).adjusted(-ROUTE_CLEARANCE, -ROUTE_CLEARANCE,
                                           ROUTE_CLEARANCE, ROUTE_CLEARANCE)
            for other in self.items(grown, Qt.ItemSelectionMode.IntersectsItemBoundingRect,
                                    Qt.SortOrder.AscendingOrder):
                if isinstance(other, EdgeItem) and route_crosses(other.points, card):
                    dirty.add((other.source, other.target))
        if vacated and self._detoured:
            for key, box in self._detoured.items():
                if any(_intersects(box, place) for place in vacated):
                    dirty.add(key)
        self._moved = {}
        self._vacated = []
        self._dirty = set()
        for key in dirty:
            edge = self.edges.get(key)
            if edge is not None:
                self._route(edge)

    def _ideal_is_clear(self, points, key: tuple[str, str]) -> bool:
        """Whether a layout route is still clear: only moved cards can be in its way."""
        displaced = self._displaced
        if not displaced:
            return True
        if len(displaced) <= _FEW_MOVED:
            return not any(route_crosses(points, self._card(self.nodes[n]))
                           for n in displaced if n not in key and n in self.nodes)
        for p, q in zip(points, points[1:]):
            box = (min(p[0], q[0]) - ROUTE_CLEARANCE, min(p[1], q[1]) - ROUTE_CLEARANCE,
                   abs(q[0] - p[0]) + 2 * ROUTE_CLEARANCE, abs(q[1] - p[1]) + 2 * ROUTE_CLEARANCE)
            if any(n in displaced and n not in key for n in self._grid.ids_in(box)):
                return False
        return True

    def _route(self, edge: EdgeItem) -> None:
        key = (edge.source, edge.target)
        source, target = self.nodes.get(edge.source), self.nodes.get(edge.target)
        if source is None or target is None:
            return
        start, end = source.output_port(), target.input_port()
        start, end = (start.x(), start.y()), (end.x(), end.y())
        ideal = self._ideal_routes.get(key)
        wanted = None  # the box of the better route something is in the way of
        if ideal is not None and key[0] not in self._displaced and key[1] not in self._displaced:
            if self._ideal_is_clear(ideal, key):
                edge.set_route(ideal)
                self._detoured.pop(key, None)
                return
            wanted = route_box(ideal)
        points, how = route(start, end, self._cards_in)
        edge.set_route(points, crossing=how == CROSSING)
        if wanted is None and how != STRAIGHT:
            wanted = route_box([start, end])
        if wanted is not None:
            self._detoured[key] = wanted
        else:
            self._detoured.pop(key, None)

    def node_item_moved(self, node_id: str) -> None:
        """A card moved on the canvas: while it is dragged, its connections follow at once."""
        item = self.nodes.get(node_id)
        if item is None:
            return
        self._grid.put(node_id, self._card(item))
        if self._syncing or node_id not in self.document.design:
            return
        if node_id not in self._drag_start:
            self._drag_start[node_id] = self.document.design.node(node_id).position
        self._note_displaced(node_id)
        for key in self._edges_of(node_id):
            edge = self.edges.get(key)
            if edge is not None:
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
        """Select a card; a view scrolls to it only if it can't be seen at all there (a card
        just dropped or added where the user is looking never moves the view)."""
        self.clearSelection()
        item = self.nodes.get(node_id)
        if item is not None:
            item.setSelected(True)
            for view in self.views():
                shown = view.mapToScene(view.viewport().rect()).boundingRect()
                if not shown.intersects(item.sceneBoundingRect()):
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
