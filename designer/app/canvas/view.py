"""The canvas view: zoom, pan, rubber-band selection, and drops from the palette or a file manager.

The view moves only when the user moves it (wheel, middle-drag, scroll bars, the overview, or a
command that asks for it: opening a design, fit to window, automatic layout). Its scene rect is
its own: the design's extent with half a window of room around it, always holding what is on
screen, so cards being dropped, moved, deleted or undone never make Qt re-centre the scene
under the mouse.
"""
from __future__ import annotations

from PySide6.QtCore import QMarginsF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPainter, QWheelEvent
from PySide6.QtWidgets import QApplication, QGraphicsView

from designer.app.canvas import items as card_items
from designer.app.canvas.minimap import Minimap
from designer.app.canvas.scene import CanvasScene, local_files, type_accepts_input
from designer.app.panels.palette import MIME_TYPE

#: card text is at least this big on screen at the default zoom (points)
READABLE_POINTS = 9.0
MIN_SCALE, MAX_SCALE = 0.02, 4.0
#: the default zoom shows small designs larger than readable, up to this factor
SMALL_DESIGN_BOOST = 1.25
TOP_MARGIN_PX = 24  # room above the Input when the top of a design is shown
#: a card with its ports and selection outline, and room for connections around it
CARD_AREA = card_items.CARD_RECT.adjusted(-20, -20, 20, 20)
EMPTY_HINT = ("Drag an Input from Layers onto the canvas to start,\n"
              "or double-click it there (Ctrl+F finds a layer: type, then Enter).\n\n"
              "Ctrl+N starts from a template: LeNet-5, VGG-16, ResNet-18, …\n"
              "Help ▸ Getting started builds a first network in five steps.")
HINT_COLOUR = QColor("#52606d")


def card_text_points() -> float:
    """The smallest point size of the text on cards. Cards draw with fonts whose sizes are
    constants in ``canvas/items.py`` (``CARD_FONT_POINTS``, the sizes of the fonts they use)
    where it defines them; otherwise with the view's font, the application's."""
    sizes = getattr(card_items, "CARD_FONT_POINTS", None)
    if sizes:
        values = sizes.values() if isinstance(sizes, dict) else sizes
        return float(min(values))
    font = QApplication.font() if QApplication.instance() is not None else QFont()
    size = font.pointSizeF()
    if size <= 0:  # a font given in pixels: its size in points at the logical DPI
        screen = QGuiApplication.primaryScreen()
        dpi = screen.logicalDotsPerInchY() if screen is not None else 96.0
        size = font.pixelSize() * 72.0 / dpi
    return size


def readable_scale(text_points: float, logical_dpi: float = 96.0,
                   physical_dpi: float | None = None, readable: float = READABLE_POINTS) -> float:
    """The zoom at which text of ``text_points`` shows at least ``readable`` points on screen.

    Qt draws a point-sized font at ``points · logical_dpi / 72`` pixels before the view's
    zoom, so at zoom ``s`` text is ``points · s`` points as the desktop counts them. Where
    the screen is denser than the desktop assumes (a physical DPI above the logical one: a
    high-resolution screen without scaling), the same pixels are physically smaller, and the
    zoom makes up for it (by at most a factor of two: reported physical sizes are not always
    trustworthy)."""
    scale = readable / max(text_points, 1.0)
    if physical_dpi and logical_dpi and physical_dpi > logical_dpi:
        scale *= min(physical_dpi / logical_dpi, 2.0)
    return scale


