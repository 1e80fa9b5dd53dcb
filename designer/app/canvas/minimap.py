"""The overview: the whole design in small in a corner of the canvas, with the part on screen
framed. Click or drag in it to move the view there.

It is drawn from the cards' rectangles and the connections' paths (no text), once per edit into
a pixmap, so a thousand-card design costs a few milliseconds after an edit and nothing while
the view is scrolled (only the frame moves)."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QWidget

from designer.app.canvas.items import (CARD_RECT, CUT_OFF, ERROR, GROUP_COLOURS, WARNING, EdgeItem,
                                       NodeItem)
from designer.core.catalog import LAYER_TYPES

MAX_SIZE = QSize(170, 210)  # the overview's largest size in pixels
MAX_SHARE = 0.25  # of the canvas's width, and twice that of its height, at most
MIN_SIDE = 40
MARGIN = 10  # from the canvas's corner
REBUILD_MS = 60  # after an edit, the overview is redrawn this much later (edits come in bursts)
FRAME = QColor("#1a73e8")
BACKGROUND = QColor(255, 255, 255, 230)
EDGE = QColor("#7b8794")
CARD_BORDER = QColor("#52606d")


class Minimap(QWidget):
    """See the module docstring. Lives on a ``CanvasView`` (its child, over the viewport's
    bottom-right corner); shown while the design doesn't fit in the view (and the user hasn't
    turned it off: ``set_wanted``)."""

    def __init__(self, view) -> None:
        super().__init__(view)
        self.view = view
        self.wanted = True
        self._pixmap: QPixmap | None = None
        self._content = QRectF()  # the scene rect drawn
        self._to_map = QTransform()  # scene -> widget coordinates
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview of the whole design: click or drag to move the view")
        self.setAttribute(Qt.WidgetAttribute.WA_NoMousePropagation)
        self._timer = QTimer(self, singleShot=True, interval=REBUILD_MS)
        self._timer.timeout.connect(self.rebuild)
        view.visible_changed.connect(self._view_moved)
        document = view.scene().document
        document.refreshed.connect(self.schedule)
        document.design_replaced.connect(self.schedule)
        self.hide()

    # ------------------------------------------------------------------ state

    def set_wanted(self, wanted: bool) -> None:
        """The user's choice (View ▸ Overview): off hides it whatever the design."""
        self.wanted = wanted
        self.rebuild()

    def schedule(self, *args) -> None:
        self._timer.start()

    def _view_moved(self) -> None:
        self._update_visibility()
        if self.isVisible():
            self.update()

    def _should_show(self) -> bool:
        if not self.wanted or not self._content.isValid() or self._too_small():
            return False
        visible = self.view.visible_rect()
        return not visible.contains(self._content)

    def _update_visibility(self) -> None:
        show = self._should_show()
        if show != self.isVisible():
            self.setVisible(show)
            if show:
                self.place()
                self.raise_()

    def _box(self) -> QSize:
        """The largest size the overview may take on this canvas."""
        area = self.view.viewport().size()
        return QSize(min(MAX_SIZE.width(), round(area.width() * MAX_SHARE)),
                     min(MAX_SIZE.height(), round(area.height() * 2 * MAX_SHARE),
                         area.height() - 2 * MARGIN))

    def _too_small(self) -> bool:
        box = self._box()
        return box.width() < MIN_SIDE or box.height() < MIN_SIDE

    def place(self) -> None:
        """Keep to the bottom-right corner of the canvas (above the scroll bars)."""
        area = self.view.viewport().geometry()
        self.move(area.right() - self.width() - MARGIN + 1,
                  area.bottom() - self.height() - MARGIN + 1)

    # ------------------------------------------------------------------ drawing

    def rebuild(self) -> None:
        """Redraw the design into the pixmap (after edits, a new design, a new size)."""
        if not self.wanted:  # turned off: no drawing after every edit
            self._content = QRectF()
            self._update_visibility()
            return
        scene = self.view.scene()
        content = scene.itemsBoundingRect()
        self._content = content.adjusted(-20, -20, 20, 20) if content.isValid() else QRectF()
        if not self._content.isValid():
            self._pixmap = None
            self._update_visibility()
            return
        box = self._box()
        if self._too_small():
            self._update_visibility()
            return
        ratio = min(box.width() / self._content.width(), box.height() / self._content.height())
        size = QSize(max(MIN_SIDE, round(self._content.width() * ratio)),
                     max(MIN_SIDE, round(self._content.height() * ratio)))
        if size != self.size():
            self.resize(size)
            self.place()
        # the design centred in the widget at that ratio (a thin column gets room at its sides)
        dx = (size.width() - self._content.width() * ratio) / 2
        dy = (size.height() - self._content.height() * ratio) / 2
        self._to_map = QTransform(ratio, 0, 0, ratio, dx - self._content.left() * ratio,
                                  dy - self._content.top() * ratio)
        dpr = self.devicePixelRatioF()
        pixmap = QPixmap(round(size.width() * dpr), round(size.height() * dpr))
        pixmap.setDevicePixelRatio(dpr)
        pixmap.fill(BACKGROUND)
        painter = QPainter(pixmap)
        painter.setTransform(self._to_map)
        edge_pen = QPen(EDGE, 1.0)
        edge_pen.setCosmetic(True)
        painter.setPen(edge_pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for item in scene.edges.values():
            if isinstance(item, EdgeItem):
                if item.pos().isNull():
                    painter.drawPath(item.path())
                else:
                    painter.drawPath(item.mapToScene(item.path()))
        # cards in batches of one look (group colour, border): one call per batch
        analysis = scene.document.analysis
        design = scene.document.design
        batches: dict[tuple[str, str], list[QRectF]] = {}
        for node_id, item in scene.nodes.items():
            if not isinstance(item, NodeItem) or node_id not in design:
                continue
            info = analysis.info(node_id)
            layer = LAYER_TYPES.get(info.type) if info is not None else None
            border = "plain"
            if info is not None and info.errors and not all(p.code == CUT_OFF
                                                            for p in info.errors):
                border = "error"
            elif info is not None and info.warnings:
                border = "warning"
            key = (layer.group if layer else "Other", border)
            batches.setdefault(key, []).append(CARD_RECT.translated(item.pos()))
        for (group, border), rects in batches.items():
            colour, width = {"plain": (CARD_BORDER, 0.8), "error": (ERROR, 2.0),
                             "warning": (WARNING, 2.0)}[border]
            pen = QPen(colour, width)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(QColor(GROUP_COLOURS.get(group, "#f5f5f5")).darker(115))
            painter.drawRects(rects)
        painter.end()
        self._pixmap = pixmap
        self._update_visibility()
        self.update()

    def visible_frame(self) -> QRectF:
        """The part of the design on screen, in the overview's coordinates."""
        return self._to_map.mapRect(self.view.visible_rect())

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        if self._pixmap is not None:
            painter.drawPixmap(0, 0, self._pixmap)
        frame = self.visible_frame().intersected(QRectF(self.rect()).adjusted(1, 1, -1, -1))
        painter.setPen(QPen(FRAME, 1.5))
        painter.setBrush(QColor(26, 115, 232, 40))
        if frame.isValid():
            painter.drawRect(frame)
        painter.setPen(QPen(QColor("#9aa4b2"), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5))

    # ------------------------------------------------------------------ moving the view

    def scene_point(self, pos: QPointF) -> QPointF:
        inverse, ok = self._to_map.inverted()
        return inverse.map(pos) if ok else QPointF()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.view.center_on_scene(self.scene_point(event.position()))
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.view.center_on_scene(self.scene_point(event.position()))
        event.accept()

    def wheelEvent(self, event) -> None:
        event.accept()  # not a zoom of the canvas under the overview
