"""The canvas view: zoom, pan, rubber-band selection, and drops from the palette or a file manager."""
from __future__ import annotations

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QPainter, QWheelEvent
from PySide6.QtWidgets import QGraphicsView

from designer.app.canvas.scene import CanvasScene, local_files, type_accepts_input
from designer.app.panels.palette import MIME_TYPE


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
