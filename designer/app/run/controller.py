"""Running the design on an image, off the GUI thread: the image, the weights, the worker, and
whether the results on screen still match the design.

``RunController`` owns no widgets. It takes a snapshot of the design on the GUI thread, then
builds the network and runs the forward pass (or one unit's input gradient) on a worker thread,
reporting progress and honouring Cancel. Results arrive as ``RunResult`` through queued signals.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from threadpoolctl import threadpool_limits

from designer.app.run.pictures import (cam_heat, display_rgb, drop_heat, filter_images,
                                       heat_picture, map_statistics, saliency_heat)
from designer.core.analysis import Analysis
from designer.core.design import Design
from designer.core.problems import num
from designer.engine import explain as explaining
from designer.engine import ops
from designer.engine.classic import apply_classic_filters, first_convolution
from designer.engine.memory import available_memory, mib
from designer.engine.network import (Cancelled, InputError, InvalidDesign, Network, NonFinite,
                                     NotEnoughMemory)
from designer.engine.weights import (WeightsError, expected_tensors, init_tensor,
                                     load_weights_file)
from designer.io.images import ImageError, read_image, to_input
from designer.io.samples import sample_images
from designer.io.trained import TrainedModel, find_trained

#: weights modes
TRAINED, RANDOM, CLASSIC, FILE = "trained", "random", "classic", "file"
WEIGHT_MODES = {TRAINED: "Trained", RANDOM: "Seeded random", CLASSIC: "Classic filters",
                FILE: "From a weights file"}
#: what each mode does, for the tooltips of the Run panel's choice
WEIGHT_MODE_HELP = {
    TRAINED: "The weights that ship with CNN Designer for LeNet-5 (trained on the built-in "
             "digits), the CIFAR-10 ConvNet and Tiny VGG (on the built-in shapes), used when "
             "the design has their layers; any other design (a layer, parameter, id or "
             "connection changed) runs on seeded random weights",
    RANDOM: "He-initialised random weights, drawn from a seed: the same every time",
    CLASSIC: "Classic filters for the first convolution (edge, blur, centre–surround and "
             "colour-opponent kernels), so its maps are readable; seeded random weights for "
             "the rest",
    FILE: "Tensors saved from this app or from PyTorch (.npz, keys like conv1.weight)"}
#: input scalings: name -> (mean, std) applied after pixels/255
SCALINGS = {"0 – 1 (pixels ÷ 255)": (None, None),
            "ImageNet mean/std": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}
#: designs up to this much work re-run by themselves after an edit (VGG-16 at 224: 15 G)
AUTO_RUN_MACS = 2_000_000_000
AUTO_RUN_PARAMS = 30_000_000
SEED = 0
#: seeded weights are drawn this many values at a time, with progress and Cancel in between
#: (VGG-16's first fully connected layer holds 103 million)
DRAW_BLOCK_VALUES = 1 << 20
#: progress reaches the window at most this often (seconds; the last report always does)
PROGRESS_INTERVAL_S = 0.03
MAX_FILTERS = 256  # first-convolution filters drawn in the Run panel
#: how long a thread running Python may keep the interpreter's lock while another waits for it
#: (Python's default is 5 ms): the worker runs Python between NumPy calls, and the GUI thread
#: needs the lock for every slot and paint it runs in Python, so at 5 ms a frame could wait
#: tens of milliseconds in turns; at 1 ms it waits a few
GIL_SWITCH_S = 0.001
#: BLAS threads while a run works: all cores but one, which is left to the window (with every
#: core multiplying matrices, the GUI thread and the display server wait their turn for tens
#: of milliseconds); the command line keeps them all
RUN_BLAS_THREADS = max(1, (os.cpu_count() or 1) - 1)
#: why this prediction: the three views
SALIENCY, GRAD_CAM, OCCLUSION = "saliency", "grad-cam", "occlusion"
EXPLAIN_KINDS = {SALIENCY: "Saliency", GRAD_CAM: "Grad-CAM", OCCLUSION: "Occlusion"}
#: explanations kept per run result (each is a few pictures the input's size)
EXPLAIN_CACHE = 48


@dataclass
class InputImage:
    """The image the user chose: its pixels as decoded, and where it came from."""

    pixels: np.ndarray  # (H, W, 3) uint8
    name: str
    path: Path | None = None
    # what the image shows, where that is known (a sample of the built-in data, a validation
    # image): its class name and the data it comes from
    class_name: str | None = None
    data: str | None = None


@dataclass
class RunResult:
    """One forward pass: what ran, on what, and every node's output for the image."""

    design: Design  # the snapshot that ran (not the live design)
    analysis: Analysis
    network: Network
    x: np.ndarray  # (C, H, W) float32, the network's input
    activations: dict[str, np.ndarray]  # node id -> first sample's output
    fingerprint: tuple
    seconds: float
    notes: list[str] = field(default_factory=list)  # e.g. weights that did not fit
    classic: dict[str, Any] | None = None  # {"node": id, "names": [...]} with classic filters
    stats: dict[str, np.ndarray] = field(default_factory=dict)  # per-map statistics of maps
    # pictures for the Run panel, made on the worker: the input as RGB, the first convolution
    # and its first 256 filters as one image
    input_rgb: np.ndarray | None = None
    first_conv: str | None = None
    filters_rgb: np.ndarray | None = None
    # where the pass first produced inf or NaN (None if every value is finite), and that node
    # with every node after it: their maps say so
    nonfinite: NonFinite | None = None
    after_nonfinite: frozenset[str] = frozenset()
    # the shipped trained model whose weights ran (None: other weights), and what the weights
    # were, in the Run panel's words
    trained: TrainedModel | None = None
    weights_note: str = ""
    # class probabilities (net.predict) for a flat output of two or more values, else None;
    # whether the weights were random (predictions then mean nothing)
    probabilities: np.ndarray | None = None
    untrained: bool = False
    # the network input of a mid-grey pixel (per channel): occlusion's patch
    grey: np.ndarray | None = None

    @property
    def top_class(self) -> int | None:
        p = self.probabilities
        if p is None or not np.isfinite(p).all():
            return None
        return int(np.argmax(p))


