"""The Run panel: choose an image and weights, run (with progress and Cancel), see the image as
the network sees it, the receptive field of the picked unit layer by layer, its effective field
(the input gradient) as a heat map, the first convolution's filters as small images in rows
that fill the panel's width, and the network's prediction (top classes with their
probabilities). ``pictures`` holds the image (as loaded and as the network sees it) in one tab
and why this prediction (saliency, Grad-CAM, occlusion) in another; the window places it
beside the activation maps."""
from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRect, QRectF, QSize, QStandardPaths, Qt, Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFileDialog, QGridLayout,
                               QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy,
                               QTabWidget, QToolTip, QVBoxLayout, QWidget)

from designer.app.run.activations import show_rgb
from designer.app.messages import WRITE_ERRORS, write_failure
from designer.app.run.pictures import LUT, display_rgb, filter_gap, filter_images
from designer.app.run.prediction import PREDICTED, ExplainView, PredictionChart
from designer.app.run.controller import (FILE, MAX_FILTERS, SCALINGS, TRAINED, WEIGHT_MODE_HELP,
                                         WEIGHT_MODES, GradientResult, RunController, RunResult)
from designer.core.problems import num
from designer.core.unit_field import UnitWindow, field_path
from designer.engine.weights import WeightsError
from designer.io.images import ImageError, supported_formats
from designer.io.samples import sample_images

#: one colour per layer on the field's path, from the input side outward
PATH_COLOURS = [(255, 170, 0), (0, 200, 255), (255, 80, 200), (120, 220, 60), (150, 110, 255)]
MAX_DRAWN = 5  # windows drawn on the image: the picked unit's and up to four on the way there
HEAT_ALPHA = 1.0  # the heat map's own alpha channel does the blending
#: filter thumbnails: at most this many pixels on their longer side (larger ones only when a
#: kernel pixel would be smaller than one screen pixel's worth), and the grid at most this tall
#: where smaller thumbnails can keep it so
THUMB_MAX, THUMBS_MAX_HEIGHT = 28, 160


