"""Classic filters: hand-made kernels for the first convolution, so its activation maps are
readable on real images, the way the first layer of a trained CNN is (edges, blur, colour).

Every kernel is sampled from a continuous function on the kernel's grid (centred, so even and
non-square sizes work too): derivative-of-Gaussian edges, a Gaussian blur, a difference of
Gaussians for centre–surround, and Gaussian-weighted colour differences. Where a kernel size can't
hold a kernel's spatial structure (1×1, or an edge across a single row), that kernel is left out
rather than returned as zeros.

Scale: every kernel has an L1 norm (sum of absolute weights) of 1, so no response can exceed the
brightest pixel of the input. The blur sums to 1 (it averages); every other kernel sums to 0, so
it answers 0 on a flat patch and only lights up on a change: an edge, a spot, a colour contrast.
A unit step from 0 to 1 gives an edge kernel's largest response, 0.5. That keeps responses on the
scale of the image itself, like He initialization does for inputs of about unit size.
"""
from __future__ import annotations

import math

import numpy as np

from designer.core.analysis import Analysis

#: channel weights (red, green, blue) of the colour-opponent kernels, each summing to 0
_OPPONENTS: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("red − green", (1.0, -1.0, 0.0)),
    ("blue − yellow", (-0.5, -0.5, 1.0)),
    ("green − magenta", (-0.5, 1.0, -0.5)),
)

_DEGENERATE = 1e-9  # a kernel whose L1 norm falls below this has no structure at this size


def first_convolution(analysis: Analysis) -> str | None:
    """The id of the Conv2d nearest the Input (fewest connections away from it), ties going to
    the one first in topological order; in a plain chain simply the first convolution. None if
    the design has no Conv2d."""
    design = analysis.design
    depth: dict[str, float] = {}
    best: tuple[float, int, str] | None = None
    for index, info in enumerate(analysis.infos()):
        if info.type == "Input":
            depth[info.id] = 0
        else:
            depth[info.id] = 1 + min((depth.get(s, math.inf) for s in design.sources(info.id)),
                                     default=math.inf)
        if info.type == "Conv2d" and (best is None or (depth[info.id], index) < best[:2]):
            best = (depth[info.id], index, info.id)
    return None if best is None else best[2]


# ---------------------------------------------------------------------- sampling

def _grid(kh: int, kw: int) -> tuple[np.ndarray, np.ndarray]:
    """Kernel coordinates centred on the kernel's middle, in units of the Gaussian's width along
    each axis (a quarter of the kernel's size, at least half a pixel): y down, x right."""
    def axis(n: int) -> np.ndarray:
        return (np.arange(n, dtype=np.float64) - (n - 1) / 2) / max(n / 4, 0.5)
    return axis(kh)[:, None], axis(kw)[None, :]


def _gaussian(kh: int, kw: int, width: float = 1.0) -> np.ndarray:
    """A Gaussian bump over the kernel (``width`` times the standard width), summing to 1."""
    y, x = _grid(kh, kw)
    g = np.exp(-(x * x + y * y) / (2 * width * width))
    return g / g.sum()


def _unit(kernel: np.ndarray) -> np.ndarray | None:
    """Scaled to an L1 norm of 1; None if nothing is left of it at this size."""
    norm = np.abs(kernel).sum()
    return None if norm < _DEGENERATE else kernel / norm


def _edge(kh: int, kw: int, dx: float, dy: float) -> np.ndarray | None:
    """Derivative of a Gaussian along the direction (dx, dy): positive on the side the direction
    points to, negative on the other, so it answers where brightness rises that way. Odd about
    the kernel's middle, so it sums to 0."""
    y, x = _grid(kh, kw)
    return _unit((dx * x + dy * y) * np.exp(-(x * x + y * y) / 2))


def _centre_surround(kh: int, kw: int) -> np.ndarray | None:
    """A narrow Gaussian minus a wide one (difference of Gaussians): positive in the middle,
    negative around it. Both Gaussians sum to 1, so their difference sums to 0."""
    return _unit(_gaussian(kh, kw, 0.5) - _gaussian(kh, kw, 1.0))