@dataclass
class GradientResult:
    node_id: str
    unit: tuple[int, ...]
    gradient: np.ndarray  # shaped like x: (C, H, W)
    result: RunResult


@dataclass
class Explanation:
    """Why the network predicts a class (contract §5), for one run result: the engine's
    answer (``values``: saliency (C, H, W), Grad-CAM (H', W') at ``layer``, occlusion's
    probability drop (H, W)), the heat drawn from it (0 … 1, or −1 … 1 for occlusion) with
    its unscaled ``peak``, and ``picture``, the network input with the heat drawn over it."""

    kind: str
    class_index: int
    layer: str | None
    values: np.ndarray
    heat: np.ndarray
    peak: float
    picture: np.ndarray  # (H·s, W·s, 3) uint8
    seconds: float
    result: RunResult

    @property
    def key(self) -> tuple:
        return (self.kind, self.class_index, self.layer)


def fingerprint(design: Design) -> tuple:
    """What a run depends on: layers, parameters and connections, not card positions."""
    return (tuple((n.id, n.type, repr(sorted(n.params.items()))) for n in design.nodes),
            tuple(design.edges))


class _Job:
    """One piece of work for the worker thread, cancellable between layers."""

    def __init__(self, kind: str, work: Callable[["_Job"], Any], key: Any = None) -> None:
        self.kind, self.work, self.key = kind, work, key
        self.cancel = threading.Event()
        self.last_report = 0.0