class FilterGrid(QWidget):
    """Filters (out, in, kh, kw) as small images, in as many columns as the width holds (at
    least a square grid's), each kernel pixel a whole number of screen pixels; as tall as its
    rows, so nothing is cut off (a parent that is too short scrolls). Hover a filter for its
    number."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.weight: np.ndarray | None = None
        self.image: np.ndarray | None = None  # the grid as drawn (rows, cols, 3) uint8
        self._qimage: QImage | None = None
        self._layout: tuple[int, int] = (0, 0)  # (columns, screen pixels per kernel pixel)

    def set_weight(self, weight: np.ndarray | None) -> None:
        self.weight = weight
        self._layout = (0, 0)
        self.image = self._qimage = None
        self._arrange()
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self.set_weight(None)

    def arrangement(self, width: int) -> tuple[int, int, int]:
        """(columns, rows, scale) of the grid in ``width`` pixels: the largest scale whose
        thumbnails are at most ``THUMB_MAX`` pixels, whose columns make at least a square grid
        and whose height is at most ``THUMBS_MAX_HEIGHT``; failing that, scale 1."""
        if self.weight is None:
            return 0, 0, 0
        k, _, kh, kw = self.weight.shape
        gap = filter_gap(kh, kw)
        square = min(k, math.ceil(math.sqrt(k)))
        width = max(1, width)
        top = max(1, THUMB_MAX // max(kh, kw))
        for scale in range(top, 0, -1):
            cols = min(k, (width // scale - gap) // (kw + gap))
            rows = math.ceil(k / max(cols, 1))
            if cols >= square and (rows * (kh + gap) + gap) * scale <= THUMBS_MAX_HEIGHT:
                return cols, rows, scale
        cols = max(1, min(k, (width - gap) // (kw + gap)))
        return cols, math.ceil(k / cols), 1

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt's name)
        if self.weight is None:
            return 0
        _, rows, scale = self.arrangement(width)
        k, _, kh, kw = self.weight.shape
        return (rows * (kh + filter_gap(kh, kw)) + filter_gap(kh, kw)) * scale

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt's name)
        return True

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        width = max(self.width(), 200)
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(0, self.heightForWidth(self.width()) if self.width() > 0 else 0)

    def _arrange(self) -> None:
        if self.weight is None:
            return
        cols, _, scale = self.arrangement(self.width())
        if (cols, scale) == self._layout and self.image is not None:
            return
        self._layout = (cols, scale)
        self.image = np.ascontiguousarray(filter_images(self.weight, cols))
        h, w = self.image.shape[:2]
        self._qimage = QImage(self.image.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        if self.height() != self.heightForWidth(self.width()):
            self.updateGeometry()

    def drawn_rect(self) -> QRect:
        """Where the grid is painted in the widget."""
        if self.image is None:
            return QRect()
        scale = self._layout[1]
        h, w = self.image.shape[:2]
        return QRect(0, 0, w * scale, h * scale)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._arrange()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self._qimage is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(self.drawn_rect(), self._qimage)
        painter.end()

    def filter_at(self, x: float, y: float) -> int | None:
        """The filter under a point of the widget, or None."""
        if self.weight is None or self.image is None:
            return None
        k, _, kh, kw = self.weight.shape
        cols, scale = self._layout
        gap = filter_gap(kh, kw)
        u, v = int(x // scale) - gap, int(y // scale) - gap
        if u < 0 or v < 0:
            return None
        (col, du), (row, dv) = divmod(u, kw + gap), divmod(v, kh + gap)
        index = row * cols + col
        return index if du < kw and dv < kh and col < cols and index < k else None

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            index = self.filter_at(event.pos().x(), event.pos().y())
            if index is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), f"filter {index}", self)
            return True
        return super().event(event)


class RunPanel(QWidget):
    """See the module docstring."""

    message = Signal(str, int)  # status bar text, milliseconds

    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.windows: list[UnitWindow] = []
        self.pick: tuple[str, tuple[int, ...]] | None = None
        self.gradient: GradientResult | None = None

        self.samples = QComboBox()
        self.samples.addItem("Sample images…")
        for sample in sample_images():
            self.samples.addItem(sample.title, str(sample.path))
            self.samples.setItemData(self.samples.count() - 1, sample.description,
                                     Qt.ItemDataRole.ToolTipRole)
        self.samples.activated.connect(self._sample_chosen)
        self.open_image = QPushButton("Open image…")
        self.open_image.setToolTip("Load an image file (you can also drop one on the window)")
        self.open_image.clicked.connect(self.open_image_dialog)
        self.weights = QComboBox()
        for mode, text in WEIGHT_MODES.items():
            self.weights.addItem(text, mode)
            self.weights.setItemData(self.weights.count() - 1, WEIGHT_MODE_HELP[mode],
                                     Qt.ItemDataRole.ToolTipRole)
        self.weights.currentIndexChanged.connect(self._weights_tooltip)
        self.weights.activated.connect(self._weights_chosen)
        self.load_weights_button = QPushButton("Load…")
        self.load_weights_button.setToolTip("Load weights (.npz, keys like conv1.weight)")
        self.load_weights_button.clicked.connect(self.load_weights_dialog)
        self.save_weights_button = QPushButton("Save…")
        self.save_weights_button.setToolTip("Save the weights of the last run (.npz)")
        self.save_weights_button.clicked.connect(self.save_weights_dialog)
        self.scaling = QComboBox()
        self.scaling.addItems(list(SCALINGS))
        self.scaling.setToolTip("How pixel values become the network's input values")
        self.scaling.currentTextChanged.connect(controller.set_scaling)
        self.run_button = QPushButton("▶ Run")
        self.run_button.setToolTip("Run the design on the image (F5)")
        self.run_button.clicked.connect(controller.run)
        self.auto = QCheckBox("Auto re-run")
        self.auto.setChecked(controller.auto_run)
        self.auto.setToolTip("Small designs re-run by themselves after every change; large ones "
                             "(over 2 G mult-adds) wait for Run")
        self.auto.toggled.connect(controller.set_auto_run)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setFormat("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(controller.cancel)
        self.cancel_button.setEnabled(False)
        self.weights_note = QLabel()
        self.weights_note.setWordWrap(True)
        self.weights_note.setTextFormat(Qt.TextFormat.RichText)
        self.weights_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.weights_note.setToolTip("The weights the design runs with. Trained weights ship "
                                     "for LeNet-5, the CIFAR-10 ConvNet and Tiny VGG; with "
                                     "random weights, activations below the first layer and "
                                     "predictions mean nothing")
        self.status = QLabel("Pick a sample image or open one, then Run (F5).")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        for combo in (self.samples, self.weights, self.scaling):  # the panel may be narrow
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(14)
        controls = QGridLayout()
        controls.addWidget(QLabel("Image"), 0, 0)
        controls.addWidget(self.samples, 0, 1)
        controls.addWidget(self.open_image, 0, 2, 1, 2)
        self.open_image.setText("Open…")
        controls.addWidget(QLabel("Weights"), 1, 0)
        controls.addWidget(self.weights, 1, 1)
        controls.addWidget(self.load_weights_button, 1, 2)
        controls.addWidget(self.save_weights_button, 1, 3)
        controls.addWidget(QLabel("Scaling"), 2, 0)
        controls.addWidget(self.scaling, 2, 1)
        controls.addWidget(self.auto, 2, 2, 1, 2)
        controls.setColumnStretch(1, 1)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.bar, 1)
        run_row.addWidget(self.cancel_button)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(None)
        self.original_label = self.plots.addLabel("Image", row=0, col=0)
        self.input_label = self.plots.addLabel("Network input", row=0, col=1)
        self.original_view = self.plots.addViewBox(row=1, col=0, lockAspect=True, invertY=True,
                                                   enableMenu=False)
        self.input_view = self.plots.addViewBox(row=1, col=1, lockAspect=True, invertY=True,
                                                enableMenu=False)
        self.plots.ci.layout.setColumnStretchFactor(1, 2)
        self.original = pg.ImageItem(axisOrder="row-major")
        self.original_view.addItem(self.original)
        self.seen = pg.ImageItem(axisOrder="row-major")
        self.input_view.addItem(self.seen)
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.heat.setZValue(5)
        self.heat.setOpacity(HEAT_ALPHA)
        self.input_view.addItem(self.heat)
        self.frame = pg.QtWidgets.QGraphicsRectItem()  # the image's edge: outside it is padding
        self.frame.setPen(pg.mkPen((150, 150, 150), width=1, cosmetic=True))
        self.input_view.addItem(self.frame)
        self.rect_items: list = []
        self.show_heat = QCheckBox("Effective field (input gradient) as a heat map")
        self.show_heat.setChecked(True)
        self.show_heat.setToolTip("How strongly each input pixel moves the picked unit: the "
                                  "gradient of the unit with respect to the input, summed over "
                                  "colour channels")
        self.show_heat.toggled.connect(self._draw_heat)
        self.field_text = QLabel("Click a unit in an activation map to see where it looks.")
        self.field_text.setWordWrap(True)
        self.field_text.setTextFormat(Qt.TextFormat.RichText)
        self.field_text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.prediction = PredictionChart()
        self.prediction.class_clicked.connect(self.explain_class)
        self.why_button = QPushButton("Why this prediction?")
        self.why_button.setToolTip("Saliency, Grad-CAM and occlusion for the predicted class "
                                   "(or click a class above), beside the activation maps")
        self.why_button.clicked.connect(lambda: self.explain_class(PREDICTED))
        self.why_button.hide()
        self.why = ExplainView(controller)
        self.pictures = QTabWidget()
        self.pictures.setDocumentMode(True)
        self.pictures.addTab(self.plots, "Image")
        self.pictures.addTab(self.why, "Why this prediction")
        self.pictures.setTabToolTip(0, "The image as loaded and as the network sees it, with the "
                                       "picked unit's receptive field")
        self.pictures.setTabToolTip(1, "Which pixels and regions the prediction rests on: "
                                       "saliency, Grad-CAM and occlusion")

        self.filters_label = QLabel("First convolution's filters: run to see them.")
        self.filters_label.setWordWrap(True)
        self.filters_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.filters = FilterGrid()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.weights_note)
        layout.addLayout(run_row)
        layout.addWidget(self.status)
        layout.addWidget(self.prediction)
        why_row = QHBoxLayout()
        why_row.addWidget(self.why_button)
        why_row.addStretch(1)
        layout.addLayout(why_row)
        layout.addWidget(self.show_heat)
        layout.addWidget(self.field_text)
        layout.addWidget(self.filters_label)
        layout.addWidget(self.filters)
        layout.addStretch(1)
        # ``pictures`` (the image as given and as the network sees it, with the fields drawn on
        # it; why this prediction) is placed by the window beside the activation maps, where
        # the clicks happen

        controller.image_changed.connect(self._show_image)
        controller.busy_changed.connect(self._busy)
        controller.progress.connect(self._progress)
        controller.finished.connect(self._finished)
        controller.failed.connect(self._failed)
        controller.cancelled.connect(lambda: self._say("Cancelled."))
        controller.stale_changed.connect(self._stale)
        controller.gradient_ready.connect(self._gradient_ready)
        controller.settings_changed.connect(self._sync_controls)
        controller.settings_changed.connect(self._explain_waiting)
        controller.reset.connect(self._reset)
        controller.pick_cleared.connect(self.clear_unit)
        controller.weights_note_changed.connect(self._show_weights_note)
        controller.document.refreshed.connect(self._show_prediction)
        self._sync_controls()
        self._show_weights_note(controller.weights_note())
        self._weights_tooltip(self.weights.currentIndex())

    # ------------------------------------------------------------------ choosing

    def _sample_chosen(self, index: int) -> None:
        path = self.samples.itemData(index)
        if path:
            self.load_image(path)

    def open_image_dialog(self) -> None:
        patterns = " ".join(f"*.{f}" for f in supported_formats())
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "",
                                              f"Images ({patterns});;All files (*)")
        if path:
            self.load_image(path)

    def load_image(self, path: str | Path) -> bool:
        try:
            self.controller.load_image(path)
        except ImageError as exc:
            self._say(f"Can't use this image: {exc}", error=True)
            return False
        except MemoryError:
            self._say(f"Can't use this image: {path}: not enough memory to decode it",
                      error=True)
            return False
        except (OSError, ValueError) as exc:  # in case the reader lets one by
            self._say(f"Can't use this image: {path}: {exc}", error=True)
            return False
        return True

    def _weights_chosen(self, index: int) -> None:
        mode = self.weights.itemData(index)
        if mode == FILE and self.controller.weights_label is None:
            self.load_weights_dialog()
            return
        self.controller.set_weights_mode(mode)

    def load_weights_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load weights", "",
                                              "Weights (*.npz);;All files (*)")
        if path:
            try:
                self.controller.load_weights(path)
            except WeightsError as exc:
                self._say(f"Can't use these weights: {exc}", error=True)
            except MemoryError:
                self._say(f"Can't use these weights: {path}: not enough memory to read them",
                          error=True)
            except (OSError, ValueError) as exc:  # in case the reader lets one by
                self._say(f"Can't use these weights: {path}: {exc}", error=True)
        self._sync_controls()

    def save_weights_dialog(self) -> None:
        result = self.controller.result
        if result is None:
            self._say("Run first: the weights are made when the design runs.", error=True)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save weights",
                                              suggested_weights_path(self.controller.document),
                                              "Weights (*.npz)")
        if path:
            try:
                result.network.save_weights(path)
            except WeightsError as exc:
                self._say(f"Can't save the weights: {exc}", error=True)
            except WRITE_ERRORS as exc:
                self._say(f"Can't save the weights: {write_failure(exc, path)}", error=True)
            else:
                self.message.emit(f"Saved the weights to {path}", 4000)

    def _weights_tooltip(self, index: int) -> None:
        self.weights.setToolTip(f"{self.weights.itemText(index)}: "
                                f"{self.weights.itemData(index, Qt.ItemDataRole.ToolTipRole)}")

    def _sync_controls(self) -> None:
        c = self.controller
        self.weights.setCurrentIndex(self.weights.findData(c.weights_mode))
        self.scaling.setCurrentText(c.scaling)
        if c.weights_label is not None:
            self.weights.setItemText(self.weights.findData(FILE), f"From {c.weights_label}")
        self._weights_tooltip(self.weights.currentIndex())

    def _show_weights_note(self, note: str) -> None:
        """Which weights are in use, under the choice; the trained model's name in the choice."""
        head, _, rest = note.partition(": ")
        self.weights_note.setText(f"<b>{html.escape(head)}:</b> {html.escape(rest)}" if rest
                                  else html.escape(note))
        model = self.controller.trained
        self.weights.setItemText(self.weights.findData(TRAINED),
                                 f"Trained on {model.data.removeprefix('builtin:')}"
                                 if model is not None else "Trained (none here)")

    # ------------------------------------------------------------------ running

    def _busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        if busy and self.controller.running:
            self._say("Running… (Cancel stops it; the maps shown stay as they are until it ends)")
        elif not busy:
            self._set_bar(0, "")

    def _progress(self, fraction: float, text: str) -> None:
        self._set_bar(round(fraction * 1000), f"{text} — {fraction * 100:.0f}%")

    def _set_bar(self, value: int, text: str) -> None:
        """QProgressBar.setValue repaints the bar there and then; with updates off for the
        change, it is painted with the rest of the window in the next frame instead."""
        self.bar.setUpdatesEnabled(False)
        self.bar.setValue(value)
        self.bar.setFormat(text)
        self.bar.setUpdatesEnabled(True)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color: #c82020" if error else "")
        self.status.setText(text)

    def _failed(self, text: str) -> None:
        self._say(f"Can't run: {text}", error=True)

    def _stale(self, stale: bool) -> None:
        self.prediction.set_stale(stale)
        if stale:
            self.run_button.setStyleSheet("font-weight: bold")
            self._explain_waiting()
        else:
            self.run_button.setStyleSheet("")

    def _explain_waiting(self) -> None:
        """Why the maps are not being brought up to date by themselves."""
        c = self.controller
        if c.busy:
            return
        analysis = c.document.analysis
        if not analysis.valid:
            self._say("The design has errors (see the Problems list): the maps shown are from "
                      "before them. Fix the errors, then Run (F5).")
        elif c.image is None:
            self._say("Pick a sample image or open one, then Run (F5).")
        elif c.stale or c.result is None:
            macs = analysis.totals()["macs"]
            why = ("re-running after edits is off" if not c.auto_run else
                   f"a large design ({macs / 1e9:.1f} G mult-adds) runs only when asked")
            self._say(f"The maps are out of date ({why}): press Run (F5)." if c.result is not None
                      else f"Press Run (F5) to run the design on {c.image.name} ({why}).")

    def _reset(self) -> None:
        """Another design: nothing shown belongs to it any more."""
        self.clear_unit()
        self.seen.clear()
        self.frame.setRect(QRectF())
        self.filters.clear()
        self.filters_label.setText("First convolution's filters: run to see them.")
        self.prediction.clear()
        self.why_button.hide()
        self._say("")
        if self.controller.image is not None:
            self._show_image()

    def _finished(self, result: RunResult) -> None:
        notes = " ".join(f"Note: {n}." for n in result.notes)
        took = f"{result.seconds:.2f} s" if result.seconds >= 1 else f"{result.seconds * 1000:.0f} ms"
        bad = result.nonfinite
        warning = "" if bad is None else f"⚠ {bad.message[:1].upper()}{bad.message[1:]}. "
        self._say(f"{warning}Ran {num(len(result.activations))} layers in {took}. Select layers "
                  f"on the canvas to see their maps. {notes}".strip(), error=bad is not None)
        c, h, w = result.x.shape
        mean, _ = SCALINGS[self.controller.scaling]
        how = "pixels ÷ 255" if mean is None else "ImageNet mean/std"
        self.input_label.setText(_two_lines("Network input", f"{c}×{h}×{w}"))
        name = self.controller.image.name if self.controller.image is not None else "the image"
        self.plots.setToolTip(f"Left: {name} as loaded. Right: what the network sees: "
                              f"{c}×{h}×{w}, {'grey' if c == 1 else 'RGB'}, {how}, values "
                              f"{result.x.min():.2f} … {result.x.max():.2f}. The picked unit's "
                              f"receptive field is drawn on it (dashed where it is padding).")
        show_rgb(self.seen, result.input_rgb)
        self.frame.setRect(QRectF(0, 0, w, h))
        self.input_view.enableAutoRange()
        self._show_filters(result)
        self._show_prediction()
        self.gradient = None
        self.heat.clear()
        if self.pick is not None and self.pick[0] in result.activations:
            self.show_unit(*self.pick)
        else:
            self.clear_unit()

    def _show_image(self) -> None:
        image = self.controller.image
        if image is None:
            return
        self.clear_unit()
        self.prediction.set_stale(True)  # it is of the image before, until the run ends
        index = self.samples.findData(str(image.path)) if image.path is not None else -1
        self.samples.setCurrentIndex(max(index, 0))
        h, w = image.pixels.shape[:2]
        self.original_label.setText(_two_lines(image.name, f"{w}×{h}"))
        show_rgb(self.original, image.pixels)
        self.original_view.enableAutoRange()
        try:
            x = self.controller.network_input()
        except (ImageError, ValueError) as exc:
            self._say(str(exc), error=True)
            return
        c, h, w = x.shape
        self.input_label.setText(_two_lines("Network input", f"{c}×{h}×{w}"))
        self.plots.setToolTip(f"Left: {image.name} as loaded, {image.pixels.shape[1]}×"
                              f"{image.pixels.shape[0]}. Right: what the network sees, "
                              f"{c}×{h}×{w}.")
        show_rgb(self.seen, display_rgb(x))
        self.frame.setRect(QRectF(0, 0, w, h))
        self.input_view.enableAutoRange()
        ih, iw = image.pixels.shape[:2]
        if abs(iw / ih - w / h) > 0.05 * (w / h):
            self._say(f"Note: {image.name} is {iw}×{ih}; it is stretched to {w}×{h} for this "
                      f"design's input, so its proportions change.")
        elif not self.controller.busy:
            self._explain_waiting()

    def _show_filters(self, result: RunResult) -> None:
        node = result.first_conv
        if node is None:
            self.filters_label.setText("First convolution's filters: the design has no "
                                       "convolution.")
            self.filters.clear()
            return
        k, c, kh, kw = result.network.weights[f"{node}.weight"].shape
        names = ""
        if result.classic is not None and result.classic["node"] == node:
            kept = result.classic["names"]
            names = " Classic, in order: " + ", ".join(kept) + (
                "; the rest random." if k > len(kept) else ".")
        self.filters_label.setText(
            f"First convolution's filters ({node}: {num(k)} of {c}×{kh}×{kw}, "
            f"{'as RGB' if c == 3 else 'channels averaged'}, grey = 0"
            f"{f', first {MAX_FILTERS} shown' if k > MAX_FILTERS else ''}).{names}")
        self.filters.set_weight(result.network.weights[f"{node}.weight"][:MAX_FILTERS])

    # ------------------------------------------------------------------ predictions

    def _show_prediction(self) -> None:
        """The last result's top classes, named after the design's classes, the image's true
        class marked where it is known."""
        result = self.controller.result
        if result is None or result.probabilities is None:
            self.prediction.clear()
            self.why_button.hide()
            return
        names = self.why.names(result)
        image = self.controller.image
        self.prediction.set_prediction(result.probabilities, names,
                                       getattr(image, "class_name", None), result.untrained)
        self.prediction.set_stale(self.controller.stale)
        self.why_button.show()

    def explain_class(self, index: int) -> None:
        """Show why the network predicts class ``index`` (PREDICTED: the predicted one): the
        Why this prediction tab, brought into view."""
        self.why.set_class(index)
        self.pictures.setCurrentWidget(self.why)
        dock = self.pictures.parentWidget()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        if dock is not None:
            dock.show()
            dock.raise_()

    # ------------------------------------------------------------------ fields

    def clear_unit(self) -> None:
        self.pick = None
        self.windows = []
        for item in self.rect_items:
            self.input_view.removeItem(item)
        self.rect_items = []
        self.heat.clear()
        self.field_text.setText("Click a unit in an activation map to see where it looks.")

    def show_unit(self, node_id: str, unit: tuple[int, ...]) -> None:
        """Draw the unit's receptive field (and the path's) on the input; ask for its gradient."""
        result = self.controller.result
        if result is None:
            return
        for item in self.rect_items:
            self.input_view.removeItem(item)
        self.rect_items = []
        self.pick = (node_id, tuple(unit))
        self.pictures.setCurrentWidget(self.plots)  # where the field is drawn
        infos = result.analysis.infos_by_id()
        sources = {n: result.design.sources(n) for n in result.design.node_ids}
        _, rows, cols = result.x.shape
        self.windows = field_path(node_id, tuple(unit), sources, infos) if len(unit) == 2 else []
        lines = []
        n = len(self.windows)
        # the picked unit's window, and up to four earlier ones spread from the input side
        earlier = sorted({round(k * (n - 2) / (MAX_DRAWN - 2)) for k in range(MAX_DRAWN - 1)}
                         ) if n > MAX_DRAWN else list(range(n - 1))
        drawn = [i for i in earlier if i < n - 1] + ([n - 1] if n else [])
        if n > len(drawn):
            lines.append(f"<i>{n} windows on the way; {len(drawn)} drawn, from the input "
                         f"side:</i>")
        for order, i in enumerate(drawn):
            w = self.windows[i]
            colour = PATH_COLOURS[order % len(PATH_COLOURS)] if i < n - 1 else (255, 64, 64)
            self._draw_window(w, colour, rows, cols, last=i == n - 1)
            size, jump, start = w.field.size, w.field.jump, w.field.start
            names = ", ".join(w.node_ids)
            padding = " — reaches into the padding" if w.reaches_padding(rows, cols) else ""
            swatch = "#%02x%02x%02x" % colour
            lines.append(f"<span style='color:{swatch}'>■</span> <b>{names}</b> unit "
                         f"({w.unit[0]}, {w.unit[1]}): field {_pair(size)}, jump {_pair(jump)}, "
                         f"start {_pair(start)}; rows {_span(w.top, w.bottom)}, "
                         f"columns {_span(w.left, w.right)}{padding}")
        if not self.windows:
            kind = ("a flat output: every input pixel can reach it, so its field is the whole "
                    "image" if len(unit) == 1 else "no receptive field is known here")
            where = f"unit {unit[0]}" if len(unit) == 1 else f"unit ({unit[0]}, {unit[1]})"
            lines.append(f"<b>{node_id}</b> {where}: {kind}.")
        lines.append("<i>Heat map: the effective field (input gradient), computing…</i>"
                     if self.show_heat.isChecked() else "")
        self.field_text.setText("<br>".join(l for l in lines if l))
        self.gradient = None
        self.heat.clear()
        if self.show_heat.isChecked():
            self.controller.compute_gradient(node_id, tuple(unit))

    def _draw_window(self, w: UnitWindow, colour, rows: int, cols: int, last: bool) -> None:
        """The whole window dashed (the part in the padding shows outside the image's frame),
        the part on the image solid; the unit's own window thicker, with its size beside it."""
        width = 3 if last else 2
        outline = pg.QtWidgets.QGraphicsRectItem(QRectF(w.left, w.top, w.width, w.height))
        outline.setPen(pg.mkPen(colour, width=width, style=Qt.PenStyle.DashLine, cosmetic=True))
        outline.setZValue(10)
        items = [outline]
        inside = w.inside(rows, cols)
        if inside is not None:
            top, left, bottom, right = inside
            solid = pg.QtWidgets.QGraphicsRectItem(QRectF(left, top, right - left, bottom - top))
            solid.setPen(pg.mkPen(colour, width=width, cosmetic=True))
            solid.setZValue(11)
            items.append(solid)
        if last:
            size = w.field.size
            label = pg.TextItem(f"{w.node_ids[-1]} {size[0]}×{size[1]}", color=colour,
                                anchor=(0, 1))
            label.setPos(w.left, w.top)
            label.setZValue(12)
            items.append(label)
        for item in items:
            self.input_view.addItem(item)
        self.rect_items += items

    def _gradient_ready(self, g: GradientResult) -> None:
        if self.pick != (g.node_id, g.unit) or g.result is not self.controller.result:
            return  # an answer to an earlier click
        self.gradient = g
        self._draw_heat()
        text = self.field_text.text().replace(
            "<i>Heat map: the effective field (input gradient), computing…</i>", _heat_text(g))
        self.field_text.setText(text)

    def _draw_heat(self) -> None:
        g = self.gradient
        if g is None or not self.show_heat.isChecked():
            self.heat.clear()
            if g is None and self.show_heat.isChecked() and self.pick is not None:
                self.controller.compute_gradient(*self.pick)
            return
        magnitude = _magnitude(g)
        peak = float(magnitude.max())
        if peak <= 0:
            self.heat.clear()
            return
        level = np.sqrt(magnitude / peak)  # square root: the faint edges of the field still show
        rgba = np.zeros(magnitude.shape + (4,), np.uint8)
        rgba[..., :3] = LUT[np.clip(np.rint(level * 255), 0, 255).astype(np.uint8)]
        # at most 60% opaque, so the picture under the field still shows
        rgba[..., 3] = np.clip(np.rint(np.minimum(level * 2, 1) * 0.6 * 255), 0, 255).astype(np.uint8)
        show_rgb(self.heat, rgba)