def _grey_kernels(kh: int, kw: int) -> list[tuple[str, np.ndarray]]:
    """The single-channel kernels this size can hold, most telling first."""
    if kh * kw == 1:
        return [("brightness", np.ones((1, 1)))]
    diagonal = math.sqrt(0.5)
    candidates = [("vertical edge", _edge(kh, kw, 1.0, 0.0)),
                  ("horizontal edge", _edge(kh, kw, 0.0, 1.0))]
    if kh > 1 and kw > 1:  # on a single row or column a diagonal is just the other edge again
        candidates += [("diagonal edge /", _edge(kh, kw, diagonal, diagonal)),
                       ("diagonal edge \\", _edge(kh, kw, diagonal, -diagonal))]
    candidates += [("centre–surround", _centre_surround(kh, kw)),
                   ("blur", _gaussian(kh, kw))]
    return [(name, k) for name, k in candidates if k is not None]


def _colour_kernels(kh: int, kw: int) -> list[tuple[str, np.ndarray]]:
    """Colour-opponent kernels for RGB: one colour's blurred level minus another's."""
    profile = _gaussian(kh, kw)
    out = []
    for name, weights in _OPPONENTS:
        channels = np.asarray(weights)[:, None, None] * profile[None]
        out.append((name, channels / np.abs(channels).sum()))
    return out


# ---------------------------------------------------------------------- the kernels

def classic_kernels(in_channels: int, kh: int, kw: int) -> list[tuple[str, np.ndarray]]:
    """Named float32 kernels of shape (in_channels, kh, kw), most telling first.

    Grey kernels (the same on every channel, each channel carrying an equal share, so on RGB they
    see the brightness):

    - **vertical edge**: lights up where the image gets brighter from left to right (a vertical
      boundary), negative where it gets darker, 0 on flat areas;
    - **horizontal edge**: the same for brighter downwards (a horizontal boundary);
    - **diagonal edge /** and **diagonal edge \\**: boundaries running along / (brighter towards
      the bottom right) and along \\ (brighter towards the top right);
    - **centre–surround**: a spot or thin line brighter than its surroundings (a difference of
      Gaussians, like the retina's cells);
    - **blur**: a weighted local average; a smoothed copy of the image;
    - **brightness**: at 1×1 only, where nothing spatial fits: the channels' average.

    For RGB input (in_channels == 3), colour-opponent kernels, each a blurred colour difference
    that is 0 on any grey: **red − green** (positive on red, negative on green),
    **blue − yellow** and **green − magenta**. They come after the first two edges.

    Spatial kernels the size can't hold are left out: 1×1 keeps brightness and colour only, a
    single row has no horizontal edge and no diagonals, 2×2 has no centre–surround. Other channel
    counts get the grey kernels only. The blur sums to 1, every other kernel to 0; each has an L1
    norm of 1 (see the module's note on scale).
    """
    if min(in_channels, kh, kw) < 1:
        raise ValueError(f"a kernel needs at least one channel, row and column, not "
                         f"{in_channels}×{kh}×{kw}")
    grey = [(name, np.repeat(k[None] / in_channels, in_channels, axis=0))
            for name, k in _grey_kernels(kh, kw)]
    colour = _colour_kernels(kh, kw) if in_channels == 3 else []
    ordered = grey[:2] + colour[:2] + grey[2:] + colour[2:]
    return [(name, k.astype(np.float32)) for name, k in ordered]


def apply_classic_filters(weights: dict[str, np.ndarray], analysis: Analysis
                          ) -> tuple[dict[str, np.ndarray], str | None, list[str]]:
    """Put the classic kernels into the first convolution's first filters.

    Returns ``(new weights, the convolution's id, kernel names in filter order)``. As many filters
    as there are kernels are replaced (fewer if the layer has fewer filters), and their biases
    set to 0, so each map shows exactly what its kernel finds; the remaining filters and every
    other tensor keep the given arrays. With groups > 1 each filter sees in/groups channels, and
    the kernels are made for that many. ``weights`` itself is not changed. Without a convolution
    (or without its weight in ``weights``) the result is a copy of ``weights``, None and [].
    """
    result = dict(weights)
    node_id = first_convolution(analysis)
    key = f"{node_id}.weight"
    if node_id is None or key not in weights or np.ndim(weights[key]) != 4:
        return result, None, []
    weight = np.array(weights[key], dtype=np.float32)  # a copy
    filters, in_channels, kh, kw = weight.shape
    kernels = classic_kernels(in_channels, kh, kw)[:filters]
    for index, (_, kernel) in enumerate(kernels):
        weight[index] = kernel
    result[key] = weight
    bias_key = f"{node_id}.bias"
    if bias_key in weights:
        bias = np.array(weights[bias_key], dtype=np.float32)
        bias[:len(kernels)] = 0
        result[bias_key] = bias
    return result, node_id, [name for name, _ in kernels]
