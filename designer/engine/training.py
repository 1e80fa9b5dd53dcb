"""Training mode (contract §6): the loss, and the ops that act differently while training.

Forward and backward are kept apart, as cs231n's layers do: a training forward op returns its
output and a cache; its backward takes the output gradient and that cache. Arrays are NCHW
float32 (``(N, C, H, W)`` maps, ``(N, F)`` flat), as everywhere in the engine; sums and
per-channel statistics are accumulated in float64.
"""
from __future__ import annotations

import numpy as np


class TrainingError(ValueError):
    """A design, labels or batch that can't be trained on as given; the message says what is
    wrong and what to do."""


def check_labels(y, batch: int, output_id: str, output_shape: tuple[int, ...]) -> np.ndarray:
    """The labels ``y`` as int64 ``(N,)`` after checking them against the design's output (flat
    ``[F]`` with F ≥ 2) and the batch size; TrainingError naming what is wrong otherwise."""
    if len(output_shape) != 1:
        shape = "×".join(str(s) for s in output_shape)
        raise TrainingError(
            f"the network's output ({output_id}) has shape [{shape}], but training needs a flat "
            f"output of one score per class: end the design with Flatten and Linear")
    classes = output_shape[0]
    if classes < 2:
        raise TrainingError(
            f"the network's output ({output_id}) has {classes} value, but training needs at least "
            f"two classes: set its out_features to the number of classes")
    try:
        labels = np.asarray(y)
    except Exception:
        raise TrainingError("the labels are not an array of whole numbers") from None
    if labels.dtype.kind not in "iu":
        raise TrainingError(f"the labels hold {labels.dtype} values; they must be whole numbers "
                            f"(class indices 0 … {classes - 1})")
    if labels.shape != (batch,):
        raise TrainingError(f"the labels have shape {tuple(labels.shape)}, but the batch has "
                            f"{batch} image{'s' if batch != 1 else ''}: they must be shaped "
                            f"({batch},), one class index per image")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)][0]
        raise TrainingError(f"label {int(bad)} is out of range: the network's output "
                            f"({output_id}) has {classes} classes, so labels must be 0 … "
                            f"{classes - 1}")
    return labels.astype(np.int64, copy=False)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """``torch.nn.functional.cross_entropy(logits, labels)`` (mean over the batch) and its
    gradient with respect to the logits. logits: (N, F); labels: int (N,). Returns
    (loss, float32 (N, F)). Worked out in float64 through a stable log-softmax."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log_sum = np.log(np.exp(z).sum(axis=1, keepdims=True))
        log_p = z - log_sum
    n = logits.shape[0]
    rows = np.arange(n)
    loss = float(-log_p[rows, labels].mean())
    grad = np.exp(log_p)
    grad[rows, labels] -= 1.0
    grad /= n
    return loss, grad.astype(np.float32)


def batch_norm_forward(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
                       eps: float, node_id: str = "BatchNorm2d"
                       ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray,
                                  np.ndarray]:
    """Training-mode BatchNorm2d. x: (N, C, H, W). Normalizes each channel with the batch's
    mean and biased variance. Returns (output float32, cache (x̂, 1/σ), batch mean (C,),
    unbiased batch variance (C,)) — the last two are what the running statistics move toward."""
    n, c, h, w = x.shape
    count = n * h * w
    if count < 2:
        raise TrainingError(f"{node_id}: BatchNorm2d needs more than one value per channel to "
                            f"train (the batch has {n} image{'s' if n != 1 else ''} of {h}×{w} "
                            f"maps): use a larger batch")
    mean = x.sum(axis=(0, 2, 3), dtype=np.float64) / count
    centred = np.subtract(x, mean.astype(np.float32).reshape(1, -1, 1, 1), dtype=np.float32)
    squares = np.einsum("nchw,nchw->c", centred, centred, dtype=np.float64)
    # the float32 mean is what was subtracted: correct the sum of squares for its rounding
    shift = centred.sum(axis=(0, 2, 3), dtype=np.float64) / count
    var = np.maximum(squares / count - shift * shift, 0.0)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = centred
    xhat -= shift.astype(np.float32).reshape(1, -1, 1, 1)
    xhat *= inv.astype(np.float32).reshape(1, -1, 1, 1)
    if weight is not None:
        out = np.multiply(xhat, weight.reshape(1, -1, 1, 1), dtype=np.float32)
        out += bias.reshape(1, -1, 1, 1)
    else:
        out = xhat.copy()
    return out, (xhat, inv), mean, var * count / (count - 1)


def batch_norm_backward(gy: np.ndarray, cache: tuple[np.ndarray, np.ndarray],
                        weight: np.ndarray | None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Through the batch statistics: returns (gx float32 (N, C, H, W), d weight (C,),
    d bias (C,)), the latter two float64."""
    xhat, inv = cache
    n, c, h, w = xhat.shape
    count = n * h * w
    gb = gy.sum(axis=(0, 2, 3), dtype=np.float64)
    gw = np.einsum("nchw,nchw->c", gy, xhat, dtype=np.float64)
    scale = inv if weight is None else inv * weight
    shape = (1, -1, 1, 1)
    gx = np.subtract(gy, (gb / count).astype(np.float32).reshape(shape), dtype=np.float32)
    gx -= xhat * (gw / count).astype(np.float32).reshape(shape)
    gx *= scale.astype(np.float32).reshape(shape)
    return gx, gw, gb


def running_update(running_mean: np.ndarray, running_var: np.ndarray, mean: np.ndarray,
                   var_unbiased: np.ndarray, momentum: float | None, batches: int) -> None:
    """PyTorch's update of BatchNorm's running statistics, in place: with a momentum m,
    ``r = (1 − m)·r + m·batch``; with momentum None, the cumulative average, factor
    ``1 / batches`` (``batches`` counts this batch: 1 on the first)."""
    factor = (1.0 / batches) if momentum is None else float(momentum)
    running_mean[...] = (1.0 - factor) * running_mean + factor * mean
    running_var[...] = (1.0 - factor) * running_var + factor * var_unbiased


def dropout_forward(x: np.ndarray, p: float, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Training-mode Dropout: each value is zeroed with probability ``p`` (a draw of ``rng``) and
    the others scaled by 1/(1 − p). Returns (output float32, keep mask or None when p = 0)."""
    if p <= 0:
        return x, None
    keep = rng.random(x.shape, dtype=np.float32) >= np.float32(p)
    if p >= 1:
        return np.zeros(x.shape, dtype=np.float32), keep
    out = np.multiply(x, np.float32(1.0 / (1.0 - p)), dtype=np.float32)
    out *= keep
    return out, keep


def dropout_backward(gy: np.ndarray, keep: np.ndarray | None, p: float) -> np.ndarray:
    if keep is None:
        return gy
    if p >= 1:
        return np.zeros(gy.shape, dtype=np.float32)
    gx = np.multiply(gy, np.float32(1.0 / (1.0 - p)), dtype=np.float32)
    gx *= keep
    return gx
