"""Training the design in the app, off the GUI thread: the data, the settings, the worker, Pause
and Stop, and what a finished run leaves (its weights and the data's class names).

``TrainController`` owns no widgets. Loading data and training run on a worker thread
(``designer.load_dataset``, ``designer.train``); everything the window shows is made small on the
worker (the curves' points, the first convolution's filters as one RGB image, the confusion
matrix, the few most confidently wrong images) and handed over through queued signals, at most
``UPDATE_INTERVAL_S`` apart, so the GUI thread never copies or reduces a big array.
"""
from __future__ import annotations

import math
import threading
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Signal
from threadpoolctl import threadpool_limits

from designer.app.run.pictures import filter_images
from designer.core.design import Design
from designer.data.dataset import DataError, Dataset, input_shape, load_dataset
from designer.engine.classic import first_convolution
from designer.engine.memory import NotEnoughMemory
from designer.engine.network import InvalidDesign, Network
from designer.engine.optim import SGD, Adam, AdamW
from designer.engine.training import TrainingError
from designer.engine.weights import WeightsError
from designer.train.loop import Event, History, train

#: the data sources offered by name (a folder or an .npz file is given by its path)
BUILTIN_SOURCES = {"builtin:digits": "Built-in digits (0–9, grey)",
                   "builtin:shapes": "Built-in shapes (10 kinds, colour)"}
OPTIMIZERS = ("Adam", "AdamW", "SGD")
#: learning rates that suit each optimizer to begin with (the command line's defaults)
DEFAULT_LR = {"Adam": 1e-3, "AdamW": 1e-3, "SGD": 0.01}
SCHEDULES = {"none": None, "cosine": "cosine", "step": "step"}
#: the curves, the time left and the filters reach the window at most this often (seconds)
UPDATE_INTERVAL_S = 0.1
FILTERS_INTERVAL_S = 0.25
#: the most confidently wrong validation images shown after each epoch
WRONG_SHOWN = 8
#: sample images per class in the data's preview
PREVIEW_PER_CLASS = 3
PREVIEW_CLASSES = 10
MAX_FILTERS = 64
#: BLAS threads while training: every core, as the command line (a training pass splits its
#: batch over the cores and leaves the GIL to the window between ops): on an idle 2-core machine
#: an epoch in the app takes 92-95 % of the CLI's speed with the window's longest stall under
#: 30 ms, where all cores but one gave 62-78 % (benchmarks/bench_train_gui.py --images 10000)
TRAIN_BLAS_THREADS = os.cpu_count() or 1

IDLE, LOADING, RUNNING, PAUSED, STOPPING = "idle", "loading", "running", "paused", "stopping"


@dataclass
class Settings:
    """What a run is asked to do. ``schedule``: None, "cosine" or "step"."""

    source: str = "builtin:digits"
    optimizer: str = "Adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD
    nesterov: bool = False  # SGD
    weight_decay: float = 0.0  # AdamW's default is 0.01 (make_optimizer)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam, AdamW
    epochs: int = 5
    batch_size: int = 64
    schedule: str | None = None
    augment: bool = False
    seed: int = 0

    def make_optimizer(self) -> Any:
        """The optimizer (raises ValueError for settings it refuses)."""
        if self.optimizer == "SGD":
            return SGD(lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                       nesterov=self.nesterov)
        if self.optimizer == "Adam":
            return Adam(lr=self.lr, betas=tuple(self.betas), weight_decay=self.weight_decay)
        if self.optimizer == "AdamW":
            return AdamW(lr=self.lr, betas=tuple(self.betas), weight_decay=self.weight_decay)
        raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of "
                         f"{', '.join(OPTIMIZERS)}")


@dataclass
class Preview:
    """The data at a glance: a few images of each class (uint8 RGB (H, W, 3)) with their class,
    and the number of training and validation images of each class."""

    source: str
    classes: list[str]
    samples: list[tuple[np.ndarray, int]]
    train_counts: list[int]
    val_counts: list[int]
    image_shape: tuple[int, int, int]
    source_channels: int | None = None  # the data's own (1 grey, 3 colour), where known

    def conversion(self) -> str | None:
        """How the images were changed for the Input's channels (``colour converted to
        grey``), or None."""
        c = self.image_shape[0]
        if self.source_channels == 3 and c == 1:
            return "colour converted to grey"
        if self.source_channels == 1 and c == 3:
            return "grey repeated in the three colour channels"
        return None


