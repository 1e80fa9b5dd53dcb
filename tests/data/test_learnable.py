"""The built-in sets teach something a CNN has to learn: simple classifiers on raw pixels stay well
below what a small CNN reaches, yet they (or simple invariant features) are far above chance, so
the images are not noise. Slow: fits on the full 10,000 + 1,000 images."""
import numpy as np
import pytest

from designer.data.dataset import load_dataset

pytestmark = pytest.mark.slow


def design(c, h, w):
    return {"format": "cnn-designer", "version": 1, "edges": [],
            "nodes": [{"id": "input", "type": "Input",
                       "params": {"channels": c, "height": h, "width": w}}]}


def with_bias(x):
    return np.c_[x.reshape(len(x), -1).astype(np.float64), np.ones(len(x))]


def softmax_regression(x, y, x_val, y_val, steps=300):
    """Linear classifier on raw pixels: the mean cross-entropy minimized by Adam (lr 0.01)."""
    X, Xv, T = with_bias(x), with_bias(x_val), np.eye(10)[y]
    W, m, v = np.zeros((X.shape[1], 10)), 0.0, 0.0
    for step in range(1, steps + 1):
        z = X @ W
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = X.T @ (p - T) / len(X) + 1e-4 * W
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        W -= 0.01 * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return ((Xv @ W).argmax(axis=1) == y_val).mean()


def ridge(x, y, x_val, y_val):
    X = with_bias(x)
    W = np.linalg.solve(X.T @ X + np.eye(X.shape[1]), X.T @ np.eye(10)[y])
    return ((with_bias(x_val) @ W).argmax(axis=1) == y_val).mean()


def nearest_centroid(x, y, x_val, y_val):
    flat, flat_val = x.reshape(len(x), -1), x_val.reshape(len(x_val), -1)
    centres = np.stack([flat[y == k].mean(axis=0) for k in range(10)])
    distance = ((flat_val[:, None] - centres[None]) ** 2).sum(axis=2)
    return (distance.argmin(axis=1) == y_val).mean()


def edge_spectrum(x):
    """Features blind to colour and position: the radial profile (mean and spread per ring) of the
    Fourier magnitude of each image's edge strength."""
    out = []
    for i in range(0, len(x), 1000):
        b = x[i:i + 1000].astype(np.float64)
        e = (np.abs(np.diff(b, axis=3))[:, :, :-1] + np.abs(np.diff(b, axis=2))[:, :, :, :-1]).sum(1)
        f = np.abs(np.fft.rfft2(e / (e.sum(axis=(1, 2), keepdims=True) + 1e-9)))
        r = np.hypot(np.fft.fftfreq(e.shape[1])[:, None], np.fft.rfftfreq(e.shape[2])[None])
        ring = np.minimum((r * 40).astype(int), 19)
        out.append(np.log(np.stack([f[:, ring == k].mean(1) for k in range(20)]
                                   + [f[:, ring == k].std(1) for k in range(20)], axis=1) + 1e-6))
    return np.concatenate(out)


def test_digits_are_neither_trivial_nor_noise():
    data = load_dataset("builtin:digits", design(1, 28, 28))
    (x, y), (xv, yv) = data.train, data.val
    linear = softmax_regression(x, y, xv, yv)  # measured: 0.904
    assert 0.6 < linear < 0.95
    assert nearest_centroid(x, y, xv, yv) > 0.4  # measured 0.632; chance is 0.1


def test_shapes_need_more_than_pixels_but_hold_their_classes():
    data = load_dataset("builtin:shapes", design(3, 64, 64))
    (x, y), (xv, yv) = data.train, data.val
    small = load_dataset("builtin:shapes", design(3, 32, 32))
    assert ridge(*small.train, *small.val) < 0.3  # raw pixels, linear: measured 0.108
    # position- and colour-blind features carry the class: measured 0.586 (chance 0.1)
    features, features_val = edge_spectrum(x), edge_spectrum(xv)
    mu, sd = features.mean(axis=0), features.std(axis=0) + 1e-9
    assert ridge((features - mu) / sd, y, (features_val - mu) / sd, yv) > 0.4
