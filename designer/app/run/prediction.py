"""Predictions and why the network makes them (issue 14, contract §5).

``PredictionChart``: the top classes of the last run with their probabilities, as horizontal
bars with class names; the image's true class marked where it is known; a clear note when the
weights are random. ``ExplainView``: saliency, Grad-CAM and occlusion sensitivity drawn over
the network's input, for the predicted class or any other, made on the run controller's worker
(``RunController.explain``) and kept with the run's result until the next run.
"""
from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QSizePolicy, QStackedWidget, QTabBar, QVBoxLayout,
                               QWidget)

from designer.app.run.activations import show_rgb
from designer.app.run.controller import (EXPLAIN_KINDS, GRAD_CAM, SALIENCY, Explanation,
                                         RunResult)
from designer.app.run.pictures import LUT, class_names, explain_scale, heat_picture
from designer.core.problems import num
from designer.engine import explain as explaining

TOP = 5  # classes shown in the chart
UNTRAINED = "Untrained: predictions mean nothing"
BAR_RGB = tuple(int(v) for v in LUT[150])
TRUE_RGB = (20, 150, 60)
WRONG_RGB = (200, 40, 40)
MUTED = QColor(120, 120, 120)
#: the class choice's first item: follow whatever the network predicts
PREDICTED = -1
#: the progress bar takes the caption's place only for work that lasts longer than this (ms):
#: a saliency map of a small network is there before it would have been seen
PROGRESS_AFTER_MS = 200


def known_class(result: RunResult | None, image, names: list[str]) -> tuple[str | None, int | None]:
    """(the image's true class name, its index among ``names``) where the image says what it
    shows; (None, None) otherwise; (name, None) for a class the design doesn't have."""
    name = getattr(image, "class_name", None)
    if not name:
        return None, None
    return name, names.index(name) if name in names else None


def percent(p: float) -> str:
    """A probability in percent, one decimal; "< 0.1 %" for one that isn't 0 but would read
    as 0.0 %."""
    if 0 < p < 0.0005:
        return "< 0.1 %"
    return f"{p * 100:.1f} %"


