"""The Train panel: the data with a preview, the optimizer and the run's settings, Start, Pause
and Stop on the left; the live curves, the first convolution's filters, the confusion matrix and
the most confidently wrong images on the right."""
from __future__ import annotations

from pathlib import Path

from typing import Callable

from PySide6.QtCore import QEvent, QObject, QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                               QSizePolicy, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from designer.app.messages import WRITE_ERRORS, write_failure
from designer.app.train.charts import (CURVES_MIN_HEIGHT, REDRAW_HZ, ConfusionView, CurvesView, DataPreview,
                                       ImageView, WrongImages)
from designer.app.train.controller import (BUILTIN_SOURCES, DEFAULT_LR, IDLE, LOADING, OPTIMIZERS,
                                           PAUSED, RUNNING, STOPPING, EpochResult, Finished,
                                           Preview, Settings, Steps, TrainController)
from designer.app.train.handoff import save_weights, weights_label
from designer.engine.weights import WeightsError
from designer.train.loop import duration

FOLDER, NPZ = "folder", "npz"
ERROR_STYLE = "color: #c82020"
PREVIEW_TIP = ("Training images of each class: the class's name, and below it how many "
               "training images it has")
START_TIP = "Train the design as it is now on the data (F6)"
SCHEDULE_NAMES = {None: "Constant", "cosine": "Cosine to 0", "step": "Step (÷10 every third)"}


class WheelGuard(QObject):
    """The mouse wheel over a number field or a list that doesn't have the focus scrolls the
    settings (``scroll``'s scroll bar) instead of changing the value unnoticed; a field clicked
    or tabbed into takes the wheel as usual."""

    def __init__(self, scroll: QScrollArea, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.scroll = scroll

    def guard(self, widget: QWidget) -> None:
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) \
                and not watched.hasFocus():
            event.ignore()
            QApplication.sendEvent(self.scroll.verticalScrollBar(), event)
            return True
        return False