class RunController(QObject):
    """The state behind the Run panel and the activation views (see the module docstring)."""

    image_changed = Signal()
    busy_changed = Signal(bool)
    progress = Signal(float, str)  # fraction, what is being done
    finished = Signal(object)  # RunResult
    gradient_ready = Signal(object)  # GradientResult
    explained = Signal(object)  # Explanation
    explain_progress = Signal(float, str)  # fraction, what is being done (explanations only)
    explain_stopped = Signal(object, str)  # key, why ("" when cancelled or superseded)
    failed = Signal(str)  # a message for the user
    cancelled = Signal()
    stale_changed = Signal(bool)
    settings_changed = Signal()
    weights_note_changed = Signal(str)  # which weights a run uses now, in the user's words
    reset = Signal()  # another design was opened: the results shown belong to none
    pick_cleared = Signal()  # the unit picked in the maps is gone from view: forget its field
    _done = Signal(object, object, object)  # job, outcome, error text (worker → GUI thread)

    def __init__(self, document, parent: QObject | None = None) -> None:
        super().__init__(parent)
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_S))
        self.document = document
        self.image: InputImage | None = None
        self.weights_mode = TRAINED  # the shipped trained weights where they fit
        self.weights_file: Path | None = None
        self.weights_label: str | None = None  # what FILE mode's weights are called
        self.weights_about: str | None = None  # what is known of them (use_weights' note)
        self._file_weights: dict[str, np.ndarray] | None = None
        # the shipped model the open design matches (None: none does), and the last one it
        # matched since it was opened (to say why its weights went away after an edit)
        self.trained: TrainedModel | None = None
        self._matched: TrainedModel | None = None
        self._trained_tensors: dict[Path, dict[str, np.ndarray]] = {}  # read once per file
        self._note = ""
        self.scaling = next(iter(SCALINGS))
        self.auto_run = True
        self.result: RunResult | None = None
        # explanations made for ``result`` (its weights, image and design) by (kind, class,
        # layer); a new result starts afresh. Kept here, not on the result, so that a result
        # and its explanations make no reference cycle: an old result goes as soon as nothing
        # shows it
        self.explanations: dict[tuple, Explanation] = {}
        self.stale = False
        self._weights_cache: dict[str, np.ndarray] = {}  # seeded tensors by key, reused by shape
        self._job: _Job | None = None
        self._queued: _Job | None = None
        self._thread: threading.Thread | None = None
        self._done.connect(self._on_done)
        self._check = QTimer(self, singleShot=True, interval=250)  # after edits settle
        self._check.timeout.connect(self._after_edit)
        document.refreshed.connect(lambda *_: self._check.start())
        document.design_replaced.connect(self._design_replaced)
        self._update_trained(forget=True)

    # ------------------------------------------------------------------ inputs

    def load_image(self, path: str | Path) -> None:
        """Decode an image file (raises ImageError with a message for the user)."""
        path = Path(path)
        pixels = read_image(path)
        sample = sample_for(path)
        self.set_image(InputImage(pixels, path.name, path,
                                  sample.class_name if sample is not None else None,
                                  sample.data if sample is not None else None))

    def set_image(self, image: InputImage) -> None:
        self.image = image
        self.image_changed.emit()
        self._changed_settings()

    def set_weights_mode(self, mode: str) -> None:
        if mode not in WEIGHT_MODES:
            raise ValueError(f"unknown weights mode {mode!r}")
        if mode == FILE and self._file_weights is None:
            raise WeightsError("load a weights file first")
        self.weights_mode = mode
        self._changed_settings()

    def load_weights(self, path: str | Path) -> None:
        """Read a weights file (contract §3; raises WeightsError) and use it."""
        self._file_weights = load_weights_file(path)
        self.weights_file = Path(path)
        self.weights_label = Path(path).name
        self.weights_about = None
        self.weights_mode = FILE
        self._changed_settings()

    def use_weights(self, weights: Mapping[str, np.ndarray], label: str,
                    note: str | None = None) -> None:
        """Use these tensors (contract §3 keys, e.g. weights just trained in this window) as a
        loaded weights file would be used, called ``label`` in the Run panel; ``note`` says what
        they are in its weights line ("trained in the app on builtin:shapes — 2 epochs, 71.3 %
        validation accuracy"). The caller's arrays are copied, so changing them later changes
        nothing here."""
        self._file_weights = {str(k): np.array(v, dtype=np.float32) for k, v in weights.items()}
        self.weights_file = None
        self.weights_label = str(label)
        self.weights_about = note
        self.weights_mode = FILE
        self._changed_settings()

    def set_scaling(self, name: str) -> None:
        if name not in SCALINGS:
            raise ValueError(f"unknown scaling {name!r}")
        self.scaling = name
        self._changed_settings()

    def set_auto_run(self, on: bool) -> None:
        self.auto_run = bool(on)
        if on:
            self._after_edit()

    def clear_pick(self) -> None:
        """The unit picked in the activation maps is no longer shown (another layer was
        selected): views that draw its field take it away (``pick_cleared``)."""
        self.pick_cleared.emit()

    def _design_replaced(self) -> None:
        self.cancel()
        self.result = None
        self.explanations = {}
        self._mark_stale(False)
        self._update_trained(forget=True)
        self.reset.emit()
        self._check.start()

    def _changed_settings(self) -> None:
        self._update_note()
        self.settings_changed.emit()
        self._mark_stale(self.result is not None)
        if self.auto_run and self.is_small() and self.image is not None:
            self.run()  # (without an image there is nothing to re-run: no complaint either)

    # ------------------------------------------------------------------ state

    def is_small(self) -> bool:
        """Small enough to re-run after every edit without the user asking."""
        analysis = self.document.analysis
        if not analysis.valid:
            return False
        totals = analysis.totals()
        return totals["macs"] <= AUTO_RUN_MACS and totals["params"] <= AUTO_RUN_PARAMS

    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def running(self) -> bool:
        """A forward pass (not just one unit's gradient) is under way."""
        return self._job is not None and self._job.kind == "run"

    def network_input(self) -> np.ndarray:
        """The current image as the design's Input takes it, (C, H, W) float32 (raises
        ImageError or InputError with a message)."""
        if self.image is None:
            raise ImageError("load an image first (or pick a sample)")
        inputs = [i for i in self.document.analysis.infos() if i.type == "Input" and i.shape is not None]
        if not inputs:
            raise InputError("the design has no Input node with a known shape")
        c, h, w = inputs[0].shape
        mean, std = scaling_for(self.scaling, c)
        return to_input(self.image.pixels, c, h, w, mean, std, self.image.name)

    # ------------------------------------------------------------------ which weights

    def _update_trained(self, forget: bool = False) -> None:
        """Find the shipped model the open design matches (cheap: designs of another size are
        only counted); ``forget`` (another design was opened): it has matched none before."""
        if forget:
            self._matched = None
        self.trained = find_trained(self.document.design)
        if self.trained is not None:
            self._matched = self.trained
        self._update_note()

    def _update_note(self) -> None:
        note = self.weights_note()
        if note != self._note:
            self._note = note
            self.weights_note_changed.emit(note)

    def weights_note(self) -> str:
        """Which weights a run of the open design uses now, in one line for the Run panel:
        "Weights: trained on builtin:shapes — 91.0 % validation accuracy", "Weights: random
        (seed 0) — untrained", …"""
        random = f"Weights: random (seed {SEED}) — untrained"
        model, mode = self.trained, self.weights_mode
        if mode == TRAINED:
            if model is not None:
                return (f"Weights: trained on {model.data} — {model.accuracy_text()} validation "
                        f"accuracy")
            if self._matched is not None:
                return (f"{random}: the layers were changed, so the weights trained for "
                        f"{self._matched.title} don't fit (undo the change to use them again)")
            return f"{random}: no trained weights ship for this design"
        if mode == FILE:
            if self.weights_about:
                return f"Weights: {self.weights_about}"
            return f"Weights: from {self.weights_label or 'a weights file'}"
        if mode == CLASSIC:
            text = (f"Weights: classic filters in the first convolution, random (seed {SEED}) "
                    f"elsewhere — untrained")
        else:
            text = random
        if model is not None:
            text += f" (weights trained on {model.data} ship for this design: choose Trained)"
        return text

    def trained_tensors(self, model: TrainedModel) -> dict[str, np.ndarray]:
        """The tensors of a shipped model, read from its file once (raises WeightsError)."""
        tensors = self._trained_tensors.get(model.weights)
        if tensors is None:
            tensors = load_weights_file(model.weights)
            self._trained_tensors[model.weights] = tensors
        return tensors

    def _after_edit(self) -> None:
        self._update_trained()
        if self.result is None:
            if self.image is not None and self.auto_run and self.is_small() and not self.busy:
                self.run()
            return
        stale = fingerprint(self.document.design) != self.result.fingerprint
        self._mark_stale(stale)
        if stale and self.auto_run and self.is_small():
            self.run()

    def _mark_stale(self, stale: bool) -> None:
        if stale != self.stale:
            self.stale = stale
            self.stale_changed.emit(stale)

    # ------------------------------------------------------------------ running

    def run(self) -> bool:
        """Start a forward pass of the current design on the current image. Returns False (and
        emits ``failed`` with the reason) if it can't start."""
        design = self.document.design
        if not self.document.analysis.valid:
            problems = self.document.analysis.design_problems()
            self.failed.emit(problems[0] if problems else
                             "the design has errors (see the Problems list): fix them, then run")
            return False
        try:
            x = self.network_input()
        except (ImageError, InputError) as exc:
            self.failed.emit(str(exc))
            return False
        snapshot = design.copy()
        mode, file_weights, cache = self.weights_mode, self._file_weights, self._weights_cache
        self._update_trained()  # the design as it is now (an edit may not have settled yet)
        model = self.trained if mode == TRAINED else None
        note = self.weights_note()
        held_trained = (self._trained_tensors.get(model.weights) if model is not None
                        else None)
        scaling = self.scaling

        def work(job: _Job) -> RunResult:
            t0 = time.perf_counter()
            report = self._reporter(job)
            report(0.0, "building the network")
            analysis = Analysis(snapshot)
            run_mode, tensors, used, notes = mode, file_weights, model, []
            if mode == TRAINED:
                run_mode, tensors = FILE, held_trained
            _check_memory(snapshot, run_mode, tensors, cache)  # before drawing any weights
            if used is not None and tensors is None:
                try:
                    tensors = self.trained_tensors(used)
                except (WeightsError, OSError) as exc:  # an incomplete installation
                    used = None
                    notes.append(f"the trained weights can't be read ({exc}): seeded random "
                                 f"instead")
            if mode == TRAINED and used is None:
                run_mode, tensors = RANDOM, None
            weights, fit_notes = _weights_for(
                analysis, run_mode, tensors, cache,
                lambda done, key: report(done, "drawing random weights"))
            notes += fit_notes
            classic = None
            if mode == CLASSIC:
                weights, node, names = apply_classic_filters(weights, analysis)
                if node is None:
                    notes.append("the design has no convolution: classic filters do not apply")
                else:
                    classic = {"node": node, "names": names}
            # the tensors are the controller's own and never changed: no half-gigabyte copy
            network = Network(snapshot, weights, copy_weights=False)
            acts = network.forward(x[None], lambda f, n: report(f, f"running {n}"))
            first = {k: v[0] for k, v in acts.items()}
            report(1.0, "checking the values")
            bad = network.find_nonfinite(first)
            after = frozenset(snapshot.downstream(bad.node_id)) if bad is not None else frozenset()
            # the activation panel's statistics, worked out here rather than on the GUI thread
            stats = {k: map_statistics(v) for k, v in first.items() if v.ndim == 3}
            conv = first_convolution(analysis)
            filters = (None if conv is None
                       else filter_images(network.weights[f"{conv}.weight"][:MAX_FILTERS]))
            untrained = mode in (RANDOM, CLASSIC) or (mode == TRAINED and used is None)
            return RunResult(snapshot, analysis, network, x, first, fingerprint(snapshot),
                             time.perf_counter() - t0, notes, classic, stats, display_rgb(x),
                             conv, filters, bad, after, used,
                             note if used is not None or model is None else
                             f"Weights: random (seed {SEED}) — untrained",
                             probabilities(analysis, first), untrained,
                             grey_input(scaling, x.shape[0]))

        self._submit(_Job("run", work))
        return True

    def compute_gradient(self, node_id: str, unit: tuple[int, ...]) -> bool:
        """The effective receptive field of one unit of the last result, on the worker."""
        result = self.result
        if result is None or node_id not in result.activations:
            return False

        def work(job: _Job) -> GradientResult:
            report = self._reporter(job)
            g = result.network.input_gradient(
                result.x[None], node_id, unit, lambda f, n: report(f, f"gradient through {n}"))
            return GradientResult(node_id, tuple(unit), g, result)

        self._submit(_Job("gradient", work))
        return True

    # ------------------------------------------------------------------ why this prediction

    def explanation(self, kind: str, class_index: int, layer: str | None = None
                    ) -> Explanation | None:
        """The explanation of the last result already made for these settings, or None."""
        result = self.result
        if result is None:
            return None
        return self.explanations.get(self._explain_key(result, kind, class_index, layer))

    def cam_layers(self, result: RunResult | None = None) -> tuple[list[str], str | None]:
        """(the layers with maps Grad-CAM can look at in the last result, the default one)."""
        result = result or self.result
        if result is None or result.probabilities is None:
            return [], None
        net = result.network
        try:
            logits = explaining.logits_node(net)
            default = explaining.default_cam_layer(net)
        except explaining.ExplainError:
            return [], None
        upstream = set(result.design.upstream(logits))
        layers = [n for n in result.design.node_ids
                  if n in upstream and n != net.input_id and len(net.infos[n].shape) == 3]
        # maps of one position (after global pooling) have nothing to point at, unless there
        # is nothing else (as default_cam_layer decides)
        spread = [n for n in layers if math.prod(net.infos[n].shape[1:]) > 1]
        layers = spread or layers
        return layers, default if default in layers else (layers[-1] if layers else None)

    def _explain_key(self, result: RunResult, kind: str, class_index: int,
                     layer: str | None) -> tuple:
        if kind not in EXPLAIN_KINDS:
            raise ValueError(f"unknown explanation {kind!r}")
        if kind == GRAD_CAM:
            layer = layer or self.cam_layers(result)[1]
        else:
            layer = None
        return (kind, int(class_index), layer)

    def explain(self, kind: str, class_index: int, layer: str | None = None
                ) -> Explanation | None:
        """Explain class ``class_index`` of the last result (``kind``: SALIENCY, GRAD_CAM at
        ``layer`` (None: the default layer), OCCLUSION). A cached explanation is returned
        there and then; otherwise it is made on the worker (``explained`` brings it, or
        ``explain_stopped``) and None is returned. Nothing starts while a run is under way or
        waiting (the explanation would belong to the old result): ask again when it ends."""
        result = self.result
        if result is None or result.probabilities is None:
            return None
        key = self._explain_key(result, kind, class_index, layer)
        cached = self.explanations.get(key)
        if cached is not None:
            return cached
        if self._run_pending():
            return None
        job = self._job
        if job is not None and job.kind == "explain" and job.key == key \
                and not job.cancel.is_set():
            return None  # already being made
        kind, c, layer = key

        def work(job: _Job) -> Explanation:
            t0 = time.perf_counter()
            report = self._reporter(job)
            name = EXPLAIN_KINDS[kind]
            net, x = result.network, result.x[None]
            progress = lambda f, n: report(f, f"{name}: {n}")  # noqa: E731
            if kind == SALIENCY:
                values = explaining.saliency(net, x, c, progress)
                heat, peak = saliency_heat(values)
                picture = heat_picture(result.input_rgb, heat)
            elif kind == GRAD_CAM:
                values = explaining.grad_cam(net, x, layer, c, progress)
                heat, peak = cam_heat(values)
                picture = heat_picture(result.input_rgb, heat, smooth=True)
            else:
                fill = result.grey if result.grey is not None else 0.5
                values = explaining.occlusion(
                    net, x, c, fill=fill,
                    progress=lambda f, n: report(f, f"{name}: occluded copies, {n}"))
                heat, peak = drop_heat(values)
                picture = heat_picture(result.input_rgb, heat, signed=True)
            report(1.0, f"{name}: done")
            return Explanation(kind, c, layer, values, heat, peak, picture,
                               time.perf_counter() - t0, result)

        self._submit(_Job("explain", work, key))
        return None

    def cancel_explanation(self) -> None:
        """Stop the explanation being made (a run or a gradient goes on)."""
        if self._queued is not None and self._queued.kind == "explain":
            queued, self._queued = self._queued, None
            self.explain_stopped.emit(queued.key, "")
        if self._job is not None and self._job.kind == "explain":
            self._job.cancel.set()

    @property
    def explaining(self) -> bool:
        return self._job is not None and self._job.kind == "explain"

    def _run_pending(self) -> bool:
        return any(j is not None and j.kind == "run" and not j.cancel.is_set()
                   for j in (self._job, self._queued))

    def cancel(self) -> None:
        queued, self._queued = self._queued, None
        if queued is not None and queued.kind == "explain":
            self.explain_stopped.emit(queued.key, "")
        if self._job is not None:
            self._job.cancel.set()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the worker (on closing the window)."""
        self.cancel()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _reporter(self, job: _Job) -> Callable[[float, str], bool]:
        def report(fraction: float, text: str) -> bool:
            if job.cancel.is_set():
                raise Cancelled(text)
            now = time.perf_counter()
            if now - job.last_report > PROGRESS_INTERVAL_S or fraction >= 1.0:
                job.last_report = now
                (self.explain_progress if job.kind == "explain" else self.progress).emit(
                    fraction, text)
            return True
        return report

    def _submit(self, job: _Job) -> None:
        if self._job is not None or self._finishing:
            # one at a time: the newest request waits, older ones go
            if self._job is not None:
                self._job.cancel.set()
            dropped, self._queued = self._queued, job
            if dropped is not None and dropped.kind == "explain":
                self.explain_stopped.emit(dropped.key, "")
            return
        self._start(job)

    def _start(self, job: _Job) -> None:
        self._job = job
        self.busy_changed.emit(True)
        (self.explain_progress if job.kind == "explain" else self.progress).emit(0.0, "starting")
        self._thread = threading.Thread(target=self._work, args=(job,), daemon=True,
                                        name=f"cnn-designer {job.kind}")
        self._thread.start()

    def _work(self, job: _Job) -> None:
        """The worker thread: never touches widgets; hands the outcome to the GUI thread."""
        try:
            with threadpool_limits(limits=RUN_BLAS_THREADS, user_api="blas"):
                outcome, error = job.work(job), None
        except Cancelled:
            outcome, error = None, None
        except MemoryError as exc:
            outcome, error = None, str(exc) or "not enough memory for this pass"
        except (InvalidDesign, InputError, WeightsError, ImageError, ValueError) as exc:
            outcome, error = None, str(exc)
        except Exception as exc:  # a bug: report it instead of losing the worker silently
            outcome, error = None, f"the run failed unexpectedly ({type(exc).__name__}: {exc})"
        self._done.emit(job, outcome, error)

    def _on_done(self, job: _Job, outcome: Any, error: str | None) -> None:
        self._job = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        queued, self._queued = self._queued, None
        # what the signals below start (the explanation view asks for one when a run ends)
        # waits its turn: the job queued before goes first, one worker at a time
        self._finishing = True
        try:
            self._announce(job, outcome, error, queued)
        finally:
            self._finishing = False
        if queued is None and self._queued is not None:
            queued, self._queued = self._queued, None
        if queued is not None:
            self._start(queued)
        else:
            self.busy_changed.emit(False)

    _finishing = False

    def _announce(self, job: _Job, outcome: Any, error: str | None,
                  queued: _Job | None) -> None:
        """Hand a job's outcome to the views (``_on_done``)."""
        if job.kind == "explain":
            if isinstance(outcome, Explanation):
                if outcome.result is self.result:
                    cache = self.explanations
                    while len(cache) >= EXPLAIN_CACHE:
                        cache.pop(next(iter(cache)))
                    cache[outcome.key] = outcome
                self.explained.emit(outcome)
            else:
                self.explain_stopped.emit(job.key, error or "")
        elif error is not None:
            self.failed.emit(error)
        elif outcome is None:
            if queued is None:
                self.cancelled.emit()
        elif isinstance(outcome, RunResult):
            self.result = outcome
            self.explanations = {}
            self._mark_stale(outcome.fingerprint != fingerprint(self.document.design))
            self.finished.emit(outcome)
        else:
            self.gradient_ready.emit(outcome)