@dataclass
class Steps:
    """Training progress since the last update: per-step points (x in epochs: 1.5 is halfway
    through the second epoch), the step losses and accuracies, and the latest event."""

    x: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    event: Event


@dataclass
class Wrong:
    """A validation image the network got wrong, confidently."""

    index: int  # in data.val
    pixels: np.ndarray  # uint8 RGB (H, W, 3)
    true: int
    predicted: int
    confidence: float  # the probability given to ``predicted``


@dataclass
class EpochResult:
    row: dict[str, float]
    epoch: int
    epochs: int
    confusion: np.ndarray  # int64 (K, K), row = true class
    wrong: list[Wrong]
    remaining: float | None
    batch: int = 0  # the batches the epoch took (all of them but in an epoch cut short)
    batches: int = 0
    partial: bool = False  # a stop cut the epoch short: measured on the weights kept

    @property
    def x(self) -> float:
        """Where on the curves (in epochs) the validation was made."""
        if self.partial and self.batches:
            return self.epoch - 1 + self.batch / self.batches
        return float(self.epoch)

    def name(self) -> str:
        """``epoch 3``, or ``epoch 3 (stopped after 120 of 157 batches)``."""
        if self.partial:
            return (f"epoch {self.epoch} (stopped after {self.batch} of {self.batches} "
                    f"batches)")
        return f"epoch {self.epoch}"


@dataclass
class Finished:
    """What a run leaves: the trained weights (the network's own tensors: nobody else holds
    them), its history, and the design and data it was trained on."""

    weights: dict[str, np.ndarray]
    history: History
    design: Design  # the snapshot trained
    classes: list[str]
    source: str
    stopped: bool
    seconds: float
    notes: list[str] = field(default_factory=list)
    last_epoch: EpochResult | None = None  # the last epoch reported (partial when stopped)


class Stopped(Exception):
    """The run was stopped before its first step (while the data loaded)."""


def to_rgb(image: np.ndarray) -> np.ndarray:
    """One image (C, H, W) float in [0, 1] as uint8 RGB (H, W, 3) (grey repeated; other channel
    counts shown as their mean)."""
    c = image.shape[0]
    rgb = image.transpose(1, 2, 0) if c == 3 else np.repeat(image.mean(0)[..., None], 3, -1)
    return np.clip(np.rint(np.nan_to_num(rgb) * 255), 0, 255).astype(np.uint8)


#: the channels of the built-in data as drawn (before conversion for an Input)
BUILTIN_CHANNELS = {"builtin:digits": 1, "builtin:shapes": 3}


def source_channels(source: str) -> int | None:
    """The channels of the images in ``source`` before conversion: the built-in data's, an .npz
    file's ``x`` (from its header, without reading it), else None (not known)."""
    if source in BUILTIN_CHANNELS:
        return BUILTIN_CHANNELS[source]
    if source.lower().endswith(".npz"):
        import zipfile
        try:
            with zipfile.ZipFile(source) as archive, archive.open("x.npy") as member:
                fmt = np.lib.format
                version = fmt.read_magic(member)
                read = fmt.read_array_header_1_0 if version == (1, 0) else \
                    fmt.read_array_header_2_0
                shape = read(member)[0]
        except Exception:  # unreadable here: the loader has said what it thinks
            return None
        return int(shape[1]) if len(shape) == 4 and shape[1] in (1, 3) else None
    return None


def make_preview(data: Dataset) -> Preview:
    """``PREVIEW_PER_CLASS`` training images of each of the first ``PREVIEW_CLASSES`` classes
    and the counts (on the worker: it reads the data)."""
    x, y = data.train
    k = len(data.classes)
    samples = []
    for label in range(min(k, PREVIEW_CLASSES)):
        for index in np.flatnonzero(y == label)[:PREVIEW_PER_CLASS]:
            samples.append((to_rgb(x[index]), label))
    return Preview(data.source, list(data.classes), samples,
                   np.bincount(y, minlength=k).tolist(),
                   np.bincount(data.val[1], minlength=k).tolist(), tuple(x.shape[1:]),
                   source_channels(data.source))