class PredictionChart(QWidget):
    """See the module docstring. ``class_clicked(index)``: a bar was clicked."""

    class_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.probabilities: np.ndarray | None = None
        self.names: list[str] = []
        self.true_name: str | None = None
        self.true_index: int | None = None
        self.untrained = False
        self.stale = False
        self.rows: list[int] = []  # the classes drawn, top first (the true class last if lower)
        self.setToolTip("The network's top classes for the image: the softmax of its outputs "
                        "(net.predict). Click a class to see why (Why this prediction)")
        self._layout()

    # ------------------------------------------------------------------ data

    def set_prediction(self, probabilities: np.ndarray | None, names: list[str],
                       true_name: str | None = None, untrained: bool = False) -> None:
        self.probabilities = None if probabilities is None else np.asarray(probabilities)
        self.names = list(names)
        self.true_name = true_name
        self.true_index = names.index(true_name) if true_name in names else None
        self.untrained = untrained
        self.rows = []
        p = self.probabilities
        if p is not None and np.isfinite(p).all():
            order = [int(i) for i in np.argsort(-p, kind="stable")]
            self.rows = order[:TOP]
            if self.true_index is not None and self.true_index not in self.rows:
                self.rows.append(self.true_index)
        self._layout()
        self.update()

    def set_stale(self, stale: bool) -> None:
        if stale != self.stale:
            self.stale = stale
            self.update()

    def clear(self) -> None:
        self.set_prediction(None, [])

    @property
    def top(self) -> int | None:
        return self.rows[0] if self.rows else None

    def lines(self) -> list[str]:
        """What the chart says, line by line, as plain text (also its accessible text)."""
        p = self.probabilities
        if p is None:
            return []
        out = []
        if self.untrained:
            out.append(f"{UNTRAINED} (the weights are random)")
        if not self.rows:
            out.append("Prediction: none — the output holds inf or NaN")
            return out
        top = self.rows[0]
        out.append(f"Prediction: {self.names[top]} ({percent(p[top])})")
        if self.true_name is not None:
            if self.true_index is None:
                out.append(f"true class: {self.true_name} (not one of this design's classes)")
            else:
                rank = int((p > p[self.true_index]).sum()) + 1
                mark = "✓" if self.true_index == top else f"✗ (ranked {rank})"
                out.append(f"true class: {self.true_name} {mark}")
        for i in self.rows:
            out.append(f"{self.names[i]}: {percent(p[i])}"
                       + (" (true class)" if i == self.true_index else ""))
        return out

    # ------------------------------------------------------------------ drawing

    def _metrics(self) -> tuple[QFontMetrics, int]:
        fm = self.fontMetrics()
        return fm, fm.height() + 6

    def _head_lines(self) -> int:
        if self.probabilities is None:
            return 0
        return 1 + int(self.untrained) + int(self.true_name is not None and bool(self.rows))

    def _layout(self) -> None:
        fm, row = self._metrics()
        height = 0 if self.probabilities is None else (
            self._head_lines() * (fm.height() + 2) + len(self.rows) * row + 6)
        self.setFixedHeight(height)
        self.setAccessibleDescription("\n".join(self.lines()))
        self.setVisible(self.probabilities is not None)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(240, self.height())

    def _name_width(self, fm: QFontMetrics) -> int:
        widest = max((fm.horizontalAdvance(self.names[i]) for i in self.rows), default=0)
        return min(widest + 8, max(60, self.width() // 3))

    def row_rect(self, position: int) -> QRectF:
        """Where the ``position``-th row (0: the top class) is drawn."""
        fm, row = self._metrics()
        top = self._head_lines() * (fm.height() + 2) + 4 + position * row
        return QRectF(0, top, self.width(), row)

    def class_at(self, y: float) -> int | None:
        for position, index in enumerate(self.rows):
            r = self.row_rect(position)
            if r.top() <= y < r.bottom():
                return index
        return None

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        p = self.probabilities
        if p is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm, row = self._metrics()
        text_colour = self.palette().color(self.foregroundRole())
        if self.stale:
            text_colour = MUTED
        y = 0
        bold = QFont(self.font())
        bold.setBold(True)
        line_h = fm.height() + 2
        if self.untrained:
            painter.setFont(bold)
            painter.setPen(QColor(176, 96, 0))
            painter.drawText(QRectF(0, y, self.width(), line_h), Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(f"⚠ {UNTRAINED}", Qt.TextElideMode.ElideRight,
                                           self.width()))
            y += line_h
        painter.setFont(bold)
        painter.setPen(text_colour)
        head = self.lines()[int(self.untrained)]
        if self.stale:
            head += " (before your last change)"
        painter.drawText(QRectF(0, y, self.width(), line_h), Qt.AlignmentFlag.AlignVCenter,
                         QFontMetrics(bold).elidedText(head, Qt.TextElideMode.ElideRight,
                                                       self.width()))
        y += line_h
        painter.setFont(self.font())
        if self.true_name is not None and self.rows:
            right = self.true_index == self.rows[0]
            painter.setPen(QColor(*(TRUE_RGB if right else WRONG_RGB)))
            painter.drawText(QRectF(0, y, self.width(), line_h), Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(self.lines()[1 + int(self.untrained)],
                                           Qt.TextElideMode.ElideRight, self.width()))
        name_w = self._name_width(fm)
        value_w = fm.horizontalAdvance("100.0 %") + 6
        bar_w = max(10, self.width() - name_w - value_w - 4)
        for position, i in enumerate(self.rows):
            r = self.row_rect(position)
            if position == TOP:  # the true class, below the top five
                painter.setPen(QPen(MUTED, 1, Qt.PenStyle.DotLine))
                painter.drawLine(r.topLeft(), r.topRight())
            is_true = i == self.true_index
            painter.setPen(QColor(*TRUE_RGB) if is_true and not self.stale else text_colour)
            font = QFont(self.font())
            font.setBold(is_true)
            painter.setFont(font)
            painter.drawText(QRectF(0, r.top(), name_w - 6, r.height()),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                             QFontMetrics(font).elidedText(self.names[i],
                                                           Qt.TextElideMode.ElideRight,
                                                           name_w - 6))
            track = QRectF(name_w, r.top() + 3, bar_w, r.height() - 6)
            painter.fillRect(track, QColor(128, 128, 128, 40))
            filled = QRectF(track.left(), track.top(), bar_w * float(np.clip(p[i], 0, 1)),
                            track.height())
            colour = QColor(*(TRUE_RGB if is_true else BAR_RGB))
            if self.stale or self.untrained:
                colour.setAlpha(110)
            painter.fillRect(filled, colour)
            if is_true:
                painter.setPen(QPen(QColor(*TRUE_RGB), 2))
                painter.drawRect(track)
            painter.setPen(text_colour)
            painter.setFont(self.font())
            painter.drawText(QRectF(name_w + bar_w + 4, r.top(), value_w, r.height()),
                             Qt.AlignmentFlag.AlignVCenter, percent(p[i]))
        painter.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        index = self.class_at(event.position().y())
        if index is not None and event.button() == Qt.MouseButton.LeftButton:
            self.class_clicked.emit(index)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        index = self.class_at(event.position().y())
        self.setCursor(Qt.CursorShape.PointingHandCursor if index is not None
                       else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(event)


class ExplainView(QWidget):
    """Why this prediction: Saliency, Grad-CAM and Occlusion tabs over one picture of the
    network's input with a heat map on it; the class explained (the predicted one unless the
    user picks another), Grad-CAM's layer, a progress bar and Cancel for the work on the
    worker. Made only while the view is shown; kept with the run's result."""

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.kind = SALIENCY
        self.class_choice = PREDICTED  # or a class index
        self.layer: str | None = None  # None: the default layer
        self.shown: Explanation | None = None
        self._result: RunResult | None = None  # the result the combos were filled for
        self._waiting: tuple | None = None  # the key asked for and not answered yet
        self._stopped: tuple | None = None  # the key last stopped (Compute asks again)

        self.tabs = QTabBar()
        self.tabs.setExpanding(False)
        self.tabs.setDocumentMode(True)
        for kind, text in EXPLAIN_KINDS.items():
            self.tabs.addTab(text)
            self.tabs.setTabData(self.tabs.count() - 1, kind)
        self.tabs.setTabToolTip(0, "Saliency: how much each input pixel moves the class's "
                                   "score (|d logit / d input|, largest over the colour "
                                   "channels)")
        self.tabs.setTabToolTip(1, "Grad-CAM: where a layer's maps hold evidence for the class "
                                   "(the maps weighted by the mean gradient of the class's "
                                   "score, ReLU), enlarged to the image")
        self.tabs.setTabToolTip(2, "Occlusion: a grey patch slid over the image; where hiding "
                                   "the pixels lowers the class's probability is red, where "
                                   "it raises it blue (one forward pass per position)")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.classes = QComboBox()
        self.classes.setToolTip("The class to explain: the predicted one, or any other")
        self.classes.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.classes.setMinimumContentsLength(10)
        self.classes.activated.connect(self._class_chosen)
        self.layers = QComboBox()
        self.layers.setToolTip("The layer whose maps Grad-CAM weighs (by default the last with "
                               "more than one position)")
        self.layers.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layers.setMinimumContentsLength(6)
        self.layers.activated.connect(self._layer_chosen)
        self.layer_label = QLabel("at")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setFormat("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop making this explanation")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(controller.cancel_explanation)
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip("Make this explanation again")
        self.compute_button.clicked.connect(self._compute_again)
        self.compute_button.hide()

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(None)
        self.view = self.plots.addViewBox(row=0, col=0, lockAspect=True, invertY=True,
                                          enableMenu=False)
        self.view.setMouseEnabled(x=False, y=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # the caption, or (while an explanation is being made) the progress bar and Cancel
        self.bottom = QStackedWidget()
        said = QWidget()
        row = QHBoxLayout(said)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.caption, 1)
        row.addWidget(self.compute_button, 0, Qt.AlignmentFlag.AlignTop)
        working = QWidget()
        row = QHBoxLayout(working)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        self.bottom.addWidget(said)
        self.bottom.addWidget(working)
        self.bottom.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Maximum)
        self._working_page = working
        self._progress_timer = QTimer(self, singleShot=True, interval=PROGRESS_AFTER_MS)
        self._progress_timer.timeout.connect(self._show_working)

        choose = QGridLayout()
        choose.setContentsMargins(0, 0, 0, 0)
        choose.addWidget(QLabel("Class"), 0, 0)
        choose.addWidget(self.classes, 0, 1)
        choose.addWidget(self.layer_label, 0, 2)
        choose.addWidget(self.layers, 0, 3)
        choose.setColumnStretch(1, 3)
        choose.setColumnStretch(3, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(3)
        layout.addWidget(self.tabs)
        layout.addLayout(choose)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.bottom)
        self._show_layer_choice()

        controller.finished.connect(lambda _: self.refresh())
        controller.reset.connect(self._reset)
        controller.explained.connect(self._explained)
        controller.explain_stopped.connect(self._stopped_by)
        controller.explain_progress.connect(self._progress)
        controller.busy_changed.connect(self._busy)
        controller.stale_changed.connect(lambda _: self._caption_for(self.shown))
        controller.image_changed.connect(self._image_changed)
        controller.document.refreshed.connect(self._names_changed)

    # ------------------------------------------------------------------ choices

    def set_kind(self, kind: str) -> None:
        for i in range(self.tabs.count()):
            if self.tabs.tabData(i) == kind:
                self.tabs.setCurrentIndex(i)  # (refreshes through _tab_changed)
                return
        raise ValueError(f"unknown explanation {kind!r}")

    def set_class(self, index: int) -> None:
        """Explain class ``index`` (PREDICTED: whatever the network predicts)."""
        self.class_choice = int(index)
        self._select_class_item()
        self.refresh()

    def set_layer(self, layer: str | None) -> None:
        self.layer = layer
        self._select_layer_item()
        self.refresh()

    def _tab_changed(self, index: int) -> None:
        self.kind = self.tabs.tabData(index) or SALIENCY
        self._show_layer_choice()
        self.refresh()

    def _class_chosen(self, item: int) -> None:
        self.set_class(self.classes.itemData(item))

    def _layer_chosen(self, item: int) -> None:
        self.set_layer(self.layers.itemData(item))

    def _show_layer_choice(self) -> None:
        cam = self.kind == GRAD_CAM
        self.layers.setVisible(cam)
        self.layer_label.setVisible(cam)

    def _compute_again(self) -> None:
        self._stopped = None
        self.refresh()

    # ------------------------------------------------------------------ what is explained

    def names(self, result: RunResult | None = None) -> list[str]:
        """The class names for the result's output: the open design's where they fit (they
        change when a training run names them), else the run's design's, else class 0, …"""
        result = result or self.controller.result
        if result is None or result.probabilities is None:
            return []
        count = len(result.probabilities)
        live = self.controller.document.design.classes
        return class_names(live if live is not None and len(live) == count
                           else result.design.classes, count)

    def class_index(self) -> int | None:
        result = self.controller.result
        if result is None or result.probabilities is None:
            return None
        if self.class_choice != PREDICTED and self.class_choice < len(result.probabilities):
            return self.class_choice
        return result.top_class

    def _fill_choices(self, result: RunResult) -> None:
        """The class and layer combos for a new result (keeping the choices that still fit)."""
        self._result = result
        names = self.names(result)
        p = result.probabilities
        self.classes.clear()
        top = result.top_class
        self.classes.addItem(f"Predicted: {names[top]}" if top is not None else "Predicted",
                             PREDICTED)
        for i, name in enumerate(names):
            self.classes.addItem(f"{name} — {percent(p[i])}" if np.isfinite(p[i]) else name, i)
        if self.class_choice != PREDICTED and self.class_choice >= len(names):
            self.class_choice = PREDICTED
        self._select_class_item()
        layers, default = self.controller.cam_layers(result)
        self.layers.clear()
        for layer in layers:
            shape = result.network.infos[layer].shape
            self.layers.addItem(f"{layer} ({'×'.join(str(s) for s in shape[1:])})", layer)
            if layer == default:
                self.layers.setItemData(self.layers.count() - 1,
                                        "The default: the last layer with maps of more than "
                                        "one position", Qt.ItemDataRole.ToolTipRole)
        if self.layer not in layers:
            self.layer = None
        self._select_layer_item(default)

    def _select_class_item(self) -> None:
        item = self.classes.findData(self.class_choice)
        self.classes.setCurrentIndex(max(0, item))

    def _select_layer_item(self, default: str | None = None) -> None:
        if default is None and self._result is not None:
            default = self.controller.cam_layers(self._result)[1]
        item = self.layers.findData(self.layer or default)
        self.layers.setCurrentIndex(max(0, item))

    def _names_changed(self) -> None:
        result = self.controller.result
        if result is not None and result is self._result and result.probabilities is not None:
            names = self.names(result)
            for i, name in enumerate(names):
                item = self.classes.findData(i)
                if item >= 0:
                    p = result.probabilities[i]
                    self.classes.setItemText(item, f"{name} — {percent(p)}"
                                             if np.isfinite(p) else name)
            top = result.top_class
            if top is not None:
                self.classes.setItemText(0, f"Predicted: {names[top]}")
            self._caption_for(self.shown)

    # ------------------------------------------------------------------ making it

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        """Show the explanation for the current choices: from the result's cache, or ask the
        controller for it (only while this view is shown: occlusion is much work)."""
        result = self.controller.result
        if result is not self._result:
            if result is not None and result.probabilities is not None:
                self._fill_choices(result)
            else:
                self._result = result
                self.classes.clear()
                self.layers.clear()
        if result is None:
            self._blank("Run the design on an image (F5): then see here which pixels and "
                        "regions its prediction rests on.")
            return
        if result.probabilities is None:
            out = result.analysis.output
            shape = result.network.infos[out].shape if out in result.network.infos else ()
            dims = "×".join(str(s) for s in shape)
            self._blank(f"Nothing to explain: the output ({html.escape(str(out))}) is [{dims}], "
                        f"not one score per class (end the design with Flatten and Linear, two "
                        f"outputs or more).")
            return
        c = self.class_index()
        if c is None:
            self._blank("Nothing to explain: the output holds inf or NaN, so there is no "
                        "predicted class.")
            return
        layer = self.layer if self.kind == GRAD_CAM else None
        if self.kind == GRAD_CAM and not self.controller.cam_layers(result)[0]:
            self._blank("Grad-CAM needs a layer with maps before the output; this design has "
                        "none. Try Saliency or Occlusion.")
            return
        cached = self.controller.explanation(self.kind, c, layer)
        if cached is not None:
            self._show(cached)
            return
        if not self.isVisible():
            return
        key = self.controller._explain_key(result, self.kind, c, layer)
        if self._stopped == key:
            return  # stopped by the user: Compute asks again
        self._stopped = None
        self.compute_button.hide()
        made = self.controller.explain(self.kind, c, layer)
        if made is not None:
            self._show(made)
            return
        self._waiting = key
        self.shown = None
        show_rgb(self.image, heat_picture(result.input_rgb, np.zeros((1, 1))))
        self._fit(result)
        waiting = self.controller._run_pending()
        self.caption.setText(f"<i>{'Waiting for the run to end…' if waiting else 'Working out'}"
                             f"{'' if waiting else ' ' + self._what(self.kind, c, key[2]) + '…'}"
                             f"</i>")

    def _what(self, kind: str, c: int, layer: str | None) -> str:
        name = html.escape(self.names()[c]) if c < len(self.names()) else str(c)
        if kind == GRAD_CAM:
            return f"Grad-CAM at {html.escape(str(layer))} for “{name}”"
        return f"{EXPLAIN_KINDS[kind]} for “{name}”"

    def _blank(self, text: str) -> None:
        self.shown = None
        self._waiting = None
        self.image.clear()
        self.caption.setText(text)

    def _reset(self) -> None:
        self._result = None
        self._stopped = None
        self.classes.clear()
        self.layers.clear()
        self.refresh()

    def _image_changed(self) -> None:
        self._stopped = None
        if self.class_choice != PREDICTED:
            self.class_choice = PREDICTED  # a new image: explain what it is predicted to be

    def _explained(self, e: Explanation) -> None:
        if e.key == self._waiting:
            self._waiting = None
        if e.result is self.controller.result and self._current_key() == e.key:
            self._show(e)

    def _current_key(self) -> tuple | None:
        result = self.controller.result
        c = self.class_index()
        if result is None or c is None:
            return None
        return self.controller._explain_key(result, self.kind, c,
                                            self.layer if self.kind == GRAD_CAM else None)

    def _stopped_by(self, key, why: str) -> None:
        if key != self._waiting:
            return
        self._waiting = None
        if self.controller._run_pending():
            return  # a new run: asked again when it ends
        self._stopped = key
        self.compute_button.show()
        self._set_bar(0, "")
        self.caption.setText(f"<span style='color:#c82020'>Can't explain: {html.escape(why)}"
                             f"</span>" if why else "Stopped. Press Compute to make it again.")

    def _progress(self, fraction: float, text: str) -> None:
        self._set_bar(round(fraction * 1000), f"{text} — {fraction * 100:.0f}%")

    def _set_bar(self, value: int, text: str) -> None:
        self.bar.setUpdatesEnabled(False)
        self.bar.setValue(value)
        self.bar.setFormat(text)
        self.bar.setUpdatesEnabled(True)

    def _busy(self, busy: bool) -> None:
        explaining_now = busy and self.controller.explaining
        self.cancel_button.setEnabled(explaining_now)
        if explaining_now:
            if not self._progress_timer.isActive() and not self.working:
                self._progress_timer.start()
        else:
            self._progress_timer.stop()
            self._set_bar(0, "")
            self.bottom.setCurrentIndex(0)

    def _show_working(self) -> None:
        if self.controller.explaining:
            self.bottom.setCurrentWidget(self._working_page)

    @property
    def working(self) -> bool:
        """The progress bar and Cancel are in view (an explanation is taking a while)."""
        return self.bottom.currentWidget() is self._working_page

    def _fit(self, result: RunResult) -> None:
        _, h, w = result.x.shape
        s = explain_scale(h, w)
        self.image.setRect(QRectF(0, 0, w * s, h * s))
        self.view.setRange(QRectF(0, 0, w * s, h * s), padding=0.02)

    def _show(self, e: Explanation) -> None:
        self.shown = e
        self._waiting = None
        self.compute_button.hide()
        show_rgb(self.image, e.picture)
        self._fit(e.result)
        self._caption_for(e)

    def _caption_for(self, e: Explanation | None) -> None:
        if e is None or e is not self.shown:
            return
        names = self.names(e.result)
        name = html.escape(names[e.class_index])
        p = e.result.probabilities[e.class_index]
        took = f"{e.seconds * 1000:.0f} ms" if e.seconds < 1 else f"{e.seconds:.1f} s"
        top = e.result.top_class
        head = (f"<b>{name}</b> ({percent(p)}"
                + (", predicted)" if e.class_index == top else
                   f"; predicted: {html.escape(names[top])})" if top is not None else ")"))
        if e.kind == SALIENCY:
            short = f"|d score / d pixel|, largest {e.peak:.3g}"
            body = (f"Saliency: how much each input pixel moves the score (logit) of {name}: "
                    f"|d logit / d input|, the largest over the colour channels; the brightest "
                    f"are the top 0.5 % of pixels, up to {e.peak:.3g}.")
        elif e.kind == GRAD_CAM:
            shape = e.result.network.infos[e.layer].shape
            short = (f"{html.escape(e.layer)}'s {shape[1]}×{shape[2]} maps, peak {e.peak:.3g}"
                     if e.peak > 0 else f"zero everywhere at {html.escape(e.layer)}")
            body = (f"Grad-CAM at {html.escape(e.layer)} ({num(shape[0])} maps of "
                    f"{shape[1]}×{shape[2]}, enlarged to the image): where its maps hold "
                    f"evidence for {name} (each map weighted by the mean gradient of the "
                    f"class's score, summed, negative parts cut off); the brightest is "
                    f"{e.peak:.3g}."
                    + (" Zero everywhere: no part of these maps speaks for this class; try "
                       "an earlier layer." if e.peak <= 0 else ""))
        else:
            (ph, pw), _, rows, cols = explaining.occlusion_geometry(e.result.network)
            short = (f"<span style='color:#d03000'>red</span>: hiding lowers it (up to "
                     f"{e.peak * 100:.1f} percentage points), "
                     f"<span style='color:#0060d0'>blue</span>: raises it")
            body = (f"Occlusion: a grey {ph}×{pw} patch put at {num(len(rows) * len(cols))} "
                    f"places in turn, one forward pass each. Red: hiding the pixels there "
                    f"lowers the probability of {name} (by up to {e.peak * 100:.1f} "
                    f"percentage points at the strongest); blue: raises it.")
        notes = []
        if e.result.untrained:
            notes.append(f"<span style='color:#b06000'>{UNTRAINED} (random weights), and "
                         f"so do these maps.</span>")
        if self.controller.stale and e.result is self.controller.result:
            notes.append("<span style='color:#a05a00'>From before your last change: run "
                         "again (F5).</span>")
        self.caption.setText(f"{head}: {short}. <i>{took}</i>"
                             + ("<br>" + " ".join(notes) if notes else ""))
        tip = f"{body} Made in {took}."
        self.caption.setToolTip(tip)
        self.plots.setToolTip(tip)