#: characters of an image's name shown above it (the whole name is in the tooltip)
NAME_SHOWN = 22


def _two_lines(name: str, size: str) -> str:
    """A picture's caption: its name (shortened if long) above its size, so a narrow column
    doesn't cut it off."""
    if len(name) > NAME_SHOWN:
        name = name[:NAME_SHOWN - 1] + "…"
    return f"{html.escape(name)}<br>{size}"


def _pair(v) -> str:
    a, b = v
    text = lambda x: num(x) if float(x).is_integer() else f"{x:g}"  # noqa: E731
    return text(a) if a == b else f"{text(a)}×{text(b)}"


def _edge(x: float) -> str:
    return num(int(x)) if float(x).is_integer() else f"{x:g}"


def _span(start: float, end: float) -> str:
    """Pixels ``[start, end)`` as the rows or columns a reader counts: ``14–18``."""
    return f"{_edge(start)}–{_edge(end - 1)}"


def _magnitude(g: GradientResult) -> np.ndarray:
    """|gradient| summed over channels, (H, W); inf and NaN (a network that overflows) as 0."""
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.abs(g.gradient).sum(axis=0)
    finite = np.isfinite(magnitude)
    return magnitude if finite.all() else np.where(finite, magnitude, 0)


def _heat_text(g: GradientResult) -> str:
    with np.errstate(invalid="ignore", over="ignore"):
        bad = int((~np.isfinite(np.abs(g.gradient).sum(axis=0))).sum())
    note = (f" At {num(bad)} pixel{'s' if bad != 1 else ''} the gradient is inf or NaN (the "
            f"network's numbers overflow): not drawn." if bad else "")
    nonzero = np.argwhere(_magnitude(g) > 0)
    if not len(nonzero):
        return ("Heat map: this unit's gradient is zero everywhere (e.g. a ReLU that is off)."
                if not bad else f"Heat map: nothing to draw.{note}")
    (r0, c0), (r1, c1) = nonzero.min(axis=0), nonzero.max(axis=0)
    return (f"Heat map: the effective field (input gradient); nonzero over rows {r0}–{r1}, "
            f"columns {c0}–{c1}.{note}")


def suggested_weights_path(document) -> str:
    """Where Save weights first points: beside the design's file, named after it
    ("lenet5.npz" beside "lenet5.json"); for an unsaved design, in the documents folder, named
    after the design."""
    if document.path is not None:
        return str(Path(document.path).with_suffix(".npz"))
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in document.title).strip("-.")
    return str(Path(folder or Path.home()) / f"{stem or 'weights'}.npz")