def most_confidently_wrong(probabilities: np.ndarray, y: np.ndarray, x: np.ndarray,
                           count: int = WRONG_SHOWN) -> list[Wrong]:
    """The ``count`` validation images whose wrong prediction had the highest probability."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y)
    confidence = probabilities[wrong, predicted[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:count]
    return [Wrong(int(i), to_rgb(x[i]), int(y[i]), int(predicted[i]),
                  float(probabilities[i, predicted[i]])) for i in order]


def fit_problem(analysis: Any, classes: list[str] | None) -> str | None:
    """Why the design can't be trained (on data with these classes), in plain words with the
    fix, or None. The same checks ``designer.train`` makes before its first step, made on the
    live analysis so the panel can say it before Start."""
    if not analysis.valid:
        problems = analysis.design_problems() or [str(p) for p in analysis.problems()[:1]]
        return (f"the design has errors ({problems[0]}); fix them first (see the Problems list)"
                if problems else "the design has errors: fix them first (see the Problems list)")
    out = analysis.output
    shape = tuple(analysis.info(out).shape or ())
    if len(shape) != 1:
        dims = "×".join(str(s) for s in shape)
        need = f" ({len(classes)} for this data)" if classes else ""
        return (f"the output ({out}) has shape [{dims}], but training needs a flat output of one "
                f"score per class{need}: end the design with Flatten and Linear")
    if classes is not None and shape[0] != len(classes):
        names = ", ".join(classes[:10]) + (", …" if len(classes) > 10 else "")
        return (f"the output ({out}) has {shape[0]} values, but the data has {len(classes)} "
                f"classes ({names}): set {out}'s out_features to {len(classes)}"
                if analysis.info(out).type == "Linear" else
                f"the output ({out}) has {shape[0]} values, but the data has {len(classes)} "
                f"classes ({names}): make the last layer give {len(classes)} values")
    if shape[0] < 2:
        return f"the output ({out}) has one value; a classifier needs one per class (2 or more)"
    return None


class _Run:
    """One piece of work for the worker, with its Pause and Stop."""

    def __init__(self, training: bool) -> None:
        self.training = training  # (else loading data only)
        self.stop = threading.Event()
        self.go = threading.Event()  # cleared while paused
        self.go.set()


class TrainController(QObject):
    """The state behind the Train panel (see the module docstring)."""

    state_changed = Signal(str)
    data_loaded = Signal(object)  # Preview
    data_failed = Signal(str)
    started = Signal(object)  # Settings of the run
    steps = Signal(object)  # Steps
    filters = Signal(object, str)  # uint8 RGB grid of the first convolution's filters, its id
    epoch_done = Signal(object)  # EpochResult
    finished = Signal(object)  # Finished
    failed = Signal(str)  # a message for the user: the run did not start, or broke off
    cancelled = Signal()  # stopped while its data loaded: nothing was learnt
    _data_done = Signal(object, object, object, object)  # run, Dataset, Preview, error
    _loaded = Signal(object, object)  # Dataset, Preview loaded on the way to training
    _state = Signal(str)  # the worker moved on (from loading the data to training)
    _done = Signal(object, object, object)  # run, Finished, error

    def __init__(self, document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.settings = Settings()
        self.data: Dataset | None = None
        self.preview: Preview | None = None
        self.state = IDLE
        self.last: Finished | None = None
        self._run: _Run | None = None
        self._thread: threading.Thread | None = None
        self._data_done.connect(self._on_data_done)
        self._loaded.connect(self._on_loaded)
        self._state.connect(self._on_state)
        self._done.connect(self._on_done)
        document.design_replaced.connect(self._design_replaced)

    # ------------------------------------------------------------------ state

    @property
    def training(self) -> bool:
        """A run was started and hasn't ended (loading its data, training, paused, stopping):
        the design must not change under it."""
        return self._run is not None and self._run.training

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def suggested_source(self) -> str:
        """The built-in data that suit the design's Input: shapes (colour) for 3 channels,
        digits (grey) otherwise."""
        try:
            channels = input_shape(self.document.design)[0]
        except DataError:
            return "builtin:digits"
        return "builtin:shapes" if channels == 3 else "builtin:digits"

    def problem(self) -> str | None:
        """Why Start would be refused now (the design, or the design with the loaded data)."""
        classes = (self.preview.classes if self.preview is not None
                   and self.preview.source == self.settings.source else None)
        return fit_problem(self.document.analysis, classes)

    # ------------------------------------------------------------------ data

    def load_data(self, source: str | None = None) -> bool:
        """Load ``source`` (default: the settings') for the design's Input on the worker;
        ``data_loaded`` or ``data_failed`` follows. False if busy or the design has no usable
        Input."""
        if self.busy:
            return False
        if source is not None:
            self.settings.source = source
        source = self.settings.source
        try:
            shape = input_shape(self.document.design)
        except DataError as exc:
            self.data_failed.emit(str(exc))
            return False
        seed = self.settings.seed
        run = _Run(training=False)

        def work() -> None:
            try:
                data = load_dataset(source, shape_design(shape), seed=seed)
                preview = make_preview(data)
                self._data_done.emit(run, data, preview, None)
            except (DataError, NotEnoughMemory) as exc:
                self._data_done.emit(run, None, None, str(exc))
            except Exception as exc:  # a bug: said, not lost on the worker
                self._data_done.emit(run, None, None, f"the data could not be loaded "
                                     f"({type(exc).__name__}: {exc})")

        self._start_thread(run, work, LOADING, "cnn-designer data")
        return True

    def _on_data_done(self, run: _Run, data: Dataset | None, preview: Preview | None,
                      error: str | None) -> None:
        self._join()
        self._set_state(IDLE)
        if error is not None:
            self.data_failed.emit(error)
            return
        self.data, self.preview = data, preview
        self.data_loaded.emit(preview)

    # ------------------------------------------------------------------ training

    def start(self, settings: Settings | None = None,
              weights: dict[str, np.ndarray] | None = None) -> bool:
        """Start training the design as it is now (a snapshot) with ``settings`` (default: the
        controller's), from ``weights`` (default: seeded random). The data are (re)loaded on
        the worker if they aren't loaded for this source and Input. Returns False (with
        ``failed`` saying why) if it can't start."""
        if self.busy:
            self.failed.emit("training is already running: stop it first"
                             if self._run is not None and self._run.training else
                             "the data are still loading: start again in a moment")
            return False
        if settings is not None:
            self.settings = settings
        settings = self.settings
        problem = self.problem()
        if problem is not None:
            self.failed.emit(f"Can't train: {problem}.")
            return False
        try:
            optimizer = settings.make_optimizer()
            for name in ("epochs", "batch_size"):
                value = getattr(settings, name)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{name.replace('_', ' ')} must be 1 or more, not {value!r}")
        except ValueError as exc:
            self.failed.emit(f"Can't train: {exc}.")
            return False
        snapshot = self.document.design.copy()
        shape = input_shape(snapshot)
        data = self.data
        if data is not None and (data.source != settings.source
                                 or tuple(data.train[0].shape[1:]) != shape):
            data = None  # another source or another Input: loaded again, on the worker
        run = _Run(training=True)
        interval, filters_interval = UPDATE_INTERVAL_S, FILTERS_INTERVAL_S

        def work() -> None:
            t0 = time.perf_counter()
            try:
                with threadpool_limits(limits=TRAIN_BLAS_THREADS, user_api="blas"):
                    outcome = self._train(run, snapshot, settings, optimizer, data, weights,
                                          interval, filters_interval)
                outcome.seconds = time.perf_counter() - t0
                self._done.emit(run, outcome, None)
            except Stopped:
                self._done.emit(run, None, None)
            except (TrainingError, DataError, InvalidDesign, WeightsError) as exc:
                self._done.emit(run, None, f"Can't train: {exc}.")
            except NotEnoughMemory as exc:
                self._done.emit(run, None, f"Can't train: {exc}.")
            except MemoryError:
                self._done.emit(run, None, "Training ran out of memory: use a smaller batch size "
                                           "or a smaller design.")
            except Exception as exc:  # a bug: said, not lost on the worker
                self._done.emit(run, None, f"Training failed unexpectedly "
                                           f"({type(exc).__name__}: {exc}).")

        self._start_thread(run, work, LOADING if data is None else RUNNING, "cnn-designer train")
        self.started.emit(settings)
        return True

    def _train(self, run: _Run, design: Design, settings: Settings, optimizer: Any,
               data: Dataset | None, weights: dict[str, np.ndarray] | None,
               interval: float, filters_interval: float) -> Finished:
        """On the worker: load the data if needed, build the network, train it."""
        if data is None:
            data = load_dataset(settings.source, design, seed=settings.seed)
            self._loaded.emit(data, make_preview(data))
            if run.stop.is_set():
                raise Stopped
        net = Network(design, weights, settings.seed)
        conv = first_convolution(net.analysis)
        x_val, y_val = data.val
        state = {"last": 0.0, "filters": -math.inf, "x": [], "loss": [], "accuracy": [],
                 "epoch": None}
        self._state.emit(RUNNING)

        def send_filters(force: bool = False) -> None:
            now = time.perf_counter()
            if conv is not None and (force or now - state["filters"] >= filters_interval):
                state["filters"] = now
                weight = net.weights[f"{conv}.weight"][:MAX_FILTERS].copy()  # small
                self.filters.emit(filter_images(weight), conv)

        def flush(event: Event) -> None:
            if state["x"]:
                self.steps.emit(Steps(np.array(state["x"]), np.array(state["loss"]),
                                      np.array(state["accuracy"]), event))
                state["x"], state["loss"], state["accuracy"] = [], [], []
            state["last"] = time.perf_counter()

        def progress(event: Event) -> bool:
            if event.kind == "batch":
                state["x"].append(event.epoch - 1 + event.batch / event.batches)
                state["loss"].append(event.step_loss)
                state["accuracy"].append(event.step_accuracy)
                if time.perf_counter() - state["last"] >= interval:
                    flush(event)
                send_filters()
            else:
                flush(event)
                send_filters(force=True)
                state["epoch"] = EpochResult(
                    dict(event.row), event.epoch, event.epochs, event.confusion,
                    most_confidently_wrong(event.probabilities, y_val, x_val), event.remaining,
                    event.batch, event.batches, event.partial)
                self.epoch_done.emit(state["epoch"])
            return not run.stop.is_set()

        def pause() -> bool:
            while not run.go.wait(0.1):
                if run.stop.is_set():
                    break
            return not run.stop.is_set()

        send_filters(force=True)
        try:
            history = train(net, data, epochs=settings.epochs, batch_size=settings.batch_size,
                            optimizer=optimizer, seed=settings.seed, progress=progress,
                            schedule=settings.schedule, augment=settings.augment, pause=pause)
        finally:
            net.release_buffers()  # the training pass's arrays, kept for the next step
        if history.stopped:
            send_filters(force=True)
        return Finished(net.weights, history, design, list(data.classes), data.source,
                        history.stopped, 0.0, last_epoch=state["epoch"])

    def pause(self) -> None:
        if self._run is not None and self.state == RUNNING:
            self._run.go.clear()
            self._set_state(PAUSED)

    def resume(self) -> None:
        if self._run is not None and self.state == PAUSED:
            self._run.go.set()
            self._set_state(RUNNING)

    def stop(self, wait: bool = False, timeout: float = 60.0) -> None:
        """Stop after the current batch (the weights keep what was learnt: ``finished``
        follows). ``wait``: until the worker has ended (the outcome is still handed over on
        the next turn of the event loop)."""
        run = self._run
        if run is None:
            return
        run.stop.set()
        run.go.set()
        if self.state in (RUNNING, PAUSED, LOADING):
            self._set_state(STOPPING)
        if wait and self._thread is not None:
            self._thread.join(timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the worker (on closing the window)."""
        self.stop(wait=True, timeout=timeout)

    def _start_thread(self, run: _Run, work: Callable[[], None], state: str, name: str) -> None:
        self._run = run
        self._thread = threading.Thread(target=work, daemon=True, name=name)
        self._set_state(state)
        self._thread.start()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        self._run = None

    def _on_done(self, run: _Run, outcome: Finished | None, error: str | None) -> None:
        self._join()
        self._set_state(IDLE)
        if error is not None:
            self.failed.emit(error)
        elif outcome is not None:
            self.last = outcome
            self.finished.emit(outcome)
        else:
            self.cancelled.emit()

    def _design_replaced(self) -> None:
        """Another design was opened: a run of the old one ends, its data and results go."""
        self.stop()
        self.last = None

    def _on_loaded(self, data: Dataset, preview: Preview) -> None:
        """Data loaded on the way to training: shown in the panel like data loaded by hand."""
        self.data, self.preview = data, preview
        self.data_loaded.emit(preview)

    def _on_state(self, state: str) -> None:
        if self._run is not None and self.state == LOADING:
            self._set_state(state)


def shape_design(shape: tuple[int, int, int]) -> Design:
    """A one-node design with an Input of ``shape``: what ``load_dataset`` needs to know."""
    from designer.core.design import Node
    design = Design("data")
    c, h, w = shape
    design.insert_node(Node("input", "Input", {"channels": c, "height": h, "width": w}))
    return design
