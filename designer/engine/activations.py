"""The activations mobile networks use, with PyTorch's arithmetic: ``ReLU6``, ``SiLU``,
``Hardswish``, ``Hardsigmoid``, and ``Identity``.

Each has a forward op (float32 in, float32 out, worked a chunk at a time like the other
elementwise ops) and a backward op (``gy`` for the output to the gradient for the input, in
float64 as the rest of :mod:`designer.engine.backward`). Where PyTorch's derivative has a kink,
the value at the kink is PyTorch's: ReLU6 and Hardsigmoid pass no gradient at the ends of their
sloped part; Hardswish's slope is 0 at −3 and 1 at 3, the flat parts' values.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from designer.engine.ops import _map

F32 = np.float32


def _relu6(a: np.ndarray, out: np.ndarray) -> None:
    np.clip(a, F32(0), F32(6), out=out)


def _hardsigmoid(a: np.ndarray, out: np.ndarray) -> None:
    # min(max(x + 3, 0), 6) / 6, as PyTorch's CPU kernel works it
    np.add(a, F32(3), out=out)
    np.clip(out, F32(0), F32(6), out=out)
    out /= F32(6)


def _hardswish(a: np.ndarray, out: np.ndarray) -> None:
    # x · min(max(x + 3, 0), 6) / 6
    np.add(a, F32(3), out=out)
    np.clip(out, F32(0), F32(6), out=out)
    out *= a
    out /= F32(6)


def _silu(a: np.ndarray, out: np.ndarray) -> None:
    # x / (1 + e^−x): e^−x overflows to infinity for very negative x, and x / ∞ is the −0 PyTorch
    # gives there too
    np.negative(a, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += F32(1)
    np.divide(a, out, out=out)


def relu6(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return _map(x, _relu6, out=out)


def hardsigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return _map(x, _hardsigmoid, out=out)


def hardswish(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return _map(x, _hardswish, out=out)


def silu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return _map(x, _silu, out=out)


def relu6_backward(gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where((x > 0) & (x < 6), gy, 0.0)


def hardsigmoid_backward(gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where((x > -3) & (x < 3), gy / 6.0, 0.0)


def hardswish_backward(gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    slope = np.where(x64 <= -3, 0.0, np.where(x64 < 3, x64 / 3.0 + 0.5, 1.0))
    return gy * slope


def silu_backward(gy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d/dx x·σ(x) = σ(x) · (1 + x · (1 − σ(x)))."""
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        s = 1.0 / (1.0 + np.exp(-x64))
    return gy * s * (1.0 + x64 * (1.0 - s))


class Activation(NamedTuple):
    #: (x, optionally an array of x's shape to write into) -> the output
    forward: Callable[..., np.ndarray]
    #: (gy, the layer's input) -> the gradient for the input
    backward: Callable[[np.ndarray, np.ndarray], np.ndarray]


#: the layer types of this module (Identity is the network's own: its output is its input)
ACTIVATIONS: dict[str, Activation] = {
    "ReLU6": Activation(relu6, relu6_backward),
    "SiLU": Activation(silu, silu_backward),
    "Hardswish": Activation(hardswish, hardswish_backward),
    "Hardsigmoid": Activation(hardsigmoid, hardsigmoid_backward),
}