class CanvasView(QGraphicsView):
    """Wheel zooms about the cursor, middle-drag pans, drag on the background selects; palette
    entries dropped here become layers where they are dropped."""

    layer_dropped = Signal(str, QPointF)  # type name, scene position
    files_dropped = Signal(list)  # local file paths dropped from outside (images, designs)
    visible_changed = Signal()  # scrolled, zoomed or resized: what is on screen changed

    def __init__(self, scene: CanvasScene) -> None:
        super().__init__(scene)
        self.setAcceptDrops(True)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self._panning: QPointF | None = None
        self._drop_edge: tuple[str, str] | None = None  # highlighted while a layer is dragged
        self._content = QRectF()  # what the scene has held since the view was last reset
        self.hint_rect = QRectF()  # where the empty canvas's hint was last drawn (viewport)
        self._was_empty: bool | None = None
        self._design = None  # the design whose cards are followed (see _watch_design)
        self.minimap = Minimap(self)
        scene.document.design_replaced.connect(self._watch_design)
        self._watch_design()

    # ------------------------------------------------------------------ the scene rect

    def reset_content(self) -> None:
        """Take the design's extent afresh (a design was opened or laid out)."""
        self._content = self.scene().itemsBoundingRect()
        self._update_scene_rect()

    def content_rect(self) -> QRectF:
        """The cards' and connections' extent (empty for an empty design)."""
        return self.scene().itemsBoundingRect()

    def _watch_design(self) -> None:
        """Follow where the design's cards go (added or moved: their rectangles widen the
        extent, at no cost per card). The scene's own rect can't be used: Qt works it out only
        when asked, and a view with a rect of its own never asks."""
        if self._design is not None:
            self._design.node_added.disconnect(self._node_added)
            self._design.node_moved.disconnect(self._node_moved)
        self._design = self.scene().document.design
        self._design.node_added.connect(self._node_added)
        self._design.node_moved.connect(self._node_moved)
        self.reset_content()

    def _node_added(self, node, index: int) -> None:
        self._grow(node.position)

    def _node_moved(self, node_id: str, old, new) -> None:
        self._grow(new)

    def _grow(self, position) -> None:
        if position is None:
            return
        card = CARD_AREA.translated(float(position[0]), float(position[1]))
        if not self._content.contains(card):
            self._content = self._content.united(card) if self._content.isValid() else card
            self._update_scene_rect()

    def visible_rect(self) -> QRectF:
        return self.mapToScene(self.viewport().rect()).boundingRect()

    def _update_scene_rect(self) -> None:
        """The design's extent with half a window around it, and whatever is on screen: the
        scroll position stays valid whatever the design does, so Qt never moves the view."""
        visible = self.visible_rect()
        margin = QMarginsF(visible.width() / 2, visible.height() / 2,
                           visible.width() / 2, visible.height() / 2)
        rect = visible
        if self._content.isValid():
            rect = rect.united(self._content.marginsAdded(margin))
        if rect != self.sceneRect():
            self.setSceneRect(rect)

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        if self._was_empty:
            self.viewport().update()  # the hint stays in the middle: not scrolled as pixels
        self._update_scene_rect()
        self.visible_changed.emit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_scene_rect()
        self.minimap.schedule()  # its size follows the canvas's
        self.minimap.place()
        self.visible_changed.emit()

    def _zoomed(self) -> None:
        self._update_scene_rect()
        self.visible_changed.emit()

    # ------------------------------------------------------------------ drops

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

    # ------------------------------------------------------------------ zoom

    @property
    def scale_factor(self) -> float:
        return self.transform().m11()

    def readable_scale(self) -> float:
        """The default zoom: card text at least READABLE_POINTS on this screen."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return readable_scale(card_text_points())
        return readable_scale(card_text_points(), screen.logicalDotsPerInchY(),
                              screen.physicalDotsPerInchY())

    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.0015 ** event.angleDelta().y()
        scale = self.scale_factor * factor
        if MIN_SCALE <= scale <= MAX_SCALE:
            self.scale(factor, factor)
            self._zoomed()

    def zoom(self, factor: float) -> None:
        """Zoom about the centre of the view (menu and keys: the mouse may be anywhere)."""
        scale = max(MIN_SCALE, min(MAX_SCALE, self.scale_factor * factor))
        centre = self.visible_rect().center()
        self._set_scale(scale)
        self.centerOn(centre)

    def _set_scale(self, scale: float) -> None:
        self.resetTransform()
        self.scale(scale, scale)
        self._zoomed()

    def _fit_scale(self, rect: QRectF) -> float:
        viewport = self.viewport().rect()
        return min(viewport.width() / max(rect.width(), 1.0),
                   viewport.height() / max(rect.height(), 1.0))

    def fit_all(self) -> None:
        """Fit to window (Ctrl+0): the whole design, however small that makes it (a small
        design is not blown up beyond a little over the readable size)."""
        self.reset_content()
        rect = self._content.adjusted(-40, -40, 40, 40)
        if not rect.isValid():
            return
        readable = self.readable_scale()
        self._set_scale(max(MIN_SCALE, min(self._fit_scale(rect), SMALL_DESIGN_BOOST * readable)))
        self.centerOn(rect.center())

    def show_top(self) -> None:
        """The default view (a design opened, Ctrl+L): card text readable, the whole design if
        it fits at that zoom, otherwise its top (the Input) in full, just below the top edge."""
        self.reset_content()
        rect = self._content.adjusted(-40, -40, 40, 40)
        readable = self.readable_scale()
        if not rect.isValid():
            self._set_scale(readable)
            self.centerOn(0.0, 0.0)
            return
        scale = max(readable, min(self._fit_scale(rect), SMALL_DESIGN_BOOST * readable))
        self._set_scale(scale)
        viewport = self.viewport().rect()
        width, height = viewport.width() / scale, viewport.height() / scale
        if rect.width() <= width and rect.height() <= height:
            self.centerOn(rect.center())
            return
        x = rect.center().x() if rect.width() <= width else self._top_card_x()
        top = self._content.top() - TOP_MARGIN_PX / scale
        self.centerOn(x, top + height / 2)

    def _top_card_x(self) -> float:
        """The horizontal centre of the Input (the topmost one; the topmost card if none)."""
        scene = self.scene()
        design = scene.document.design
        cards = list(scene.nodes.items())
        inputs = [(item.pos().y(), item.pos().x()) for node_id, item in cards
                  if node_id in design and design.node(node_id).type == "Input"]
        candidates = inputs or [(item.pos().y(), item.pos().x()) for _, item in cards]
        return min(candidates)[1] if candidates else self._content.center().x()

    def center_on_scene(self, point: QPointF) -> None:
        """Move the view so that ``point`` is in the middle (the overview)."""
        self.centerOn(point)

    # ------------------------------------------------------------------ painting

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        empty = not getattr(self.scene(), "nodes", None)
        if empty != self._was_empty:
            if self._was_empty is not None:
                self.viewport().update()  # the whole hint comes or goes, not the exposed part
            self._was_empty = empty
        if not empty:
            self.hint_rect = QRectF()
            return
        # an empty design: say how to start, in the middle of the window, at any zoom
        painter.save()
        painter.resetTransform()
        area = QRectF(self.viewport().rect()).adjusted(24, 24, -24, -24)
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF(), 10.0) * 1.15)
        painter.setFont(font)
        painter.setPen(HINT_COLOUR)
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        self.hint_rect = painter.boundingRect(area, flags, EMPTY_HINT)
        painter.drawText(area, flags, EMPTY_HINT)
        painter.restore()

    # ------------------------------------------------------------------ panning

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
