"""The executor: a valid design plus weights, run forward on a batch, every activation kept."""
from __future__ import annotations

import contextlib
import math
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from designer.core.analysis import Analysis
from designer.core.design import Design
from designer.engine import backward, ops, training
from designer.engine.activations import ACTIVATIONS
from designer.engine.memory import NotEnoughMemory, available_memory, keep_freed_memory, mib
from designer.engine.training import TrainingError
from designer.engine.weights import (check_weights, expected_tensors, in_engine_layout,
                                     init_weights, load_weights_file, save_weights_file,
                                     weights_bytes)

#: progress(fraction done, id of the node being computed); returning False cancels the pass
Progress = Callable[[float, str], Any]


class InvalidDesign(ValueError):
    """The design has errors, so it can't run. ``problems`` lists them as text."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:5] + ([f"… and {len(problems) - 5} more"] if len(problems) > 5 else [])
        super().__init__("the design has errors, so it can't run:\n  " + "\n  ".join(shown))


class InputError(ValueError):
    """An input array that doesn't fit the design's Input."""


class Cancelled(Exception):
    """The progress callback asked to stop; no partial result is returned."""


_mib = mib


@dataclass(frozen=True)
class NonFinite:
    """Where a pass first produced infinite or NaN values (see :func:`find_nonfinite`)."""

    node_id: str  #: first node, in topological order, whose output holds inf or NaN
    kind: str  #: "overflow" (its output holds an inf) or "nan" (NaN but no inf)
    largest: float  #: the largest finite |value| among that node's inputs (nan if none)
    message: str  #: what to tell the user, naming the node and what to do


def _short(value: float) -> str:
    """7.9e29, 3.5, 0.0012: two significant digits, no "+" or leading zeros in the exponent."""
    text = f"{value:.2g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _scan(a: np.ndarray) -> tuple[bool, bool]:
    """(holds an inf, holds a NaN), one pass of np.isfinite over chunks, no big temporaries."""
    if a.dtype.kind not in "fc":
        return False, False
    has_inf = has_nan = False
    for chunk in ops.chunks(a):
        if not np.isfinite(chunk).all():
            has_inf = has_inf or bool(np.isinf(chunk).any())
            has_nan = has_nan or bool(np.isnan(chunk).any())
            if has_inf and has_nan:
                break
    return has_inf, has_nan


def _largest_finite(arrays: Sequence[np.ndarray]) -> float:
    best = -1.0
    for a in arrays:
        for chunk in ops.chunks(a):
            finite = np.isfinite(chunk)
            if finite.any():
                best = max(best, float(np.max(np.abs(chunk), where=finite, initial=0.0)))
    return best if best >= 0 else math.nan


#: values this large going into a layer make its sums overflow (float32 ends at 3.4e38): NaN
#: coming out of them is an overflow (inf − inf), not a NaN from the weights
OVERFLOW_GOING_IN = 1e30


def find_nonfinite(acts: Mapping[str, np.ndarray], order: Sequence[str],
                   sources: Callable[[str], Sequence[str]] | Mapping[str, Sequence[str]]
                   ) -> NonFinite | None:
    """The first node in ``order`` (topological) whose activation in ``acts`` holds inf or NaN,
    with the largest finite magnitude going into it and a message for the user; None if every
    activation is finite. Nodes missing from ``acts`` are skipped. ``sources`` gives a node's
    inputs (a function, as ``Design.sources``, or a mapping). One chunked pass per activation,
    stopping at the first bad one; safe to call from several threads."""
    source_of = sources if callable(sources) else (lambda n: sources.get(n, ()))
    for node_id in order:
        a = acts.get(node_id)
        if a is None:
            continue
        has_inf, has_nan = _scan(np.asarray(a))
        if not (has_inf or has_nan):
            continue
        inputs = [np.asarray(acts[s]) for s in source_of(node_id) if s in acts]
        largest = _largest_finite(inputs) if inputs else math.nan
        # sums of huge values overflow both ways and meet as inf − inf = NaN in one layer:
        # that is an overflow too, not a NaN from the weights
        overflow = has_inf or (not math.isnan(largest) and largest >= OVERFLOW_GOING_IN)
        kind = "overflow" if overflow else "nan"
        going_in = "" if math.isnan(largest) else f" ({_short(largest)} going in)"
        if not list(source_of(node_id)):
            what = "infinite" if has_inf else "NaN"
            message = (f"the input ({node_id}) holds {what} values, and every layer after it "
                       f"may too: check the input and its scaling")
        elif overflow:
            message = (f"activations overflow from {node_id} on{going_in}: add normalization "
                       f"(BatchNorm2d) or use smaller weights")
        else:
            message = (f"activations become NaN from {node_id} on{going_in}: check the weights "
                       f"(a negative running_var, say) and the input, or add normalization "
                       f"(BatchNorm2d)")
        return NonFinite(node_id, kind, largest, message)
    return None


#: memory for small things a pass needs besides its arrays: chunk-sized temporaries of
#: elementwise ops (GELU's float64 work is the largest), statistics, bookkeeping
FIXED_BYTES = 32 * 2**20
#: a convolution's patch matrix (im2col) up to this size is kept by the training forward pass
#: for the backward pass, which then doesn't copy the patches again
KEEP_PATCHES_BYTES = 8 * 2**20
#: elementwise ops and pooling of a training pass split the batch over threads from this many
#: values of input on, convolutions from this many multiply-adds (below, starting the threads
#: costs about what they save: some 50 µs)
PARALLEL_VALUES = 1 << 19
PARALLEL_MACS = 1 << 22
#: a training pass splits its batch over threads only if its largest convolution has this many
#: multiply-adds (8 M: on an idle 2-core machine LeNet-5's 15 M at batch 64 take 6.7 ms a step
#: split, 8.2 ms on the BLAS's own threads; below, the BLAS's threads do better)
PARALLEL_PASS_MACS = 1 << 23
#: what a training step needs besides the arrays its estimate counts (which get an eighth more
#: for the allocator's slack and small temporaries): the matrix library's working buffers,
#: Python's objects
TRAIN_FIXED_BYTES = 6 * 2**20
#: the matrix library's buffers for each of its threads beyond the first (OpenBLAS: about
#: 7 MiB), counted when a training pass leaves it several threads (a batch of one)
BLAS_THREAD_BYTES = 8 * 2**20
#: a Winograd layer's transformed weight is kept between passes (with a copy of the weight, to
#: notice a change) for weights up to this size: 256 × 256 channels; larger layers transform
#: theirs each pass, a small part of their time
WINOGRAD_KEEP_BYTES = 4 * 2**20


class _Cost:
    """What one node costs in memory, in bytes (see ``Network._costs``)."""
    __slots__ = ("act", "temp", "run_temp", "scratch", "grad", "grad_temp", "grad_view", "conv",
                 "kind")

    def __init__(self) -> None:
        self.act = 0  # its output, per sample (0 when it is a view of its input)
        self.temp = 0  # temporaries while it runs forward in a training pass, per sample
        self.run_temp: int | None = None  # ... in an inference pass, if not ``temp``
        self.kind = ""  # a convolution's way in an inference pass (ops.conv_kind)
        self.scratch = 0  # the im2col block buffer it needs for one sample (per thread, kept)
        self.conv: tuple[int, int, int] | None = None  # a convolution's (oh, ow, kh·kw·C)
        self.grad = 0  # the gradient it passes back to (each of) its inputs, float64, per sample
        self.grad_temp = 0  # temporaries of its backward op, per sample
        self.grad_view = False  # its backward op passes views of the incoming gradient on


class Network:
    """A runnable design. Build with :func:`build`.

    **Memory.** Building allocates nothing big: seeded weights are drawn on first use
    (``forward``, ``input_gradient`` or ``weights``), after a check that they fit in free
    memory, and every pass first estimates what it needs (``estimate_bytes``) and refuses with
    ``NotEnoughMemory`` (both numbers in the message) rather than start what can't finish.

    **Threads.** ``forward``, ``input_gradient``, ``find_nonfinite``, ``estimate_bytes`` and
    ``weights`` may be called from several threads at once on one network and give what one
    thread would: each thread builds its im2col bands in a buffer of its own, and the lazily
    drawn weights and the cached convolution matrices are made once, under a lock. (Changing the
    arrays of ``weights`` while another thread runs is the caller's own race.) ``gradients``
    (training mode) is thread-safe too, except for the BatchNorm2d running statistics it
    updates at the end of each pass: concurrent calls on one network update them one after
    another (under a lock) in no set order, and an eval-mode pass running meanwhile may see
    them before or after an update. A convolution matrix whose weight has changed since it
    was cached (an optimizer step) is made again."""

    def __init__(self, design: Design, weights: Mapping[str, Any] | str | os.PathLike | None = None,
                 seed: int = 0, scratch_bytes: int = ops.DEFAULT_SCRATCH_BYTES,
                 copy_weights: bool = True) -> None:
        if not isinstance(design, Design):
            raise TypeError(f"build takes a Design (from designer.load_design), not "
                            f"{type(design).__name__}")
        if type(seed) is not int:
            raise TypeError(f"seed must be a whole number, not {type(seed).__name__}")
        self.design = design
        self.analysis = Analysis(design)
        if not self.analysis.valid:
            problems = self.analysis.design_problems() + [
                str(p) for p in self.analysis.problems() if p.severity == "error"]
            raise InvalidDesign(problems)
        self.scratch_bytes = int(scratch_bytes)
        self.order = self.analysis.order
        self.infos = {i.id: i for i in self.analysis.infos()}
        self.input_id = next(n for n in self.order if self.infos[n].type == "Input")
        self.input_shape = self.infos[self.input_id].shape
        self.shapes = expected_tensors(self.analysis)
        self._seed = seed
        self._lock = threading.Lock()  # lazy weights and the matrix cache
        self._local = threading.local()  # per thread: the im2col band buffer
        self._weights: dict[str, np.ndarray] | None = None
        if isinstance(weights, (str, os.PathLike)):
            self._weights = load_weights_file(weights, self.shapes)
        elif weights is not None:
            self._weights = check_weights(weights, self.shapes, copy=copy_weights)
        self._matrices: dict[str, np.ndarray] = {}  # conv weights in the engine's patch order
        # Winograd layers' transformed weights, each with a copy of the weight it was made from
        self._winograd: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # training (see gradients): Dropout's generator when the caller gives none, and the
        # batches each BatchNorm2d has counted (PyTorch's num_batches_tracked)
        self._rng = np.random.default_rng(seed)
        self._rng_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.batches_tracked: dict[str, int] = {}
        # relative cost of each node, for an honest progress fraction
        self._work = {n: self.infos[n].macs + math.prod(self.infos[n].shape) for n in self.order}
        self._cost = {n: self._costs(n) for n in self.order}
        self._weight_bytes = weights_bytes(self.shapes)
        keep_freed_memory()  # passes reuse the pages of the last one's freed arrays
        self._matrix_bytes = sum(4 * math.prod(self.shapes[f"{n}.weight"]) for n in self.order
                                 if self.infos[n].type == "Conv2d")

    # ------------------------------------------------------------------ weights

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """``{"conv1.weight": array, ...}`` in PyTorch's layouts (contract §3). Seeded weights
        are drawn on first access (NotEnoughMemory if they don't fit in free memory)."""
        weights = self._weights
        if weights is None:
            with self._lock:
                if self._weights is None:
                    self._weights = self._draw_weights()
                weights = self._weights
        return weights

    def _draw_weights(self) -> dict[str, np.ndarray]:
        need = self._weight_bytes
        free = available_memory()
        refusal = (f"the weights of this design need about {_mib(need)}, but only "
                   f"{{free}} is free; use fewer or smaller layers, or close other programs")
        if free is not None and need > free:
            raise NotEnoughMemory(refusal.format(free=_mib(free)))
        try:
            return init_weights(self.shapes, self._seed)
        except (MemoryError, ValueError):  # more than free memory said, or than NumPy can index
            raise NotEnoughMemory(refusal.format(free=_mib(available_memory() or 0))) from None

    def save_weights(self, path: str | os.PathLike) -> None:
        save_weights_file(self.weights, path)

    # ------------------------------------------------------------------ memory

    def _costs(self, node_id: str) -> _Cost:
        """What ``node_id`` allocates, worked out from shapes and parameters alone (exact
        integers, so astronomically large designs are measured, not overflowed)."""
        info = self.infos[node_id]
        t, v = info.type, info.values
        cost = _Cost()
        out = math.prod(info.shape)
        cost.act = 4 * out
        sources = self.design.sources(node_id)
        if not sources:
            return cost
        src = self.infos[sources[0]].shape
        inp = math.prod(src)
        cost.grad = 8 * inp
        if t == "Conv2d":
            c, h, w = src
            k, cg, kh, kw = self.shapes[f"{node_id}.weight"]
            groups = v["groups"]
            (pt, pb), (pl, pr) = ops.pad_amounts(v["padding"], (kh, kw), v["dilation"])
            padded = (h + pt + pb) * (w + pl + pr) * c
            oh, ow = info.shape[1:]
            cost.conv = (oh, ow, kh * kw * c)
            cost.scratch = 4 * ops.conv_block_values(1, oh, ow, kh * kw * c, self.scratch_bytes)
            cost.temp = 4 * padded + (4 * oh * ow * (k // groups) if groups > 1 else 0)
            cost.kind = ops.conv_kind(c, (k, cg, kh, kw), groups, v["padding"], v["dilation"],
                                      v["stride"], (oh, ow))
            if cost.kind == "winograd":  # the padded copy, up to whole 2×2 tiles
                cost.run_temp = 4 * (2 * (-(-oh // 2)) + 2) * (2 * (-(-ow // 2)) + 2) * c
                cost.scratch = 0  # its block buffers: see _scratch_need
            elif cost.kind == "depthwise":  # an inference pass: the padded copy, no im2col
                values, _ = ops.depthwise_temp_values(c, h, w, (k, cg, kh, kw), v["stride"],
                                                      v["padding"], v["dilation"], 1)
                cost.run_temp, cost.scratch = 4 * values, 0
            elif cost.kind == "pointwise":  # a copy of the pixels it reads if strided (or
                # an Add of maps in two layouts gave a third); none of channels-last or NCHW maps
                odd = self.infos[sources[0]].type == "Add" or tuple(v["stride"]) != (1, 1)
                cost.run_temp, cost.scratch = (4 * oh * ow * c if odd else 0), 0
            else:
                cost.run_temp = cost.temp
            cost.grad = 8 * padded  # the gradient is a view of the padded buffer
            cost.grad_temp = 8 * cg * oh * ow + 8 * k * cg * kh * kw  # one tap; float64 weight
        elif t in ("MaxPool2d", "AvgPool2d"):
            c, h, w = src
            kernel, stride, padding = v["kernel_size"], v["stride"], v["padding"]
            dilation = v["dilation"] if t == "MaxPool2d" else (1, 1)
            _, xh = ops._pool_geometry(h, kernel[0], stride[0], padding[0], dilation[0],
                                       v["ceil_mode"])
            _, xw = ops._pool_geometry(w, kernel[1], stride[1], padding[1], dilation[1],
                                       v["ceil_mode"])
            padded = c * (h + 2 * padding[0] + xh) * (w + 2 * padding[1] + xw)
            if padding[0] or padding[1] or xh or xw:
                cost.temp = 4 * padded
            if t == "MaxPool2d":  # and the maxima over columns
                cost.temp = 4 * ops.max_pool_temp_values(c, h, w, kernel, stride, padding,
                                                         dilation, v["ceil_mode"])
            cost.grad = 8 * padded
            cost.grad_temp = (8 * padded + 16 * out) if t == "MaxPool2d" else 8 * out
        elif t == "AdaptiveAvgPool2d":
            c, h, w = src
            oh, ow = info.shape[1:]
            cost.temp = 0 if (h % oh == 0 and w % ow == 0) else 4 * c * oh * w
        elif t == "Softmax":
            cost.temp = 2 * 4 * (out // info.shape[0])  # the max and the sum over channels
            cost.grad_temp = 3 * 8 * inp
        elif t in ("LayerNorm", "GELU"):
            cost.grad_temp = 5 * 8 * inp
        elif t in ("Sigmoid", "Tanh", "ReLU", "LeakyReLU"):
            cost.grad_temp = 8 * inp + inp  # float64 copy of the output, or a mask
        elif t in ACTIVATIONS:
            cost.grad_temp = 3 * 8 * inp  # the input, a factor and the result in float64
        elif t in ("Dropout", "Identity"):
            cost.act = 0  # its output is its input
            cost.grad, cost.grad_view = 0, True
        elif t in ("Flatten", "Add", "Concat"):
            cost.grad, cost.grad_view = 0, True
        return cost

    def _matrix_need(self, inference: bool = False) -> int:
        """Bytes of the convolution matrices a pass copies: none for a weight in the engine's
        layout (drawn, loaded or copied weights are; see ``weights.engine_layout``), whose
        matrix is a view of it. An inference pass makes none for a depthwise or 1×1 layer, and
        keeps a Winograd layer's transformed weight with a copy of the weight."""
        weights = self._weights
        total = 0
        for n in self.order:
            kind = self._cost[n].kind
            if inference and kind == "winograd":  # its transformed weight, kept (and its
                # matrix: a small batch goes by im2col)
                size = 4 * math.prod(self.shapes[f"{n}.weight"])
                total += size * 25 // 9 if size <= WINOGRAD_KEEP_BYTES else 0
            if self.infos[n].type != "Conv2d" or (inference and kind not in ("im2col",
                                                                              "winograd")):
                continue
            weight = None if weights is None else weights.get(f"{n}.weight")
            if weight is not None and not in_engine_layout(weight):
                total += 4 * math.prod(self.shapes[f"{n}.weight"])
        return total

    def _scratch_need(self, nodes: Sequence[str], batch: int, winograd: bool = True) -> int:
        """Bytes of the im2col block buffer a pass of ``batch`` samples through ``nodes`` needs
        (one per thread, kept between layers: the largest convolution's); ``winograd``: False
        for a pass that does its Winograd layers by im2col (see ``_forward``)."""
        kept = made = 0  # the band buffer, kept; what a layer makes and frees
        for n in nodes:
            cost = self._cost[n]
            if cost.kind == "im2col" or (cost.kind == "winograd" and not (
                    winograd and self._winograd_now(n, batch))):
                kept = max(kept, 4 * ops.conv_block_values(batch, *cost.conv, self.scratch_bytes))
            elif cost.kind == "winograd":  # its block buffers, in the band buffer
                (oh, ow), (k, c) = self.infos[n].shape[1:], self.shapes[f"{n}.weight"][:2]
                _, values = ops.winograd_block_values(oh, ow, c, k, batch)
                kept = max(kept, 4 * values)
                made = max(made, 4 * 16 * k * c)  # the transformed weight, if not kept
            elif cost.kind == "depthwise":  # its block buffers
                c, h, w = self.infos[self.design.sources(n)[0]].shape
                v = self.infos[n].values
                parts = ops.worker_count()
                _, values = ops.depthwise_temp_values(c, h, w, self.shapes[f"{n}.weight"],
                                                      v["stride"], v["padding"], v["dilation"],
                                                      parts)
                made = max(made, 4 * values + BLAS_THREAD_BYTES * (parts - 1))
        return kept + made

    def _held_bytes(self) -> int:
        """Bytes this network already holds of what ``estimate_bytes`` counts (weights drawn or
        given, cached matrices, this thread's band buffer)."""
        held = self._weight_bytes if self._weights is not None else 0
        held += sum(m.nbytes for m in list(self._matrices.values()))
        held += sum(w.nbytes + u.nbytes for w, u in list(self._winograd.values()))
        scratch = getattr(self._local, "scratch", None)
        workspace = getattr(self._local, "workspace", None)
        parts = getattr(self._local, "part_scratch", {})
        return (held + (scratch.nbytes if scratch is not None else 0)
                + (workspace.nbytes if workspace is not None else 0)
                + sum(a.nbytes for a in parts.values() if a is not None))

    def _forward_peak(self, nodes: Sequence[str], batch: int) -> tuple[int, int]:
        """(peak bytes of the activations and one layer's temporaries, bytes of all activations)
        for running ``nodes`` in order, every activation kept."""
        kept = peak = 0
        for node_id in nodes:
            cost = self._cost[node_id]
            kept += cost.act * batch
            temp = cost.temp if cost.run_temp is None else cost.run_temp
            peak = max(peak, kept + temp * batch)
        return peak, kept

    def _backward_peak(self, nodes: Sequence[str], node_id: str) -> int:
        """Peak bytes of the float64 gradients alive at once while going back from ``node_id``
        through ``nodes`` (one sample), with the largest op's temporaries."""
        pending = {node_id: 8 * math.prod(self.infos[node_id].shape)}
        peak = sum(pending.values())
        for n in reversed(nodes):
            if n not in pending:
                continue
            cost = self._cost[n]
            alive = sum(pending.values())
            incoming = pending.pop(n)
            made = 0
            for source in self.design.sources(n):
                size = incoming if cost.grad_view else cost.grad
                if source in pending:  # summed into a new array
                    made += size
                    pending[source] = max(pending[source], size)
                else:
                    made += 0 if cost.grad_view else size
                    pending[source] = size
            peak = max(peak, alive + cost.grad_temp + made)
        return peak + 4 * math.prod(self.input_shape)  # the float32 result

    def estimate_bytes(self, batch: int = 1) -> int:
        """Memory a forward pass of ``batch`` samples needs, in all: the weights (drawn or not)
        and their convolution matrices, the im2col band buffer, and the largest sum, over the
        layers, of every activation made so far (all are kept) and that layer's temporaries
        (padded copies for convolution and pooling, row sums for adaptive pooling, ...). Worked
        out from shapes alone, in exact integers."""
        parts = self._forward_parts(batch)
        if parts > 1:  # split (see _forward_split): every activation, and each part's own
            # activations still to be read and its band buffer
            part = -(-batch // parts)
            _, kept = self._forward_peak(self.order, batch)
            need = kept + parts * (self._live_peak(self.order, part)
                                   + self._scratch_need(self.order, part))
        else:
            peak, _ = self._forward_peak(self.order, batch)
            need = peak + self._scratch_need(self.order, batch)
        return self._weight_bytes + self._matrix_need(inference=True) + need + FIXED_BYTES

    def _live_peak(self, nodes: Sequence[str], batch: int) -> int:
        """Peak bytes of the activations a part of a split pass (``_forward_split``) holds at
        once running ``nodes`` for ``batch`` samples: those later layers still read, the layer's
        output and its temporaries. Its input, and the outputs of the layers that write into the
        batch's arrays (WRITE_INTO; but a 1×1 convolution may have NCHW maps in, and make its
        own), are views of the batch's."""
        left = {n: len(self._consumers(n)) for n in nodes}
        act = {n: 0 if n == self.input_id or (
            self.infos[n].type in WRITE_INTO and self._cost[n].kind != "pointwise")
            else self._cost[n].act * batch for n in nodes}
        live = peak = 0
        for node_id in nodes:
            cost = self._cost[node_id]
            temp = cost.temp if cost.run_temp is None else cost.run_temp
            peak = max(peak, live + act[node_id] + temp * batch)
            live += act[node_id]
            for s in self.design.sources(node_id):
                left[s] -= 1
                if left[s] == 0:
                    live -= act[s]
            if left[node_id] == 0:
                live -= act[node_id]
        return peak

    def estimate_gradient_bytes(self, node_id: str) -> int:
        """Memory ``input_gradient(x, node_id, ...)`` needs in all: the forward pass of the
        layers ``node_id`` depends on (one sample), then float64 gradients going back."""
        nodes = self._upstream(node_id)
        peak, kept = self._forward_peak(nodes, 1)
        scratch = self._scratch_need(nodes, 1, winograd=False)
        return (self._weight_bytes + self._matrix_bytes + scratch + FIXED_BYTES
                + max(peak, kept + self._backward_peak(nodes, node_id)))

    def _upstream(self, node_id: str) -> list[str]:
        needed = set(self.design.upstream(node_id))  # valid design: all fed by the Input
        return [n for n in self.order if n in needed]

    def check_memory(self, batch: int = 1, need: int | None = None) -> None:
        """Raise NotEnoughMemory if a pass of ``batch`` samples (or one needing ``need`` bytes
        in all) won't fit in free memory beside what the network already holds."""
        if need is None:
            need = self.estimate_bytes(batch)
        need = max(0, need - self._held_bytes())
        free = available_memory()
        if free is not None and need > free:
            raise NotEnoughMemory(
                f"this pass needs about {_mib(need)} (activations of every layer for {batch} "
                f"image{'s' if batch != 1 else ''}, weights and working space), but only "
                f"{_mib(free)} is free; use a smaller input size or batch, or close other programs")

    # ------------------------------------------------------------------ passes

    def _input_array(self, x: Any) -> np.ndarray:
        """The input as an array (N, C, H, W) after checking its type and shape; not converted."""
        try:
            array = np.asarray(x)
        except Exception:
            raise InputError("the input is not an array") from None
        if array.dtype.kind not in "fiub":
            raise InputError(f"the input holds {array.dtype} values, not numbers")
        if array.ndim == 3:
            array = array[None]
        c, h, w = self.input_shape
        if array.ndim != 4 or tuple(array.shape[1:]) != (c, h, w):
            raise InputError(f"the input has shape {tuple(array.shape)}, but this design's Input "
                             f"takes (N, {c}, {h}, {w}) (or ({c}, {h}, {w}) for one image)")
        if array.shape[0] < 1:
            raise InputError("the input batch is empty")
        return array

    def prepare_input(self, x: Any) -> np.ndarray:
        """Check and convert an input batch: float array (N, C, H, W), or (C, H, W) for one."""
        return np.ascontiguousarray(self._input_array(x), dtype=np.float32)

    def forward(self, x: Any, progress: Progress | None = None) -> dict[str, np.ndarray]:
        """Run every node. x: float32 (N, C, H, W). Returns {node id: activation} (batch first),
        every activation float32. Thread-safe (see the class).

        A batch with a sample for each of the engine's threads and convolutions large enough
        is split over them, each part through the whole network (see ``_forward_split``);
        the result is the same. Memory is checked first (NotEnoughMemory); seeded weights are
        drawn on the first pass.
        Where values overflow, no NumPy warning is printed: ``find_nonfinite`` says where.
        ``progress(fraction, node_id)`` is called before each layer, between chunks of large
        ones, and with 1.0 at the end; if it returns False the pass stops with ``Cancelled``."""
        x = self._input_array(x)
        self.check_memory(x.shape[0])
        x = np.ascontiguousarray(x, dtype=np.float32)
        weights = self.weights
        total = sum(self._work.values()) or 1

        def report(fraction: float, node_id: str) -> None:
            if progress is not None and progress(min(1.0, fraction), node_id) is False:
                raise Cancelled(f"cancelled at {node_id}")

        parts = self._forward_parts(x.shape[0])
        if parts > 1:
            return self._forward_split(x, weights, parts, report, total)
        return self._forward(x, weights, self.order, report, total)

    def _forward(self, x: np.ndarray, weights: Mapping[str, np.ndarray], nodes: list[str],
                 report: Callable[[float, str], None], total: float, winograd: bool = True
                 ) -> dict[str, np.ndarray]:
        """Run ``nodes`` (in topological order, each with everything it needs among them).
        ``winograd``: False for the forward pass of a gradient: its Winograd layers are done by
        im2col, the direct sums, so that the ReLUs it goes back through open and close where
        PyTorch's do (Winograd's rounding, about 1e-6, flips the odd unit that is within
        rounding of 0, and the gradient through it, up to 1 % of the largest)."""
        done = 0
        acts: dict[str, np.ndarray] = {}
        for node_id in nodes:
            report(done / total, node_id)
            work = self._work[node_id]
            base = done

            def hook(fraction: float, base=base, work=work, node_id=node_id) -> None:
                report((base + fraction * work) / total, node_id)

            inputs = [acts[s] for s in self.design.sources(node_id)]
            # overflow is reported by find_nonfinite, naming the layer, not by NumPy's warnings
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                acts[node_id] = self._run(node_id, x, inputs, weights, hook, winograd)
            done += work
        report(1.0, nodes[-1])
        return acts

    def _forward_parts(self, batch: int) -> int:
        """Parts ``forward`` splits a batch of ``batch`` samples into (see ``_forward_split``):
        as a training pass does (``_pass_parts``), once there is a sample for each of the
        engine's threads (a smaller batch keeps them all through the BLAS's own threads)."""
        if batch < ops.worker_count():
            return 1
        return self._pass_parts(self.order, batch)

    def _forward_split(self, x: np.ndarray, weights: Mapping[str, np.ndarray], parts: int,
                       report: Callable[[float, str], None], total: float
                       ) -> dict[str, np.ndarray]:
        """An inference pass with the batch split into ``parts`` ranges of samples, each run
        through the whole network on a thread of its own with a single-threaded BLAS (in eval
        mode every layer works on each sample alone): every op then runs on every core, where
        with one pass on the BLAS's threads only the matrix products did (the copies, Winograd's
        transforms, BatchNorm, pooling ran on one core while the other waited). Each part writes
        a layer's output straight into its share of the batch's array where the layer can (see
        WRITE_INTO), else copies it there, and keeps its own only for the layers that still
        read it. The first part reports progress for the whole pass; if that raises
        (Cancelled), the others stop at their next layer."""
        n = x.shape[0]
        consumers = {node_id: len(self._consumers(node_id)) for node_id in self.order}
        acts: dict[str, np.ndarray] = {self.input_id: x}
        lock = threading.Lock()
        stop: list[bool] = []

        def batch_array(node_id: str, make: Callable[[], np.ndarray]) -> np.ndarray:
            """The batch's array for this layer's output, made by the first part to get
            there."""
            with lock:
                whole = acts.get(node_id)
                if whole is None:
                    whole = acts[node_id] = make()
                return whole

        def out_array(node_id: str, inputs: list[np.ndarray]) -> np.ndarray | None:
            """The batch's array for the output of a layer that can write into one (see
            ``_run``), or None: channels-last maps for a convolution, the input's layout for
            the others."""
            t = self.infos[node_id].type
            if t not in WRITE_INTO or not inputs:
                return None
            shape = (n,) + tuple(self.infos[node_id].shape)
            return batch_array(node_id, lambda: ops.empty_maps(
                shape, t == "Conv2d" or ops.channels_last(inputs[0])) if len(shape) == 4
                else np.empty(shape, np.float32))

        def run(index: int, s0: int, s1: int) -> None:
            mine: dict[str, np.ndarray] = {}
            left = dict(consumers)
            done = 0
            for node_id in self.order:
                if stop:
                    return
                work = self._work[node_id]
                if index == 0:
                    report(done / total, node_id)

                    def hook(fraction: float, base=done, work=work, node_id=node_id) -> None:
                        report((base + fraction * work) / total, node_id)
                else:
                    def hook(fraction: float) -> None:
                        if stop:
                            raise Cancelled("cancelled")
                sources = self.design.sources(node_id)
                inputs = [mine[s] for s in sources]
                if node_id == self.input_id:
                    y = x[s0:s1]
                else:
                    whole = out_array(node_id, inputs)
                    share = None if whole is None else whole[s0:s1]
                    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                        y = self._run(node_id, x[s0:s1], inputs, weights, hook, out=share)
                    if sources and y is inputs[0]:  # its output is its input (Dropout, ...)
                        with lock:
                            acts.setdefault(node_id, acts[sources[0]])
                    elif share is None or not _same_memory(y, share):  # made its own
                        whole = batch_array(node_id, lambda y=y: np.empty_like(  # its layout
                            y, shape=(n,) + y.shape[1:]))
                        np.copyto(whole[s0:s1], y)
                for s in sources:
                    left[s] -= 1
                    if left[s] == 0:
                        mine.pop(s, None)
                if left[node_id]:
                    mine[node_id] = y
                done += work

        def guarded(index: int, s0: int, s1: int) -> None:
            try:
                run(index, s0, s1)
            except BaseException:
                stop.append(True)
                raise

        with ops.BLAS.single():
            ops.run_parallel([lambda i=i, r=r: guarded(i, *r)
                              for i, r in enumerate(ops.sample_parts(n, parts))])
        report(1.0, self.order[-1])
        return {node_id: acts[node_id] for node_id in self.order}

    def find_nonfinite(self, acts: Mapping[str, np.ndarray]) -> NonFinite | None:
        """Where the activations of a pass (``forward``'s result) first hold inf or NaN, or None
        (see :func:`find_nonfinite`). Thread-safe."""
        found = find_nonfinite(acts, self.order, self.design.sources)
        if (found is not None and self.infos[found.node_id].type == "MaxPool2d"
                and found.kind == "overflow" and not math.isnan(found.largest)):
            sources = self.design.sources(found.node_id)
            if all(not _scan(np.asarray(acts[s]))[0] for s in sources):  # no inf going in
                found = NonFinite(found.node_id, found.kind, found.largest, (
                    f"{found.node_id}: some of its windows hold only padding, so their maximum "
                    f"is −∞ from {found.node_id} on; use less padding or dilation"))
        return found

    def input_gradient(self, x: Any, node_id: str, unit: tuple[int, ...],
                       progress: Progress | None = None) -> np.ndarray:
        """The gradient of one unit of ``node_id``'s output with respect to the input, for the
        first sample of ``x``: an array shaped like ``x[0]`` (the effective receptive field).

        ``unit`` is ``(row, col)`` for a node with maps (the unit is the sum over its channels
        there) and ``(index,)`` for a flat output. Only the layers the node depends on run."""
        if node_id not in self.infos:
            raise ValueError(f"there is no node {node_id!r} in this design")
        shape = self.infos[node_id].shape
        unit = self._check_unit(node_id, shape, unit)
        x = self._input_array(x)[:1]
        nodes = self._upstream(node_id)
        self.check_memory(1, self.estimate_gradient_bytes(node_id))
        x = np.ascontiguousarray(x, dtype=np.float32)
        weights = self.weights
        total = sum(self._work[n] for n in nodes) * 2 or 1

        def report(fraction: float, at: str) -> None:
            if progress is not None and progress(min(1.0, fraction), at) is False:
                raise Cancelled(f"cancelled at {at}")

        acts = self._forward(x, weights, nodes, lambda f, at: report(f / 2, at), total,
                             winograd=False)
        seed = np.zeros(acts[node_id].shape)
        if len(shape) == 3:
            seed[0, :, unit[0], unit[1]] = 1.0
        else:
            seed[0, unit[0]] = 1.0
        grads: dict[str, np.ndarray] = {node_id: seed}
        result = np.zeros(x.shape[1:])
        for i, n in enumerate(reversed(nodes)):
            report(0.5 + 0.5 * i / len(nodes), n)
            g = grads.pop(n, None)
            if g is None:
                continue
            if n == self.input_id:
                result = g[0]
                continue
            sources = self.design.sources(n)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                back = self._backward(n, g, [acts[s] for s in sources], acts[n], weights)
                for source, gs in zip(sources, back):
                    grads[source] = grads[source] + gs if source in grads else gs
        report(1.0, node_id)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing gradient stays inf
            return result.astype(np.float32)

    @staticmethod
    def _check_unit(node_id: str, shape: tuple[int, ...], unit: Any) -> tuple[int, ...]:
        try:
            unit = tuple(int(u) for u in unit)
        except (TypeError, ValueError):
            raise ValueError(f"unit must be (row, col) or (index,), not {unit!r}") from None
        if len(shape) == 3:
            h, w = shape[1:]
            if len(unit) != 2 or not (0 <= unit[0] < h and 0 <= unit[1] < w):
                raise ValueError(f"{node_id}'s output has {h}×{w} maps: unit must be (row, col) "
                                 f"with 0 ≤ row < {h} and 0 ≤ col < {w}, not {unit}")
        elif len(unit) != 1 or not 0 <= unit[0] < shape[0]:
            raise ValueError(f"{node_id}'s output is flat with {shape[0]} values: unit must be "
                             f"(index,) with 0 ≤ index < {shape[0]}, not {unit}")
        return unit

    # ------------------------------------------------------------------ training

    def estimate_training_bytes(self, batch: int = 1) -> int:
        """Memory a training step of ``batch`` samples needs, in all: the weights, their
        gradients, an optimizer's state (Adam's two moments: twice the parameters) and the
        convolution matrices; every array of the ``gradients`` pass, counted as kept to its end
        (the activations and the gradients of each layer, which this thread's workspace also
        keeps for the next pass, and the padded copies, masks and statistics beside them); the
        largest of the short-lived temporaries; the im2col block buffer; an eighth more of all
        those for the allocator's slack, and a fixed allowance for the matrix library's
        buffers and small things. An upper bound of the resident memory a step adds (within
        about 1.2-1.4× of it on the templates, benchmarks/bench_train_memory.py), worked out from
        shapes in exact integers, mirroring what each op allocates."""
        nodes = self._upstream(self.analysis.output)
        kept = transient = patches = 0
        for n in nodes:
            node_kept, node_transient = self._train_cost(n)
            kept += node_kept
            transient = max(transient, node_transient)
            if self._cost[n].conv is not None:
                oh, ow, patch = self._cost[n].conv
                size = 4 * batch * oh * ow * patch
                patches += size if size <= KEEP_PATCHES_BYTES else 0
        out = self.infos[self.analysis.output].shape[0] if self.infos[
            self.analysis.output].shape else 1
        transient = max(transient, 3 * 8 * out)  # the loss's float64 work per sample
        params = sum(4 * math.prod(shape) for key, shape in self.shapes.items()
                     if not key.endswith((".running_mean", ".running_var")))
        largest = max((4 * math.prod(shape) for shape in self.shapes.values()), default=0)
        parts = self._pass_parts(nodes, batch)  # a block buffer per part, for its samples
        scratch = parts * self._train_scratch(nodes, -(-batch // parts), batch)
        arrays = scratch + patches + batch * (kept + transient)
        return (2 * self._weight_bytes + largest + 2 * params + self._matrix_need()
                + arrays + arrays // 8 + self._training_allowance(batch))

    def _training_allowance(self, batch: int) -> int:
        """The fixed part of ``estimate_training_bytes``: the matrix library's buffers (one
        set per thread it keeps in the pass), Python's objects."""
        nodes = self._upstream(self.analysis.output)
        blas = ops.BLAS.threads() if self._pass_parts(nodes, batch) == 1 else 1
        return TRAIN_FIXED_BYTES + BLAS_THREAD_BYTES * (blas - 1)

    def _train_scratch(self, nodes: Sequence[str], batch: int, whole: int) -> int:
        """Bytes of one im2col block buffer in a training pass of ``whole`` samples done in
        parts of ``batch``: the largest block of a convolution's forward pass, of its backward
        pass (patches, unless the forward kept them, and their gradients), or of the
        convolution that gives its input gradient."""
        most = 0
        half = min(self.scratch_bytes, ops.BAND_BYTES // 2)
        for n in nodes:
            cost = self._cost[n]
            if cost.conv is None:
                continue
            oh, ow, patch = cost.conv
            source = self.design.sources(n)[0]
            c, h, w = self.infos[source].shape
            k = self.infos[n].shape[0]
            by_convolution = backward._by_convolution(self.infos[n].values["stride"], (h, w),
                                                      (oh, ow))
            col2im = source != self.input_id and not by_convolution
            if 4 * whole * oh * ow * patch <= KEEP_PATCHES_BYTES:
                copies = 1 if col2im else 0  # patches kept: the block of their gradient only
            else:
                copies = 2 if col2im else 1
                most = max(most, 4 * ops.conv_block_values(batch, oh, ow, patch,
                                                           self.scratch_bytes))
            most = max(most, 4 * copies * ops.conv_block_values(batch, oh, ow, patch, half))
            if source != self.input_id and by_convolution:
                most = max(most, 4 * ops.conv_block_values(batch, h, w, patch // c * k,
                                                           2 * half))
        return most

    def _consumers(self, node_id: str) -> list[str]:
        return self.design.targets(node_id)

    def _train_cost(self, node_id: str) -> tuple[int, int]:
        """(bytes kept to the end of a training pass, bytes of short-lived temporaries), per
        sample, of ``node_id``'s training forward and backward ops."""
        info = self.infos[node_id]
        t, v = info.type, info.values
        cost = self._cost[node_id]
        out = math.prod(info.shape)
        sources = self.design.sources(node_id)
        if not sources:  # the Input: the batch itself
            return 4 * out, 0
        src = self.infos[sources[0]].shape
        inp = math.prod(src)
        need_input = sources[0] != self.input_id
        grad_in = 4 * inp if need_input else 0  # the input gradient it hands back
        fan_in = 4 * inp * max(0, len(self._consumers(sources[0])) - 1)  # summed gradients
        if t == "Conv2d":
            c, h, w = src
            k, cg, kh, kw = self.shapes[f"{node_id}.weight"]
            oh, ow = info.shape[1:]
            (pt, pb), (pl, pr) = ops.pad_amounts(v["padding"], (kh, kw), v["dilation"])
            padded = 4 * (h + pt + pb) * (w + pl + pr) * c
            kept = padded + 4 * out  # padded input (kept for the backward pass), output
            consumers = self._consumers(node_id)
            if not (len(consumers) == 1 and self.infos[consumers[0]].type in
                    ("ReLU", "Tanh", "MaxPool2d", "AvgPool2d", "Conv2d")):
                kept += 4 * out  # the output gradient copied to channels-last
            if need_input:
                if backward._by_convolution(v["stride"], (h, w), (oh, ow)):
                    eh, ew = (kh - 1) * v["dilation"][0], (kw - 1) * v["dilation"][1]
                    kept += 4 * (h + eh) * (w + ew) * k + 4 * inp
                else:
                    kept += padded
            temp = 4 * oh * ow * (k // v["groups"]) if v["groups"] > 1 else 0
            return kept + fan_in, temp
        if t in ("MaxPool2d", "AvgPool2d"):
            padded = cost.temp  # the −∞ or 0 padded copy, made forward and backward
            kept = 3 * padded + 4 * out + 4 * inp  # and the padded gradient, cropped
            if t == "MaxPool2d":
                kept += 2 * out  # the bool masks of the taps
                if not backward._tiles(v["kernel_size"], v["stride"], v["padding"],
                                       v["dilation"]):
                    kept += 4 * out  # one tap's share before it is added
            return kept + fan_in, 0
        if t == "ReLU":
            return 4 * out + (inp + 4 * inp if need_input else 0) + fan_in, 0
        if t == "Tanh":
            return 4 * out + grad_in + fan_in, 0
        if t == "BatchNorm2d":  # output and x̂ kept; the input gradient and its temporary
            return 2 * 4 * out + grad_in + fan_in, 4 * inp + 8 * inp
        if t == "Dropout":  # output and mask kept; the float32 draw behind the mask
            return 4 * out + inp + grad_in + fan_in, 4 * inp
        if t == "Linear":
            return 4 * out + grad_in + fan_in, 0
        if t in ("Flatten",):
            return fan_in, 0
        # every other op: its eval-mode output and temporaries, and the float64 backward op of
        # input_gradient, converted to float32
        return (cost.act + cost.temp + 4 * inp * len(sources) + fan_in,
                cost.grad * len(sources) + cost.grad_temp)

    def gradients(self, x: Any, y: Any, rng: np.random.Generator | int | None = None
                  ) -> tuple[float, dict[str, np.ndarray]]:
        """One training pass (contract §5, §6): the mean cross-entropy of the batch and the
        gradient of it with respect to every tensor of ``weights``.

        x: float (N, C, H, W); y: int (N,), class indices 0 … F−1 for an output of shape [F]
        (F ≥ 2). A final Softmax is fused with the loss (its input is taken as the logits).
        Returns ``(loss, grads)``: ``grads`` has exactly the keys and shapes of ``weights``,
        float32; running_mean and running_var are statistics, not parameters, so their
        entries are zeros (as are those of layers the output doesn't depend on).

        Training mode is PyTorch's ``model.train()``: BatchNorm2d normalizes with the batch's
        statistics (biased variance) and, once the pass has succeeded, moves running_mean and
        running_var (unbiased variance) toward them with its momentum; momentum None is the
        cumulative average over the batches counted in ``batches_tracked`` (PyTorch's
        num_batches_tracked: kept on the network, not in the weights file, so it starts at 0
        for every built network). Dropout zeroes each value with probability p, drawn from
        ``rng`` (a numpy Generator, or a seed for a fresh one), and scales the rest by
        1/(1 − p); without ``rng``, the network's own generator, seeded by ``build``'s seed,
        is used and moves on from call to call (so the same network built twice gives the
        same masks call for call).

        Raises TrainingError (a ValueError) for an output that isn't flat with two classes or
        more, or labels of the wrong type, shape or range; InputError for a bad x;
        NotEnoughMemory before allocating what won't fit (both numbers in the message).

        **Threads.** Safe to call from several threads at once, each with its own scratch
        buffers, except that the running statistics updates of concurrent calls on one network
        follow one another in no set order (each update is atomic, under a lock), and each
        thread should pass its own ``rng``.

        **Memory.** The pass's arrays (activations, gradients) are kept by this thread's
        workspace for the next pass, which then reuses them instead of touching fresh memory;
        ``release_buffers()`` frees them. ``estimate_training_bytes`` counts them.

        **Cores.** A pass whose convolutions are large splits its batch into parts done at
        once on the engine's worker threads, as many as the BLAS may use threads (a caller's
        ``threadpoolctl`` limit applies: with one, the pass stays on its thread), and keeps
        the BLAS single-threaded meanwhile; smaller passes leave the cores to the BLAS."""
        loss, grads, _ = self.gradients_and_logits(x, y, rng)
        return loss, grads

    def gradients_and_logits(self, x: Any, y: Any,
                             rng: np.random.Generator | int | None = None
                             ) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """``gradients(x, y, rng)`` and the logits of the same training-mode forward pass:
        ``(loss, grads, logits)``, logits float32 (N, F) (a final Softmax's input, as the loss
        takes them), so that a trainer needs no second pass for the batch's predictions. In
        training mode: with Dropout or BatchNorm2d they differ from ``forward``'s."""
        x = self._input_array(x)
        batch = x.shape[0]
        out = self.analysis.output
        out_info = self.infos[out]
        labels = training.check_labels(y, batch, out, out_info.shape)
        nodes = self._upstream(out)
        logits_id = out
        if out_info.type == "Softmax":  # fused with the loss: its input is the logits
            logits_id = self.design.sources(out)[0]
            nodes = nodes[:-1]
        self.check_memory(batch, self.estimate_training_bytes(batch))
        x = np.ascontiguousarray(x, dtype=np.float32)
        weights = self.weights
        if rng is None:
            with self._rng_lock:  # one draw of a seed from the shared generator
                generator = np.random.default_rng(self._rng.integers(2**63))
        elif isinstance(rng, np.random.Generator):
            generator = rng
        else:
            generator = np.random.default_rng(rng)

        acts: dict[str, np.ndarray] = {}
        caches: dict[str, Any] = {}
        stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        workspace = self._workspace()
        # convolutions split the batch over threads, each with a single-threaded BLAS: kept so
        # for the whole pass, so that no BLAS thread spins on a core a part needs
        parts = self._pass_parts(nodes, batch)
        single = ops.BLAS.single() if parts > 1 else contextlib.nullcontext()
        with single, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for node_id in nodes:
                inputs = [acts[s] for s in self.design.sources(node_id)]
                t = self.infos[node_id].type
                v = self.infos[node_id].values
                if t == "BatchNorm2d":
                    acts[node_id], caches[node_id], mean, var = training.batch_norm_forward(
                        inputs[0], weights.get(f"{node_id}.weight"),
                        weights.get(f"{node_id}.bias"), v["eps"], node_id)
                    stats[node_id] = (mean, var)
                elif t == "Dropout":
                    acts[node_id], caches[node_id] = training.dropout_forward(
                        inputs[0], v["p"], generator)
                else:
                    acts[node_id], caches[node_id] = self._run_train(
                        node_id, x, inputs, weights, workspace.allocator(node_id + ">"), parts,
                        lambda i, n=node_id: workspace.allocator(f"{n}>{i}"))
            loss, g = training.cross_entropy(acts[logits_id], labels)

            grads = {key: np.zeros(a.shape, dtype=np.float32) for key, a in weights.items()}
            pending: dict[str, np.ndarray] = {logits_id: g}
            for node_id in reversed(nodes):
                gy = pending.pop(node_id, None)
                if gy is None or node_id == self.input_id:
                    continue
                sources = self.design.sources(node_id)
                back = self._backward_train(node_id, gy, [acts[s] for s in sources],
                                            acts[node_id], weights, caches.get(node_id),
                                            grads, [s != self.input_id for s in sources],
                                            workspace.allocator(node_id + "<"), parts,
                                            lambda i, n=node_id: workspace.allocator(f"{n}<{i}"))
                for source, gs in zip(sources, back):
                    if gs is None:
                        continue
                    pending[source] = pending[source] + gs if source in pending else gs
        with self._stats_lock:  # the pass succeeded: BatchNorm's running statistics move
            for node_id, (mean, var) in stats.items():
                count = self.batches_tracked[node_id] = self.batches_tracked.get(node_id, 0) + 1
                training.running_update(weights[f"{node_id}.running_mean"],
                                        weights[f"{node_id}.running_var"], mean, var,
                                        self.infos[node_id].values["momentum"], count)
        return loss, grads, np.array(acts[logits_id], dtype=np.float32)  # not the workspace's

    def _pass_parts(self, nodes: Sequence[str], batch: int) -> int:
        """Parts a training pass splits its batch into (see ``ops.parallel_parts``): 1 (the
        BLAS then keeps its own threads) unless its largest convolution has large matrix
        products: small ones run one after another even on threads of their own (the BLAS
        serializes them), where its own threads still share them."""
        largest = max((self.infos[n].macs for n in nodes if self.infos[n].type == "Conv2d"),
                      default=0)
        return ops.parallel_parts(batch) if batch * largest >= PARALLEL_PASS_MACS else 1

    def _conv_parts(self, node_id: str, batch: int, parts: int) -> int:
        """Parts a convolution of ``batch`` samples is split into: ``parts``, or 1 when its
        matrix products are too small for threads to pay (their start costs 50 µs or so)."""
        info = self.infos[node_id]
        return parts if batch * info.macs >= PARALLEL_MACS else 1

    @staticmethod
    def _in_parts(parts: int, a: np.ndarray, part_alloc: Callable[[int], ops.Alloc] | None,
                  work: Callable[[int, int, ops.Alloc], None], alloc: ops.Alloc) -> None:
        """``work(first sample, last sample + 1, alloc)`` over ``parts`` ranges of a's samples
        at once on the engine's threads (each part with an allocator of its own, made here in
        order, so that the workspace hands the same arrays to the same part every pass); in
        one go when the maps are too small for threads to pay."""
        n = a.shape[0]
        if parts <= 1 or part_alloc is None or a.size < PARALLEL_VALUES:
            work(0, n, alloc)
            return
        ranges = ops.sample_parts(n, parts)
        allocs = [part_alloc(i) for i in range(len(ranges))]
        ops.run_parallel([lambda r=r, al=al: work(r[0], r[1], al)
                          for r, al in zip(ranges, allocs)])

    def _run_train(self, node_id: str, x: np.ndarray, inputs: list[np.ndarray],
                   w: Mapping[str, np.ndarray], alloc: ops.Alloc, parts: int = 1,
                   part_alloc: Callable[[int], ops.Alloc] | None = None
                   ) -> tuple[np.ndarray, Any]:
        """Training-mode forward of one node (other than BatchNorm2d and Dropout): (output,
        what its backward pass reuses), the large arrays made by ``alloc`` (this thread's
        workspace, reused by the next pass); convolutions, pooling and activations split the
        batch in ``parts`` over threads (``part_alloc(i)``: part i's allocator)."""
        info = self.infos[node_id]
        v, t = info.values, info.type
        a = inputs[0] if inputs else None
        if t == "Conv2d":
            weight = w[f"{node_id}.weight"]
            matrix = self._matrix(node_id, weight, v["groups"])
            k, cg, kh, kw = weight.shape
            windows, _ = ops.patch_windows(a, (kh, kw), v["stride"], v["padding"],
                                           v["dilation"], v["groups"], alloc)
            oh, ow = info.shape[1:]
            parts = self._conv_parts(node_id, a.shape[0], parts)
            first = ops.sample_parts(a.shape[0], parts)[0]
            scratch = self._scratch(ops.conv_block_values(first[1] - first[0], oh, ow,
                                                          kh * kw * a.shape[1],
                                                          self.scratch_bytes))
            patches = None
            shape = windows.shape
            if 4 * math.prod(shape) <= KEEP_PATCHES_BYTES:  # small: kept for the backward pass
                patches = alloc(shape)
            out = ops.conv2d(a, weight, w.get(f"{node_id}.bias"), v["stride"], v["padding"],
                             v["dilation"], v["groups"], self.scratch_bytes, None, matrix,
                             scratch, alloc, windows, parts, self._scratch, patches)
            return out, (windows, patches)
        layout = ops.channels_last(a) if a is not None and a.ndim == 4 else False
        if t in ("MaxPool2d", "AvgPool2d"):
            out = alloc((a.shape[0],) + info.shape, np.float32, layout)
            if t == "MaxPool2d":
                def work(s0: int, s1: int, al: ops.Alloc) -> None:
                    ops.max_pool2d(a[s0:s1], v["kernel_size"], v["stride"], v["padding"],
                                   v["dilation"], v["ceil_mode"], al, out[s0:s1])
            else:
                def work(s0: int, s1: int, al: ops.Alloc) -> None:
                    ops.avg_pool2d(a[s0:s1], v["kernel_size"], v["stride"], v["padding"],
                                   v["ceil_mode"], v["count_include_pad"], al, out[s0:s1])
            self._in_parts(parts, a, part_alloc, work, alloc)
            return out, None
        if t in ("ReLU", "Tanh"):
            out = alloc(a.shape, np.float32, layout)
            if t == "ReLU":
                def work(s0: int, s1: int, al: ops.Alloc) -> None:
                    ops.relu_into(a[s0:s1], out[s0:s1])
            else:
                def work(s0: int, s1: int, al: ops.Alloc) -> None:
                    np.tanh(a[s0:s1], out=out[s0:s1])
            self._in_parts(parts, a, part_alloc, work, alloc)
            return out, None
        return self._run(node_id, x, inputs, w, lambda f: None), None

    def _backward_train(self, node_id: str, gy: np.ndarray, inputs: list[np.ndarray],
                        y: np.ndarray, w: Mapping[str, np.ndarray], cache: Any,
                        grads: dict[str, np.ndarray], need: list[bool],
                        alloc: ops.Alloc = ops.new_array, parts: int = 1,
                        part_alloc: Callable[[int], ops.Alloc] | None = None
                        ) -> list[np.ndarray | None]:
        """Training-mode backward of one node: stores its weight gradients in ``grads`` and
        returns the gradients for its inputs (None where ``need`` says nobody wants one); the
        large arrays are made by ``alloc``; a convolution is split in ``parts`` over threads."""
        info = self.infos[node_id]
        v, t = info.values, info.type
        a = inputs[0] if inputs else None
        f32 = np.float32
        if t == "Conv2d":
            weight = w[f"{node_id}.weight"]
            gx, gw, gb = backward.conv2d_train(
                gy, a, weight, self._matrix(node_id, weight, v["groups"]), v["stride"],
                v["padding"], v["dilation"], v["groups"], need[0], self._scratch,
                min(self.scratch_bytes, ops.BAND_BYTES // 2), alloc, cache[0],
                self._conv_parts(node_id, a.shape[0], parts), cache[1])
            grads[f"{node_id}.weight"] = gw
            if f"{node_id}.bias" in grads:
                grads[f"{node_id}.bias"] = gb
            return [gx]
        if t == "Linear":
            gx, gw, gb = backward.linear_train(gy, a, w[f"{node_id}.weight"], need[0])
            grads[f"{node_id}.weight"] = gw
            if f"{node_id}.bias" in grads:
                grads[f"{node_id}.bias"] = gb
            return [gx]
        if t == "BatchNorm2d":
            gx, gw, gb = training.batch_norm_backward(gy, cache, w.get(f"{node_id}.weight"))
            if f"{node_id}.weight" in grads:
                grads[f"{node_id}.weight"] = gw.astype(f32)
                grads[f"{node_id}.bias"] = gb.astype(f32)
            return [gx]
        if t == "LayerNorm":
            gx, gw, gb = backward.layer_norm_train(gy, a, w.get(f"{node_id}.weight"), v["eps"])
            if gw is not None:
                grads[f"{node_id}.weight"] = gw
                grads[f"{node_id}.bias"] = gb
            return [gx]
        if t == "Dropout":
            return [training.dropout_backward(gy, cache, v["p"])]
        layout = ops.channels_last(a) if a is not None and a.ndim == 4 else False
        if t == "Tanh":  # float32 throughout, as the rest of the training pass
            gx = alloc(y.shape, f32, layout)

            def work(s0: int, s1: int, al: ops.Alloc) -> None:
                part = np.multiply(y[s0:s1], y[s0:s1], out=gx[s0:s1])
                np.subtract(f32(1), part, out=part)
                part *= gy[s0:s1]
            self._in_parts(parts, a, part_alloc, work, alloc)
            return [gx]
        if t == "Sigmoid":
            return [np.multiply(gy, y * (1 - y), dtype=f32)]
        if t == "ReLU":
            mask = alloc(a.shape, np.bool_, layout)
            gx = alloc(a.shape, f32, layout)
            gy = gy.astype(f32, copy=False)

            def work(s0: int, s1: int, al: ops.Alloc) -> None:
                np.greater(a[s0:s1], f32(0), out=mask[s0:s1])
                ops.keep_where(mask[s0:s1], gy[s0:s1], gx[s0:s1])
            self._in_parts(parts, a, part_alloc, work, alloc)
            return [gx]
        if t in ("MaxPool2d", "AvgPool2d"):
            gx = alloc(a.shape, f32, layout)
            if t == "MaxPool2d":
                def work(s0: int, s1: int, al: ops.Alloc) -> None:
                    backward.max_pool2d(gy[s0:s1], a[s0:s1], v["kernel_size"], v["stride"],
                                        v["padding"], v["dilation"], v["ceil_mode"], f32,
                                        y[s0:s1], al, gx[s0:s1])
            else:
                def work(s0: int, s1: int, al: ops.Alloc) -> None:
                    backward.avg_pool2d(gy[s0:s1], (s1 - s0,) + a.shape[1:], v["kernel_size"],
                                        v["stride"], v["padding"], v["ceil_mode"],
                                        v["count_include_pad"], f32, layout, al, gx[s0:s1])
            self._in_parts(parts, a, part_alloc, work, alloc)
            return [gx]
        if t == "AdaptiveAvgPool2d":
            return [backward.adaptive_avg_pool2d(gy, a.shape, f32)]
        return [g.astype(f32, copy=False)
                for g in self._backward(node_id, gy, inputs, y, w)]

    # ------------------------------------------------------------------ explanations

    def saliency(self, x: Any, c: int, progress: Progress | None = None) -> np.ndarray:
        """d logit[c] / d input for the first sample of x, float32 shaped like x[0] (contract
        §5): see :func:`designer.engine.explain.saliency`."""
        from designer.engine import explain  # it imports this module
        return explain.saliency(self, x, c, progress)

    def grad_cam(self, x: Any, node_id: str | None, c: int,
                 progress: Progress | None = None) -> np.ndarray:
        """Grad-CAM of class c at node_id (None: the last layer with maps) for the first
        sample of x, float32 (H', W') (contract §5): see
        :func:`designer.engine.explain.grad_cam`."""
        from designer.engine import explain
        return explain.grad_cam(self, x, node_id, c, progress)

    def occlusion(self, x: Any, c: int, patch: Any = None, stride: Any = None,
                  fill: Any = 0.5, progress: Progress | None = None) -> np.ndarray:
        """Occlusion sensitivity of class c for the first sample of x, float32 (H, W): see
        :func:`designer.engine.explain.occlusion`."""
        from designer.engine import explain
        return explain.occlusion(self, x, c, patch, stride, fill, progress)

    def predict(self, x: Any) -> np.ndarray:
        """Class probabilities (contract §5, §6): float32 (N, F), the softmax of the logits, in
        eval mode. Where the output node is a Softmax, that is its output; otherwise the
        softmax of the output. TrainingError if the output is not flat."""
        out = self.analysis.output
        shape = self.infos[out].shape
        if len(shape) != 1:
            dims = "×".join(str(s) for s in shape)
            raise TrainingError(f"the network's output ({out}) has shape [{dims}], not one score "
                                f"per class: end the design with Flatten and Linear")
        y = self.forward(x)[out]
        return y if self.infos[out].type == "Softmax" else ops.softmax(y)

    def _backward(self, node_id: str, gy: np.ndarray, inputs: list[np.ndarray],
                  y: np.ndarray, w: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The gradients with respect to each input of ``node_id``, given ``gy`` for its output."""
        info = self.infos[node_id]
        v, t = info.values, info.type
        a = inputs[0] if inputs else None
        if t == "Conv2d":
            return [backward.conv2d(gy, a.shape, w[f"{node_id}.weight"], v["stride"],
                                    v["padding"], v["dilation"], v["groups"])]
        if t == "MaxPool2d":
            return [backward.max_pool2d(gy, a, v["kernel_size"], v["stride"], v["padding"],
                                        v["dilation"], v["ceil_mode"], y=y)]
        if t == "AvgPool2d":
            return [backward.avg_pool2d(gy, a.shape, v["kernel_size"], v["stride"], v["padding"],
                                        v["ceil_mode"], v["count_include_pad"])]
        if t == "AdaptiveAvgPool2d":
            return [backward.adaptive_avg_pool2d(gy, a.shape)]
        if t == "BatchNorm2d":
            return [backward.batch_norm(gy, w[f"{node_id}.running_var"],
                                        w.get(f"{node_id}.weight"), v["eps"])]
        if t == "LayerNorm":
            return [backward.layer_norm(gy, a, w.get(f"{node_id}.weight"), v["eps"])]
        if t == "Linear":
            return [backward.linear(gy, w[f"{node_id}.weight"])]
        if t == "Flatten":
            return [gy.reshape(a.shape)]
        if t == "ReLU":
            return [backward.relu(gy, a)]
        if t == "LeakyReLU":
            return [backward.leaky_relu(gy, a, v["negative_slope"])]
        if t == "Sigmoid":
            return [backward.sigmoid(gy, y)]
        if t == "Tanh":
            return [backward.tanh(gy, y)]
        if t == "GELU":
            return [backward.gelu(gy, a)]
        if t in ACTIVATIONS:
            return [ACTIVATIONS[t].backward(gy, a)]
        if t == "Softmax":
            return [backward.softmax(gy, y)]
        if t in ("Dropout", "Identity"):
            return [gy]
        if t == "Add":
            return [gy] * len(inputs)
        if t == "Concat":
            return backward.concat(gy, [i.shape[1] for i in inputs])
        raise AssertionError(f"no backward op for {t}")  # the catalog and this table must agree

    def weights_changed(self) -> None:
        """Forget what was derived from the weights (the convolution matrices), after the
        arrays of ``weights`` were changed in place (an optimizer step calls this). Passes also
        notice a changed weight on their own, at the cost of one comparison per layer."""
        with self._lock:
            self._matrices.clear()
            self._winograd.clear()

    def _winograd_now(self, node_id: str, batch: int) -> bool:
        """Whether an inference pass of ``batch`` samples does this layer by Winograd (its kind
        says it would for a batch large enough; see ``ops.winograd_suits``)."""
        if self._cost[node_id].kind != "winograd":
            return False
        v = self.infos[node_id].values
        c = self.infos[self.design.sources(node_id)[0]].shape[0]
        return ops.winograd_suits(c, self.shapes[f"{node_id}.weight"], v["stride"],
                                  v["dilation"], v["groups"], *self.infos[node_id].shape[1:],
                                  batch)

    def _winograd_weights(self, node_id: str, weight: np.ndarray) -> np.ndarray | None:
        """A Winograd layer's transformed weight (``ops.winograd_weights``), kept with a copy
        of the weight it was made from when the weight takes at most WINOGRAD_KEEP_BYTES (made
        again when the weight's values have changed: one comparison); None for a larger layer,
        which transforms its weight each pass (small beside the layer itself there)."""
        if weight.nbytes > WINOGRAD_KEEP_BYTES:
            return None
        kept = self._winograd.get(node_id)
        if kept is None or not _same_values(kept[0], weight):
            with self._lock:
                kept = self._winograd.get(node_id)
                if kept is None or not _same_values(kept[0], weight):
                    self._winograd.pop(node_id, None)  # the old one goes before the new one
                    kept = self._winograd[node_id] = (np.array(weight, np.float32),
                                                      ops.winograd_weights(weight))
        return kept[1]

    def _matrix(self, node_id: str, weight: np.ndarray, groups: int) -> np.ndarray:
        """The conv weight in the engine's patch order, made once per network (under the lock)
        and made again when the weight has changed since (an optimizer step changes the
        arrays of ``weights`` in place): checking costs one comparison of the weight's values,
        small beside the convolution itself."""
        k, cg, kh, kw = weight.shape
        if in_engine_layout(weight):  # the weight's own memory, always in step: no copy
            return weight.transpose(0, 2, 3, 1).reshape(groups, k // groups, kh * kw * cg)
        matrix = self._matrices.get(node_id)
        if matrix is None or not _same_matrix(matrix, weight, groups):
            with self._lock:
                matrix = self._matrices.get(node_id)
                if matrix is None or not _same_matrix(matrix, weight, groups):
                    matrix = self._matrices[node_id] = ops.conv_matrix(weight, groups)
        return matrix

    def _workspace(self) -> ops.Workspace:
        """This thread's training workspace (arrays the next training pass reuses)."""
        workspace = getattr(self._local, "workspace", None)
        if workspace is None:
            workspace = self._local.workspace = ops.Workspace()
        return workspace

    def release_buffers(self) -> None:
        """Free the arrays this thread keeps between training passes (``gradients`` keeps
        its activations and gradients for the next pass, which then touches no fresh
        memory); the next pass makes them again."""
        workspace = getattr(self._local, "workspace", None)
        if workspace is not None:
            workspace.clear()
        self._local.__dict__.pop("part_scratch", None)

    def _scratch(self, values: int, part: int = 0) -> np.ndarray:
        """This thread's im2col block buffer, at least ``values`` long (kept between layers and
        passes: a fresh allocation per layer costs its page faults every time); ``part`` > 0:
        the buffer of that part of a convolution split over threads (see
        ``ops.parallel_parts``), also this thread's."""
        if part:
            extra = self._local.__dict__.setdefault("part_scratch", {})
            scratch = extra.get(part)
            if scratch is None or scratch.size < values:
                extra[part] = None
                scratch = extra[part] = np.empty(values, dtype=np.float32)
            return scratch
        scratch = getattr(self._local, "scratch", None)
        if scratch is None or scratch.size < values:
            self._local.scratch = None  # the old one goes before the new one comes
            scratch = self._local.scratch = np.empty(values, dtype=np.float32)
        return scratch

    @staticmethod
    def _parts(a: np.ndarray) -> int:
        """Threads an inference pass's elementwise op or pooling on ``a`` spreads over: the
        engine's (``ops.worker_count``) from ``ops.ELEMENTWISE_VALUES`` values on, else one."""
        return ops.worker_count() if a.size >= ops.ELEMENTWISE_VALUES else 1

    def _run(self, node_id: str, x: np.ndarray, inputs: list[np.ndarray],
             w: Mapping[str, np.ndarray], hook: ops.ChunkHook, winograd: bool = True,
             out: np.ndarray | None = None) -> np.ndarray:
        """A layer's output for ``inputs``. ``out``: where a part of a split pass would have it
        (see ``_forward_split``), used by the layers of WRITE_INTO (the others, and a 1×1
        convolution of NCHW maps, make their own)."""
        info = self.infos[node_id]
        v = info.values
        t = info.type
        if t == "Input":
            return x
        a = inputs[0] if inputs else None
        if t == "Conv2d":
            weight = w[f"{node_id}.weight"]
            parts = ops.worker_count()
            if out is not None:  # the channels-last memory behind the NCHW view
                out = out.transpose(0, 2, 3, 1)
            if winograd and self._winograd_now(node_id, a.shape[0]):  # in the band buffer
                k, c = weight.shape[:2]
                _, values = ops.winograd_block_values(*info.shape[1:], c, k, a.shape[0])
                return ops.winograd_conv2d(a, weight, w.get(f"{node_id}.bias"), v["padding"],
                                           hook, parts=parts,
                                           u=self._winograd_weights(node_id, weight),
                                           scratch=self._scratch(values), out=out)
            if self._cost[node_id].kind not in ("im2col", "winograd"):  # no band buffer
                return ops.conv2d(a, weight, w.get(f"{node_id}.bias"), v["stride"],
                                  v["padding"], v["dilation"], v["groups"], self.scratch_bytes,
                                  hook, parts=parts, out=out)
            matrix = self._matrix(node_id, weight, v["groups"])
            k, cg, kh, kw = weight.shape
            oh, ow = info.shape[1:]
            scratch = self._scratch(ops.conv_block_values(a.shape[0], oh, ow,
                                                          kh * kw * a.shape[1],
                                                          self.scratch_bytes))
            return ops.conv2d(a, weight, w.get(f"{node_id}.bias"), v["stride"], v["padding"],
                              v["dilation"], v["groups"], self.scratch_bytes, hook, matrix,
                              scratch, parts=parts, out=out)
        if t == "MaxPool2d":
            return ops.max_pool2d(a, v["kernel_size"], v["stride"], v["padding"], v["dilation"],
                                  v["ceil_mode"], out=out, parts=self._parts(a))
        if t == "AvgPool2d":
            return ops.avg_pool2d(a, v["kernel_size"], v["stride"], v["padding"], v["ceil_mode"],
                                  v["count_include_pad"], parts=self._parts(a))
        if t == "AdaptiveAvgPool2d":
            return ops.adaptive_avg_pool2d(a, v["output_size"])
        if t == "BatchNorm2d":
            return ops.batch_norm(a, w[f"{node_id}.running_mean"], w[f"{node_id}.running_var"],
                                  w.get(f"{node_id}.weight"), w.get(f"{node_id}.bias"), v["eps"],
                                  self._parts(a), out)
        if t == "LayerNorm":
            return ops.layer_norm(a, w.get(f"{node_id}.weight"), w.get(f"{node_id}.bias"), v["eps"])
        if t == "Linear":
            return ops.linear(a, w[f"{node_id}.weight"], w.get(f"{node_id}.bias"))
        if t == "Flatten":
            return a.reshape(a.shape[0], -1)
        if t == "ReLU":
            return ops.relu(a, self._parts(a), out)
        if t == "LeakyReLU":
            return ops.leaky_relu(a, v["negative_slope"])
        if t == "Sigmoid":
            return ops.sigmoid(a)
        if t == "Tanh":
            return ops.tanh(a)
        if t == "GELU":
            return ops.gelu(a)
        if t in ACTIVATIONS:
            return ACTIVATIONS[t].forward(a, out)
        if t == "Softmax":
            return ops.softmax(a)
        if t in ("Dropout", "Identity"):
            return a
        if t == "Add":
            return ops.add(inputs, self._parts(inputs[0]), out)
        if t == "Concat":
            return np.concatenate(inputs, axis=1)
        raise AssertionError(f"no engine op for {t}")  # the catalog and this table must agree


#: layers whose output ``Network._run`` can have written straight into a given array
WRITE_INTO = frozenset({"Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU", "Add", *ACTIVATIONS})


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a and b are the same values in the same memory (one a view of the other, alike)."""
    return (a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a and b (equal shapes) hold the same values, NaN equal to NaN (the quick
    comparison first: NumPy's NaN-aware one copies the arrays)."""
    return bool(np.array_equal(a, b) or np.array_equal(a, b, equal_nan=True))


def _same_matrix(matrix: np.ndarray, weight: np.ndarray, groups: int) -> bool:
    """Whether ``matrix`` is ``ops.conv_matrix(weight, groups)`` for the weight's values now."""
    k, cg, kh, kw = weight.shape
    if matrix.shape != (groups, k // groups, kh * kw * cg):
        return False
    view = weight.reshape(groups, k // groups, cg, kh, kw).transpose(0, 1, 3, 4, 2)
    return _same_values(matrix.reshape(view.shape), view)


def build(design: Design, weights: Mapping[str, Any] | str | os.PathLike | None = None,
          seed: int = 0, scratch_bytes: int = ops.DEFAULT_SCRATCH_BYTES) -> Network:
    """A runnable network (contract §5). Raises InvalidDesign, WeightsError (``WeightsTooLarge``,
    also a NotEnoughMemory, for a weights file too large for free memory). Allocates no seeded
    weights: they are drawn on first use, after a memory check."""
    return Network(design, weights, seed, scratch_bytes)