def _row(*widgets: QWidget) -> QWidget:
    """Widgets side by side, as one row of a form."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return row


class TrainPanel(QWidget):
    """See the module docstring. ``message(text, ms)`` goes to the status bar; ``wrong_chosen``
    carries a misclassified image the user clicked (a controller.Wrong)."""

    message = Signal(str, int)
    wrong_chosen = Signal(object)
    start_allowed = Signal(bool)  # Start can be pressed (idle, and the design fits the data)

    def __init__(self, controller: TrainController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._offered = False  # the suggested data were loaded when first shown
        self._user_chose = False  # the user picked the data (else they follow the design)
        self._epoch_seconds: float | None = None
        #: the app's settings (the window gives its own): where Save weights… was last used
        self.app_settings: Callable[[], QSettings] = QSettings

        # ---------------------------------------------------------------- data
        self.source = QComboBox()
        for source, text in BUILTIN_SOURCES.items():
            self.source.addItem(text, source)
        self.source.addItem("Image folder…", FOLDER)
        self.source.addItem(".npz file…", NPZ)
        self.source.setToolTip("What to train on: built-in data drawn by the app, a folder with "
                               "one sub-folder of images per class, or an .npz file with x "
                               "(N, C, H, W) and y (N,)")
        self.source.activated.connect(self._source_chosen)
        self.data_note = QLabel("Choose the data to train on")
        self.data_note.setWordWrap(True)
        self.preview = DataPreview()
        data_box = QGroupBox("Data")
        data_layout = QVBoxLayout(data_box)
        data_layout.addWidget(self.source)
        data_layout.addWidget(self.data_note)
        data_layout.addWidget(self.preview)

        # ---------------------------------------------------------------- optimizer
        self.optimizer = QComboBox()
        self.optimizer.addItems(list(OPTIMIZERS))
        self.optimizer.setToolTip("Adam: a good first choice. AdamW: Adam with decoupled weight "
                                  "decay. SGD: with momentum, often best when tuned")
        self.optimizer.currentTextChanged.connect(self._optimizer_chosen)
        self.lr = QDoubleSpinBox(decimals=5, minimum=0.00001, maximum=10.0, singleStep=0.0005)
        self.lr.setValue(DEFAULT_LR["Adam"])
        self.lr.setToolTip("Learning rate: the size of each step. Too high and the loss jumps "
                           "or diverges, too low and it falls slowly")
        self.momentum = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=0.999, singleStep=0.05)
        self.momentum.setValue(0.9)
        self.nesterov = QCheckBox("Nesterov")
        self.beta1 = QDoubleSpinBox(decimals=4, minimum=0.0, maximum=0.9999, singleStep=0.01)
        self.beta1.setValue(0.9)
        self.beta1.setToolTip("β₁: how much of the past gradients the step keeps (momentum); "
                              "default 0.9")
        self.beta2 = QDoubleSpinBox(decimals=4, minimum=0.0, maximum=0.9999, singleStep=0.001)
        self.beta2.setValue(0.999)
        self.beta2.setToolTip("β₂: how much of the past squared gradients scale the step; "
                              "default 0.999 (lower, e.g. 0.99, adapts faster)")
        self.weight_decay = QDoubleSpinBox(decimals=5, minimum=0.0, maximum=1.0, singleStep=0.0001)
        self.weight_decay.setToolTip("L2 penalty (Adam, SGD) or decoupled decay (AdamW, "
                                     "default 0.01)")
        opt_box = QGroupBox("Optimizer")
        opt_form = QFormLayout(opt_box)
        opt_form.addRow("Optimizer", self.optimizer)
        opt_form.addRow("Learning rate", self.lr)
        self.momentum_row = _row(self.momentum, self.nesterov)
        opt_form.addRow("Momentum", self.momentum_row)
        self.betas_row = _row(self.beta1, self.beta2)
        opt_form.addRow("Betas", self.betas_row)
        opt_form.addRow("Weight decay", self.weight_decay)
        self.opt_form = opt_form

        # ---------------------------------------------------------------- run
        self.epochs = QSpinBox(minimum=1, maximum=1000, value=5)
        self.batch_size = QSpinBox(minimum=1, maximum=4096, value=64)
        self.batch_size.setToolTip("Images per optimizer step")
        self.schedule = QComboBox()
        for value, text in SCHEDULE_NAMES.items():
            self.schedule.addItem(text, value)
        self.schedule.setToolTip("How the learning rate changes from epoch to epoch")
        self.augment = QCheckBox("Augment (shift, flip where it keeps the class)")
        self.augment.setToolTip("Each training batch randomly shifted by a few pixels (and "
                                "mirrored for data whose classes allow it): slower to fit, "
                                "better on new images")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.seed.setToolTip("The same seed gives the same run: initial weights, order of the "
                             "batches, augmentation")
        run_box = QGroupBox("Training")
        run_form = QFormLayout(run_box)
        run_form.addRow("Epochs", self.epochs)
        run_form.addRow("Batch size", self.batch_size)
        run_form.addRow("Schedule", self.schedule)
        run_form.addRow(self.augment)
        run_form.addRow("Seed", self.seed)
        self.resume_weights = QCheckBox("Go on from the last training's weights")
        self.resume_weights.setToolTip("Start from the weights the last training ended with "
                                       "(the design must still have the same tensors), instead "
                                       "of new seeded random ones")
        self.resume_weights.setEnabled(False)
        run_form.addRow(self.resume_weights)

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip(START_TIP)
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause or resume after the current batch (F7)")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current batch, keeping what was learnt "
                                    "(Shift+F6)")
        self.stop_button.clicked.connect(lambda: self.controller.stop())
        self.save_button = QPushButton("Save weights…")
        self.save_button.setToolTip("Save the trained weights (.npz, PyTorch's names and "
                                    "layouts)")
        self.save_button.clicked.connect(self.save_weights_dialog)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(ERROR_STYLE)
        self.problem.hide()

        settings = QWidget()
        column = QVBoxLayout(settings)
        column.setContentsMargins(0, 0, 4, 0)
        column.addWidget(data_box)
        column.addWidget(opt_box)
        column.addWidget(run_box)
        column.addStretch(1)
        self.settings_scroll = QScrollArea()
        self.settings_scroll.setWidget(settings)
        self.settings_scroll.setWidgetResizable(True)
        self.settings_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.settings_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Start, Pause and Stop stay in sight above the settings, however short the dock
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.problem)
        left_layout.addWidget(self.settings_scroll, 1)
        left_layout.addWidget(self.save_button)
        left.setMinimumWidth(settings.minimumSizeHint().width() + 20)
        left.setMaximumWidth(max(left.minimumWidth(), 330))
        self.left = left
        self.wheel_guard = WheelGuard(self.settings_scroll, self)
        for widget in settings.findChildren(QWidget):
            if isinstance(widget, (QAbstractSpinBox, QComboBox)):
                self.wheel_guard.guard(widget)
        self.settings_widgets = [self.source, self.optimizer, self.lr, self.momentum,
                                 self.nesterov, self.beta1, self.beta2, self.weight_decay, self.epochs, self.batch_size,
                                 self.schedule, self.augment, self.seed]

        # ---------------------------------------------------------------- views
        self.status = QLabel("Not trained yet: choose the data, then Start")
        self.status.setWordWrap(True)
        # two lines, always: a text of another length must not re-lay out the views below
        self.status.setFixedHeight(2 * self.status.fontMetrics().lineSpacing() + 4)
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.curves = CurvesView(timer=False)
        self.curves.setToolTip("Training: each step's loss and accuracy on its batch, faint as "
                               "measured and solid smoothed; validation: after each epoch, on "
                               "the validation images")
        self.filters = ImageView("First convolution's filters")
        self.filters.setToolTip("The first convolution's filters, redrawn as they learn (each "
                                "on its own scale: grey is 0)")
        self.confusion = ConfusionView()
        self.wrong = WrongImages()
        self.wrong.chosen.connect(self.wrong_chosen.emit)
        wrong_box = QWidget()
        wrong_layout = QVBoxLayout(wrong_box)
        wrong_layout.setContentsMargins(0, 0, 0, 0)
        wrong_title = QLabel("Most confidently wrong (click: open in the Run panel)")
        wrong_title.setWordWrap(True)
        wrong_layout.addWidget(wrong_title)
        wrong_layout.addWidget(self.wrong)
        # the curves beside the confusion matrix; below them the filters beside the wrong images
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.curves)
        top.addWidget(self.confusion)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.filters)
        bottom.addWidget(wrong_box)
        views = QSplitter(Qt.Orientation.Vertical)
        views.addWidget(top)
        views.addWidget(bottom)
        for splitter in (top, bottom, views):
            splitter.setChildrenCollapsible(False)
            splitter.splitterMoved.connect(self._user_sized)
        self.views, self.top_row, self.bottom_row = views, top, bottom
        self._sized = False  # the user has moved a splitter: their sizes are kept
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.status)
        right_layout.addWidget(views, 1)

        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(left)
        outer.addWidget(right)
        outer.setStretchFactor(0, 0)
        outer.setStretchFactor(1, 1)
        outer.setCollapsible(1, False)
        self.splitter = outer
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(outer)
        # small minimums: the dock shares its area with the tables, and a laptop's canvas
        # must keep its room (the views are given theirs when training starts)
        for widget in (self.curves, self.filters, self.confusion, self.wrong):
            widget.setMinimumSize(100, 60)
            widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        # what the worker sends is kept, and shown on one timer: one repaint a tick at most,
        # however many updates arrived in between
        self._pending_status: str | None = None
        self._pending_filters: tuple | None = None
        self._tick = QTimer(self, interval=round(1000 / REDRAW_HZ))
        self._tick.timeout.connect(self.show_pending)
        controller.state_changed.connect(self._state_changed)
        controller.data_loaded.connect(self._data_loaded)
        controller.data_failed.connect(self._data_failed)
        controller.started.connect(self._started)
        controller.steps.connect(self._steps)
        controller.filters.connect(self._filters)
        controller.epoch_done.connect(self._epoch_done)
        controller.finished.connect(self._finished)
        controller.failed.connect(self._failed)
        controller.cancelled.connect(self._cancelled)
        controller.document.refreshed.connect(lambda *_: self.check_design())
        controller.document.design_replaced.connect(self.follow_design)
        controller.document.design_replaced.connect(self.check_design)
        self._optimizer_chosen(self.optimizer.currentText())
        self._state_changed(controller.state)

    def offer_data(self) -> None:
        """The panel comes into view with no data chosen (once): the built-in data that suit
        the design's Input load by themselves, so the preview is there to look at."""
        c = self.controller
        if c.preview is None and not c.busy and not self._offered:
            self._offered = True
            self.choose_source(c.suggested_source(), by_user=False)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if not self._sized and self.width() > 200 and self.height() > 100:
            self.place_views()

    def _user_sized(self, *args) -> None:
        self._sized = True

    def place_views(self) -> None:
        """Curves 3/5 and the confusion matrix 2/5 of the width above; the filters 1/4 and the
        wrong images 3/4 below; the upper row 2/3 of the height (at least what the wrong
        images' one row of thumbnails needs below)."""
        width = max(300, self.width() - self.left.width() - 12)
        height = max(200, self.height() - self.status.height() - 12)
        lower = max(self.wrong.row_height() + 30, height // 3)
        self.views.setSizes([height - lower, lower])
        self.top_row.setSizes([width * 3 // 5, width - width * 3 // 5])
        self.bottom_row.setSizes([width // 3, width - width // 3])

    # ------------------------------------------------------------------ settings

    def read_settings(self) -> Settings:
        """The settings as the controls show them."""
        optimizer = self.optimizer.currentText()
        return Settings(source=self.controller.settings.source, optimizer=optimizer,
                        lr=self.lr.value(), momentum=self.momentum.value(),
                        nesterov=self.nesterov.isChecked(),
                        weight_decay=self.weight_decay.value(),
                        betas=(self.beta1.value(), self.beta2.value()),
                        epochs=self.epochs.value(),
                        batch_size=self.batch_size.value(),
                        schedule=self.schedule.currentData(), augment=self.augment.isChecked(),
                        seed=self.seed.value())

    def _optimizer_chosen(self, name: str) -> None:
        """Each optimizer's usual settings (the learning rate only if it was another's default)."""
        if any(abs(self.lr.value() - lr) < 1e-12 for lr in DEFAULT_LR.values()):
            self.lr.setValue(DEFAULT_LR.get(name, 1e-3))
        if name == "AdamW" and self.weight_decay.value() == 0.0:
            self.weight_decay.setValue(0.01)
        elif name != "AdamW" and abs(self.weight_decay.value() - 0.01) < 1e-12:
            self.weight_decay.setValue(0.0)
        sgd = name == "SGD"
        self.momentum_row.setVisible(sgd)
        self.betas_row.setVisible(not sgd)
        for field, shown in ((self.momentum_row, sgd), (self.betas_row, not sgd)):
            label = self.opt_form.labelForField(field)
            if label is not None:
                label.setVisible(shown)

    def _source_chosen(self, index: int) -> None:
        kind = self.source.itemData(index)
        if kind == FOLDER:
            path = QFileDialog.getExistingDirectory(
                self, "Training data: a folder with one sub-folder of images per class")
            if not path:
                self._show_source()
                return
            self.choose_source(path)
        elif kind == NPZ:
            path, _ = QFileDialog.getOpenFileName(self, "Training data (.npz)", "",
                                                  "NumPy archives (*.npz);;All files (*)")
            if not path:
                self._show_source()
                return
            self.choose_source(path)
        else:
            self.choose_source(kind)

    def choose_source(self, source: str, by_user: bool = True) -> None:
        """Use ``source`` (``builtin:…``, a folder or an .npz file) and load it. Chosen
        ``by_user``, the data no longer follow the design's Input."""
        self._user_chose = self._user_chose or by_user
        if not source.startswith("builtin:"):
            text = f"{Path(source).name}  ({source})"
            if self.source.findData(source) < 0:
                self.source.insertItem(self.source.count() - 2, text, source)
        self.controller.settings.source = source
        self._show_source()
        self.data_note.setStyleSheet("")
        self.data_note.setText(f"Loading {source}…")
        self.preview.clear()
        self.controller.load_data(source)

    def _show_source(self) -> None:
        index = self.source.findData(self.controller.settings.source)
        if index >= 0:
            self.source.setCurrentIndex(index)

    # ------------------------------------------------------------------ actions

    def follow_design(self) -> None:
        """Until the user picks the data, they follow the design: the built-in set that suits
        its Input (a colour design trains on shapes, a grey one on digits)."""
        c = self.controller
        if self._user_chose or c.training or c.busy:
            return
        suggested = c.suggested_source()
        if suggested != c.settings.source:
            c.settings.source = suggested
            self._show_source()
            self.preview.clear()
            self.data_note.setStyleSheet("")
            self.data_note.setText("Loaded when training starts (or choose other data)")
            self._offered = False

    def start(self) -> bool:
        if self.controller.state == PAUSED:
            self.controller.resume()
            return True
        self.follow_design()
        settings = self.read_settings()
        weights = None
        last = self.controller.last
        if self.resume_weights.isChecked() and last is not None:
            weights = last.weights
        return self.controller.start(settings, weights)

    def toggle_pause(self) -> None:
        if self.controller.state == PAUSED:
            self.controller.resume()
        else:
            self.controller.pause()

    def save_weights_dialog(self) -> None:
        last = self.controller.last
        if last is None:
            self._say("Train first: there are no trained weights yet.", error=True)
            return
        suggested = weights_label(last.source, len(last.history.rows)) + ".npz"
        path, _ = QFileDialog.getSaveFileName(self, "Save trained weights",
                                              str(Path(self.weights_folder()) / suggested),
                                              "Weights (*.npz)")
        if path:
            self.save_to(path)

    def weights_folder(self) -> str:
        """Where Save weights… starts: the folder weights were last saved to, else the user's
        documents folder (never the folder the app happens to run in)."""
        last = self.app_settings().value("weights_folder")
        if isinstance(last, str) and last and Path(last).is_dir():
            return last
        documents = QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.DocumentsLocation)
        return documents or str(Path.home())

    def save_to(self, path: str | Path) -> bool:
        last = self.controller.last
        if last is None:
            return False
        try:
            save_weights(last.weights, path)
        except WeightsError as exc:
            self._say(f"Can't save the weights: {exc}", error=True)
            return False
        except WRITE_ERRORS as exc:
            self._say(f"Can't save the weights: {write_failure(exc, path)}", error=True)
            return False
        self.app_settings().setValue("weights_folder", str(Path(path).resolve().parent))
        self.message.emit(f"Saved the trained weights to {path}", 5000)
        return True

    # ------------------------------------------------------------------ state shown

    def check_design(self) -> None:
        """Say before Start why the design can't be trained on the data (or nothing)."""
        if self.controller.training:
            return
        problem = self.controller.problem()
        text = f"Can't train: {problem}." if problem else ""
        self.problem.setText(text)
        self.problem.setVisible(bool(problem))
        # the reason is said once, in the red note (and on Start's tooltip), not again above
        # the views and in the status bar
        if problem and self.status.text() == text:
            self.status.setStyleSheet("")
            self.status.setText("Not trained yet: fix the design (see the note on the left)")
        self.start_button.setToolTip(text or START_TIP)
        self._allow_start()

    def _allow_start(self) -> None:
        allowed = self.controller.state == IDLE and not self.problem.text()
        self.start_button.setEnabled(allowed)
        self.start_allowed.emit(allowed)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(ERROR_STYLE if error else "")
        self.status.setText(text)
        self.message.emit(text, 8000 if error else 4000)

    def _state_changed(self, state: str) -> None:
        training = self.controller.training
        for widget in self.settings_widgets:
            widget.setEnabled(not training and state != LOADING)
        # one way to go on after a pause (Pause/Resume): Start only starts a new run
        self._allow_start()
        self.pause_button.setEnabled(state in (RUNNING, PAUSED))
        self.pause_button.setText("Resume" if state == PAUSED else "Pause")
        self.stop_button.setEnabled(training and state != STOPPING)
        self.save_button.setEnabled(self.controller.last is not None and not training)
        self.resume_weights.setEnabled(self.controller.last is not None and not training
                                       and state != LOADING)
        if state == PAUSED:
            self.show_pending()
            self.status.setText(self.status.text().split("  —  ")[0] + "  —  paused")
        elif state == STOPPING:
            self.status.setText("Stopping after the current batch…")
        if state == IDLE:
            self.check_design()

    def _data_loaded(self, preview: Preview) -> None:
        self.preview.set_preview(preview)
        train, val = sum(preview.train_counts), sum(preview.val_counts)
        c, h, w = preview.image_shape
        self.data_note.setStyleSheet("")
        changed = preview.conversion()
        how = f" (shown as the Input takes them: {changed})" if changed else ""
        self.data_note.setText(f"{len(preview.classes)} classes · {train:,} training + {val:,} "
                               f"validation images, as {c}×{h}×{w} for the Input{how}")
        self.preview.setToolTip(PREVIEW_TIP + (f". Shown as the Input takes them: {changed}"
                                               if changed else ""))
        self.check_design()

    def _data_failed(self, text: str) -> None:
        self.preview.clear()
        self.data_note.setStyleSheet(ERROR_STYLE)
        self.data_note.setText(f"Can't use this data: {text}")
        self.message.emit(f"Can't use this data: {text}", 10000)

    def _started(self, settings: Settings) -> None:
        # from the first run on, the curves keep room for their plots (else squashed to their
        # titles); before it the dock stays small, beside the tables, for the canvas's sake
        self.curves.setMinimumSize(260, CURVES_MIN_HEIGHT)
        self.curves.reset(settings.epochs)
        self.confusion.reset()
        self.wrong.clear()
        self.filters.reset("First convolution's filters")
        self._epoch_seconds = None
        self._pending_status = self._pending_filters = None
        self._tick.start()
        self.status.setStyleSheet("")
        self.status.setText(f"Starting: {settings.epochs} epoch(s) of {settings.optimizer} "
                            f"(learning rate {settings.lr:g}), batches of {settings.batch_size}…")

    def _steps(self, steps: Steps) -> None:
        self.curves.add_steps(steps.x, steps.loss, steps.accuracy)
        e = steps.event
        per_epoch = (f"{self._epoch_seconds:.1f} s per epoch · " if self._epoch_seconds
                     else "")
        self._pending_status = (
            f"Epoch {e.epoch}/{e.epochs} · batch {e.batch}/{e.batches} · training loss "
            f"{e.loss:.4f}, accuracy {100 * e.accuracy:.1f} % · {per_epoch}about "
            f"{duration(e.remaining)} left")

    def _filters(self, rgb, node_id: str) -> None:
        self._pending_filters = (rgb, node_id)

    def show_pending(self) -> None:
        """The timer's tick: the curves, the filters and the progress line as they now are."""
        self.curves.redraw()
        if self._pending_filters is not None:
            rgb, node_id = self._pending_filters
            self._pending_filters = None
            self.filters.set_rgb(rgb, f"{node_id}'s filters")
        if self._pending_status is not None:
            text, self._pending_status = self._pending_status, None
            self.status.setStyleSheet("")
            self.status.setText(text)

    def _epoch_done(self, result: EpochResult) -> None:
        row = result.row
        self._epoch_seconds = row["seconds"]
        self.curves.add_epoch(result.x, row["val_loss"], row["val_accuracy"])
        classes = self.controller.preview.classes if self.controller.preview else []
        self.confusion.set_matrix(result.confusion, classes,
                                  f"Confusion matrix, {result.name()}")
        self.wrong.set_images(result.wrong, classes)
        if result.partial:
            return  # (the run's end says it)
        left = (f" · about {duration(result.remaining)} left"
                if result.epoch < result.epochs else "")
        self._pending_status = (
            f"Epoch {result.epoch}/{result.epochs}: validation loss {row['val_loss']:.4f}, "
            f"accuracy {100 * row['val_accuracy']:.1f} % · {row['seconds']:.1f} s per epoch"
            f"{left}")

    def _finished(self, result: Finished) -> None:
        self._tick.stop()
        self.show_pending()
        self._pending_status = None
        rows = result.history.rows
        last = rows[-1] if rows else None
        epoch = result.last_epoch
        if result.stopped and epoch is not None and epoch.partial:
            how = (f"Stopped in epoch {epoch.epoch} ({epoch.batch} of {epoch.batches} batches) "
                   f"after {duration(result.seconds)}")
        else:
            epochs = f"{len(rows)} epoch{'s' if len(rows) != 1 else ''}"
            how = (f"{'Stopped' if result.stopped else 'Trained'} after {epochs} "
                   f"({duration(result.seconds)})")
        text = (f"{how}: validation "
                f"accuracy {100 * last['val_accuracy']:.1f} %, loss {last['val_loss']:.4f}. "
                f"The Run panel now uses these weights (choose others there to go back); "
                f"Save weights… keeps them." if last else f"{how}.")
        self._say(text)
        self._state_changed(self.controller.state)  # (Save and Go on need the result)

    def _cancelled(self) -> None:
        self._tick.stop()
        self._pending_status = None
        self._say("Stopped before the first step: nothing was learnt.")

    def _failed(self, text: str) -> None:
        self._tick.stop()
        self.show_pending()
        self._pending_status = None
        self._say(text, error=True)
        self.check_design()