def sample_for(path: Path):
    """The bundled sample at ``path`` (its class, where it has one), or None."""
    try:
        resolved = Path(path).resolve()
        return next((s for s in sample_images() if s.path.resolve() == resolved), None)
    except (OSError, ValueError):  # an unreadable index: the image is used all the same
        return None


def scaling_for(name: str, channels: int) -> tuple:
    """(mean, std) of a scaling for an Input of ``channels`` (grey: the channels' averages)."""
    mean, std = SCALINGS[name]
    if mean is not None and channels != 3:
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    return mean, std


def grey_input(scaling: str, channels: int) -> np.ndarray:
    """The network input of a mid-grey pixel (128 of 255) under a scaling, one per channel."""
    mean, std = scaling_for(scaling, channels)
    value = np.full(channels, 128 / 255, np.float64)
    if mean is not None:
        value = (value - np.resize(np.asarray(mean, np.float64), channels)) / \
            np.resize(np.asarray(std, np.float64), channels)
    return value.astype(np.float32)


def probabilities(analysis: Analysis, first: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The class probabilities of a run (``net.predict`` from the activations: the output
    Softmax's, or the softmax of the output), for a flat output of two or more values; None
    for any other output."""
    out = analysis.output
    y = first.get(out) if out is not None else None
    if y is None or y.ndim != 1 or len(y) < 2:
        return None
    if analysis.info(out).type == "Softmax":
        return np.asarray(y, np.float32).copy()
    with np.errstate(over="ignore", invalid="ignore"):
        return ops.softmax(np.asarray(y, np.float32)[None])[0]


def _check_memory(design: Design, mode: str, file_weights: dict[str, np.ndarray] | None,
                  cache: dict[str, np.ndarray]) -> None:
    """Refuse a run (NotEnoughMemory, with what it needs and what is free) before anything big
    is allocated: the weights still to draw, the activations and the working space. Tensors
    held already (drawn for an earlier run, or from the weights file) don't count."""
    probe = Network(design)  # weights drawn lazily: building it allocates nothing big
    held = 0
    for key, shape in probe.shapes.items():
        tensor = file_weights.get(key) if mode == FILE and file_weights is not None else None
        if tensor is None or tuple(tensor.shape) != tuple(shape):
            tensor = cache.get(key)
        if tensor is not None and tuple(tensor.shape) == tuple(shape):
            held += tensor.nbytes
    probe.check_memory(1, need=max(0, probe.estimate_bytes(1) - held))


def draw_seeded(key: str, shape: tuple[int, ...], seed: int = SEED,
                progress: Callable[[int], Any] = lambda done: None,
                block: int | None = None) -> np.ndarray:
    """One tensor of ``designer.engine.weights.init_weights``, drawn ``block`` values at a time
    (default ``DRAW_BLOCK_VALUES``) with ``progress(values drawn so far)`` after each block (it
    raises Cancelled to stop)."""
    return init_tensor(key, shape, seed, progress,
                       DRAW_BLOCK_VALUES if block is None else max(1, int(block)))


def _weights_for(analysis: Analysis, mode: str, file_weights: dict[str, np.ndarray] | None,
                 cache: dict[str, np.ndarray],
                 progress: Callable[[float, str], Any] = lambda done, key: None
                 ) -> tuple[dict[str, np.ndarray], list[str]]:
    """The tensors for a run: from the file where they fit (in FILE mode), else seeded random.
    Seeded tensors are cached by key, so re-running after an edit only draws the new ones;
    ``progress(fraction of the values to draw, key)`` is called before each tensor and after
    each block of a large one (it raises Cancelled to stop)."""
    shapes = expected_tensors(analysis)
    weights: dict[str, np.ndarray] = {}
    notes: list[str] = []
    unfit = []
    if mode == FILE and file_weights is not None:
        for key, shape in shapes.items():
            tensor = file_weights.get(key)
            if tensor is not None and tuple(tensor.shape) == tuple(shape):
                weights[key] = tensor
            else:
                unfit.append(key)
        if unfit:
            shown = ", ".join(unfit[:4]) + (f" and {num(len(unfit) - 4)} more" if len(unfit) > 4
                                            else "")
            notes.append(f"{len(unfit)} tensor{'s' if len(unfit) != 1 else ''} missing from the "
                         f"weights file or of another shape ({shown}): seeded random instead")
    missing = {k: s for k, s in shapes.items() if k not in weights
               and not (k in cache and cache[k].shape == tuple(s))}
    total = max(1, sum(math.prod(s) for s in missing.values()))
    drawn = 0
    for key, shape in missing.items():  # in blocks, so progress shows and Cancel is heard
        progress(drawn / total, key)
        try:
            cache[key] = draw_seeded(key, shape, SEED,
                                     lambda done, key=key, before=drawn:
                                     progress((before + done) / total, key))
            drawn += math.prod(shape)
        except (MemoryError, ValueError):  # more than free memory said, or NumPy can index
            raise NotEnoughMemory(
                f"the weights {key} {'×'.join(num(s) for s in shape)} need about "
                f"{mib(4 * math.prod(shape))}, but only {mib(available_memory() or 0)} is "
                f"free; use fewer or smaller layers, or close other programs") from None
    if missing:
        progress(1.0, key)
    for key in shapes:
        if key not in weights:  # (setdefault would look the key up in the cache regardless)
            weights[key] = cache[key]
    for key in [k for k in cache if k not in shapes]:  # forget layers that are gone
        del cache[key]
    return weights, notes
