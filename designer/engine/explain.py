"""Why this prediction (contract §5): saliency, Grad-CAM and occlusion sensitivity.

All three run on the engine in eval mode (BatchNorm2d with its running statistics, Dropout
passing everything on), for the first sample of a batch, and explain one class ``c`` of a flat
output. The class's *logit* is the output's value ``c``, or, where the output node is a
Softmax, the value ``c`` of that Softmax's input (contract §6: softmax and loss are fused, so
the Softmax's input is the logits).

- :func:`saliency`: d logit[c] / d input, shaped like the input (Simonyan et al. 2014).
- :func:`grad_cam`: at a node with maps A (K, H', W'), ReLU(Σ_k α_k A[k]) with
  α_k = mean over (i, j) of d logit[c] / d A[k, i, j] (Selvaraju et al. 2017).
- :func:`occlusion`: a patch of a fill value slid over the image; the drop in class c's
  probability (``net.predict``), averaged over the patches covering each pixel (Zeiler and
  Fergus 2014).

The gradients are backpropagated with the network's own backward ops (``Network._backward``,
float64), as ``Network.input_gradient`` does, from a one-hot seed on the logits, and only
through the layers that lie between the node asked about and the logits; convolutions go back
by one float32 matrix product per band of rows on the network's cached weight matrix
(:func:`conv2d_input_gradient`, ``backward.conv2d_input``), as ``Network.input_gradient``'s
``backward.conv2d`` does.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from designer.engine import backward, network, ops
from designer.engine.network import Cancelled, Network, Progress

#: values of the patch gradients a convolution's backward works on at once (8 MiB of float32)
BLOCK_VALUES = 2 * 2**20
#: occluded copies per forward pass at most (beyond a few dozen, batching gains nothing)
MAX_BATCH = 64
#: memory one batch of occluded copies may take at most, besides what the network holds
BATCH_BUDGET = 512 * 2**20


class ExplainError(ValueError):
    """A class, node or setting an explanation can't be made for; the message says why and
    what to pick instead."""


# ---------------------------------------------------------------- what is explained

def logits_node(net: Network) -> str:
    """The node whose output is the logits: the output, or the input of an output Softmax.
    ExplainError if the output is not flat (one score per class)."""
    out = net.analysis.output
    shape = net.infos[out].shape
    if len(shape) != 1:
        dims = "×".join(str(s) for s in shape)
        raise ExplainError(f"the network's output ({out}) has shape [{dims}], not one score per "
                           f"class, so there is no class to explain: end the design with "
                           f"Flatten and Linear")
    if net.infos[out].type == "Softmax":
        return net.design.sources(out)[0]
    return out


def _check_class(net: Network, c: Any) -> int:
    """``c`` as a class index of the output; ExplainError naming the range otherwise."""
    out = net.analysis.output
    classes = net.infos[out].shape[0]
    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)):
        raise ExplainError(f"the class must be a whole number (0 to {classes - 1}), not {c!r}")
    if not 0 <= c < classes:
        raise ExplainError(f"class {int(c)} is out of range: the output ({out}) scores "
                           f"{classes} class{'es' if classes != 1 else ''}, numbered 0 to "
                           f"{classes - 1}")
    return int(c)


def _has_maps(net: Network, node_id: str) -> bool:
    return len(net.infos[node_id].shape) == 3


def default_cam_layer(net: Network) -> str:
    """The layer Grad-CAM looks at by default: the last node (in the design's order) with maps
    that the logits depend on, skipping maps of a single position (1×1 after global pooling:
    nothing to localize there) unless there is nothing else; the Input if no layer has maps.
    ExplainError if the output is not flat."""
    nodes = net._upstream(logits_node(net))
    maps = [n for n in nodes if _has_maps(net, n) and n != net.input_id]
    spread = [n for n in maps if math.prod(net.infos[n].shape[1:]) > 1]
    return (spread or maps or [net.input_id])[-1]


def _check_cam_node(net: Network, node_id: Any, logits: str) -> str:
    if not isinstance(node_id, str) or node_id not in net.infos:
        raise ExplainError(f"there is no node {node_id!r} in this design; Grad-CAM needs a layer "
                           f"with maps, such as {default_cam_layer(net)}")
    shape = net.infos[node_id].shape
    if len(shape) != 3:
        raise ExplainError(f"{node_id}'s output is flat ({shape[0]} values), not maps, so "
                           f"Grad-CAM has nowhere to point: pick a layer with maps, such as "
                           f"{default_cam_layer(net)}")
    if node_id not in set(net.design.upstream(logits)):
        raise ExplainError(f"the output ({net.analysis.output}) doesn't depend on {node_id}, so "
                           f"it can't explain the prediction: pick a layer on the way from the "
                           f"input to the output, such as {default_cam_layer(net)}")
    return node_id


# ---------------------------------------------------------------- gradients of a logit

def _reporter(progress: Progress | None):
    def report(fraction: float, at: str) -> None:
        if progress is not None and progress(min(1.0, max(0.0, fraction)), at) is False:
            raise Cancelled(f"cancelled at {at}")
    return report


def _logit_gradient(net: Network, x: Any, c: Any, target: str, logits: str,
                    progress: Progress | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(the forward pass's activations, d logit[c] / d target's output) for the first sample
    of ``x``; the gradient is float64, shaped like the target's output for one sample.

    Runs only the layers the logits depend on, and goes back only through those between
    ``target`` and the logits, stopping at ``target`` (whose gradient is complete once every
    layer it feeds has been gone back through: they all come after it in the design's order)."""
    x = net._input_array(x)[:1]
    nodes = net._upstream(logits)
    net.check_memory(1, net.estimate_gradient_bytes(logits))
    x = np.ascontiguousarray(x, dtype=np.float32)
    weights = net.weights
    between = set(net.design.downstream(target)) & set(nodes)
    forward_work = sum(net._work[n] for n in nodes) or 1
    backward_work = sum(net._work[n] for n in between if n != target)
    total = forward_work + backward_work
    report = _reporter(progress)

    acts = net._forward(x, weights, nodes,
                        lambda f, at: report(f * forward_work / total, at), forward_work,
                        winograd=False)  # the direct sums, for the ReLUs the gradient meets
    seed = np.zeros(acts[logits].shape)
    seed[0, c] = 1.0
    pending: dict[str, np.ndarray] = {logits: seed}
    done = forward_work
    for n in reversed(nodes):
        if n not in between:
            continue
        g = pending.pop(n, None)
        if n == target:
            report(1.0, n)
            return acts, (np.zeros(acts[n].shape[1:]) if g is None else g[0])
        report(done / total, n)
        done += net._work[n]
        if g is None:  # nothing reaches the logits through n
            continue
        sources = net.design.sources(n)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            back = _backward(net, n, g, [acts[s] for s in sources], acts[n], weights)
            for source, gs in zip(sources, back):
                if source in between:
                    pending[source] = pending[source] + gs if source in pending else gs
    raise AssertionError(f"{target} is not upstream of {logits}")  # checked by the callers


def _backward(net: Network, node_id: str, gy: np.ndarray, inputs: list[np.ndarray],
              y: np.ndarray, weights) -> list[np.ndarray]:
    """The gradients for the inputs of ``node_id``: the network's own backward ops, but for
    Conv2d, :func:`conv2d_input_gradient` on the network's cached weight matrix."""
    info = net.infos[node_id]
    if info.type != "Conv2d":
        return net._backward(node_id, gy, inputs, y, weights)
    v = info.values
    weight = weights[f"{node_id}.weight"]
    k, cg, kh, kw = weight.shape
    # the matrix the forward pass of this call has just made or checked against the weight
    # (checking again costs a comparison of every weight: a quarter of saliency's time on
    # ResNet-18)
    matrix = getattr(net, "_matrices", {}).get(node_id)
    if matrix is None or matrix.shape != (v["groups"], k // v["groups"], kh * kw * cg):
        matrix = net._matrix(node_id, weight, v["groups"])
    return [conv2d_input_gradient(gy, inputs[0].shape, matrix, (kh, kw), v["stride"],
                                  v["padding"], v["dilation"], v["groups"])]


def conv2d_input_gradient(gy: np.ndarray, x_shape: tuple[int, ...], matrix: np.ndarray,
                          kernel: tuple[int, int], stride: tuple[int, int], padding: Any,
                          dilation: tuple[int, int], groups: int) -> np.ndarray:
    """Conv2d's gradient with respect to its input, float32 (N, C, H, W): the network's own
    :func:`backward.conv2d_input <designer.engine.backward.conv2d_input>` on ``matrix`` (the
    weight in the engine's patch order), working on at most BLOCK_VALUES patch gradients at
    once."""
    return backward.conv2d_input(gy, x_shape, matrix, kernel, stride, padding, dilation, groups,
                                 BLOCK_VALUES)


def saliency(net: Network, x: Any, c: Any, progress: Progress | None = None) -> np.ndarray:
    """d logit[c] / d input for the first sample of ``x`` (contract §5 ``net.saliency``):
    float32, shaped like ``x[0]``. Eval mode. ``progress(fraction, node id)`` as for
    ``forward``; returning False stops with ``Cancelled``. ExplainError for an output that
    isn't flat or a class out of range; InputError for a bad x; NotEnoughMemory before a pass
    that won't fit."""
    logits = logits_node(net)
    c = _check_class(net, c)
    _, g = _logit_gradient(net, x, c, net.input_id, logits, progress)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing gradient stays inf
        return np.ascontiguousarray(g, dtype=np.float32)


def grad_cam(net: Network, x: Any, node_id: str | None, c: Any,
             progress: Progress | None = None) -> np.ndarray:
    """Grad-CAM of class ``c`` at ``node_id`` (a node with maps; None: ``default_cam_layer``)
    for the first sample of ``x`` (contract §5 ``net.grad_cam``): float32 (H', W'),
    ReLU(Σ_k α_k A[k]) with A the node's output (K, H', W') and α_k the mean over (i, j) of
    d logit[c] / d A[k, i, j]. Eval mode. ExplainError for an unknown node, a flat one, one the
    output doesn't depend on, an output that isn't flat or a class out of range."""
    logits = logits_node(net)
    c = _check_class(net, c)
    node_id = default_cam_layer(net) if node_id is None else _check_cam_node(net, node_id, logits)
    acts, g = _logit_gradient(net, x, c, node_id, logits, progress)
    a = acts[node_id][0].astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        alpha = g.mean(axis=(1, 2))
        cam = np.tensordot(alpha, a, axes=1)
        return np.maximum(cam, 0.0).astype(np.float32)


# ---------------------------------------------------------------- occlusion

def _pair(value: Any, name: str) -> tuple[int, int]:
    items = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        pair = tuple(items)
    except TypeError:
        pair = ()
    whole = [isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
             for v in pair]
    if len(pair) != 2 or not all(whole):
        raise ExplainError(f"{name} must be a whole number or a pair (height, width) of them, "
                           f"not {value!r}")
    return int(pair[0]), int(pair[1])


def occlusion_geometry(net: Network, patch: Any = None, stride: Any = None
                       ) -> tuple[tuple[int, int], tuple[int, int], list[int], list[int]]:
    """(patch (h, w), stride (h, w), top rows, left columns) of the occluding patches. By
    default the patch is about a seventh of the input's side and the stride half the patch
    (13 × 13 positions at 28 × 28 or 224 × 224). The last row and column of positions are
    moved up against the far edge when the stride doesn't reach it, so every pixel is covered."""
    _, h, w = net.input_shape
    if patch is None:
        patch = (max(1, round(h / 7)), max(1, round(w / 7)))
    ph, pw = _pair(patch, "the occlusion patch")
    if not (1 <= ph <= h and 1 <= pw <= w):
        raise ExplainError(f"the occlusion patch is {ph}×{pw}, but the input is {h}×{w}: each "
                           f"side must be between 1 and the input's")
    if stride is None:
        stride = (max(1, (ph + 1) // 2), max(1, (pw + 1) // 2))
    sh, sw = _pair(stride, "the occlusion stride")
    if sh < 1 or sw < 1:
        raise ExplainError(f"the occlusion stride is {sh}×{sw}; each step must be at least 1")
    if sh > ph or sw > pw:
        raise ExplainError(f"the occlusion stride {sh}×{sw} is larger than the patch {ph}×{pw}, "
                           f"so some pixels would never be hidden: use a stride of at most the "
                           f"patch")

    def starts(size: int, p: int, s: int) -> list[int]:
        out = list(range(0, size - p + 1, s))
        if out[-1] != size - p:
            out.append(size - p)
        return out

    return (ph, pw), (sh, sw), starts(h, ph, sh), starts(w, pw, sw)


def _fill(net: Network, fill: Any) -> np.ndarray:
    channels = net.input_shape[0]
    try:
        value = np.asarray(fill, dtype=np.float64)
    except (TypeError, ValueError):
        value = None
    if value is None or value.ndim > 1 or (value.ndim == 1 and value.size != channels) \
            or not np.isfinite(value).all():
        raise ExplainError(f"the occlusion fill must be one finite number or one per channel "
                           f"({channels}), not {fill!r}")
    return np.broadcast_to(value.reshape(-1, 1, 1), (channels, 1, 1)).astype(np.float32)


def occlusion_batch(net: Network, copies: int) -> int:
    """How many occluded copies to run per forward pass: at most ``copies`` and MAX_BATCH, and
    as many as fit in BATCH_BUDGET and half the free memory (at least one)."""
    one = net.estimate_bytes(1)
    per = max(1, net.estimate_bytes(2) - one)  # a pass's needs grow linearly with the batch
    free = network.available_memory()  # where tests replace it
    budget = BATCH_BUDGET if free is None else min(BATCH_BUDGET, free // 2)
    fits = 1 + max(0, budget - (one - net._held_bytes())) // per
    return int(max(1, min(copies, MAX_BATCH, fits)))


def occlusion(net: Network, x: Any, c: Any, patch: Any = None, stride: Any = None,
              fill: Any = 0.5, progress: Progress | None = None) -> np.ndarray:
    """Occlusion sensitivity of class ``c`` for the first sample of ``x``: float32 (H, W), at
    each pixel the mean, over the patches covering it, of the drop in class c's probability
    (``net.predict``, eval mode) when that patch of the image is set to ``fill`` (a number, or
    one per channel: 0.5 is mid grey for inputs scaled to 0–1; pass the normalized grey for
    inputs scaled by a mean and std). Positive where hiding the pixels lowers the class's
    probability. ``patch`` and ``stride``: a whole number or (height, width); see
    :func:`occlusion_geometry` for the defaults.

    Several occluded copies go through each forward pass (as many as fit, see
    :func:`occlusion_batch`; memory is checked first: NotEnoughMemory). ``progress(fraction,
    node id)`` is called during every pass; returning False stops with ``Cancelled``."""
    out = net.analysis.output
    logits_node(net)  # the output must be flat
    c = _check_class(net, c)
    (ph, pw), _, rows, cols = occlusion_geometry(net, patch, stride)
    value = _fill(net, fill)
    x0 = np.ascontiguousarray(net._input_array(x)[:1], dtype=np.float32)
    windows = [(r, q) for r in rows for q in cols]
    images = len(windows) + 1  # the first copy is the image itself: the base probability
    batch = occlusion_batch(net, images)
    net.check_memory(batch, net.estimate_bytes(batch))
    weights = net.weights
    nodes = net._upstream(out)
    work = sum(net._work[n] for n in nodes) or 1
    report = _reporter(progress)

    probability = np.empty(images)
    for start in range(0, images, batch):
        stop = min(images, start + batch)
        xb = np.repeat(x0, stop - start, axis=0)
        for i in range(start, stop):
            if i:
                r, q = windows[i - 1]
                xb[i - start, :, r:r + ph, q:q + pw] = value
        acts = net._forward(xb, weights, nodes,
                            lambda f, at, a=start, b=stop - start: report((a + f * b) / images, at),
                            work)
        y = acts[out]
        del acts
        p = y if net.infos[out].type == "Softmax" else ops.softmax(y)
        probability[start:stop] = p[:, c]
    drop = probability[0] - probability[1:]
    _, h, w = net.input_shape
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for (r, q), d in zip(windows, drop):
        total[r:r + ph, q:q + pw] += d
        count[r:r + ph, q:q + pw] += 1
    return (total / count).astype(np.float32)
