"""Images in and out, through Qt's ``QImage`` (QtGui only: no widgets, no application needed).

In: any format Qt's image reader supports (PNG, JPEG, BMP, GIF, WebP, TIFF, …), EXIF orientation
applied, transparency composited onto white, resized to the Input's height × width, converted to
grey (1 channel) or RGB (3), scaled to [0, 1], optionally normalized per channel.
Out: activation maps tiled into one PNG with a perceptual colour map, one scale per map.
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QImageReader

from designer.io.templates import resources_dir


class ImageError(ValueError):
    """An image or array that can't be used as input; the message says why and what to do."""


def supported_formats() -> list[str]:
    return sorted(bytes(f).decode("ascii") for f in QImageReader.supportedImageFormats())


def _to_array(image: QImage) -> np.ndarray:
    """A QImage in Format_RGBA8888 or RGB888 as a (H, W, channels) uint8 copy."""
    channels = 4 if image.format() == QImage.Format.Format_RGBA8888 else 3
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * h)
    return buffer.reshape(h, stride)[:, :w * channels].reshape(h, w, channels).copy()


def _from_array(pixels: np.ndarray) -> QImage:
    """A (H, W, 3) uint8 array as a QImage that owns a copy of its pixels."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w, _ = pixels.shape
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB, transparency composited onto white."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)  # honour EXIF orientation
    image = reader.read()
    if image.isNull():
        raise ImageError(f"{path.name}: can't be read as an image ({reader.errorString()}); "
                         f"supported formats: {', '.join(supported_formats())}")
    rgba = _to_array(image.convertToFormat(QImage.Format.Format_RGBA8888)).astype(np.float32)
    alpha = rgba[:, :, 3:4] / 255.0
    rgb = rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 with Qt's smooth (area-averaging when shrinking) filter."""
    if pixels.shape[:2] == (height, width):
        return pixels
    scaled = _from_array(pixels).scaled(width, height, Qt.AspectRatioMode.IgnoreAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation)
    return _to_array(scaled.convertToFormat(QImage.Format.Format_RGB888))


def to_input(pixels: np.ndarray, channels: int, height: int, width: int,
             mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
             name: str = "the image") -> np.ndarray:
    """(H, W, 3) uint8 → float32 (C, H, W) in [0, 1] as the design's Input takes it."""
    if channels not in (1, 3):
        raise ImageError(f"this design's Input has {channels} channels, but an image gives 1 (grey) "
                         f"or 3 (RGB); give a .npy array of shape ({channels}, {height}, {width}) "
                         f"instead")
    rgb = resize(pixels, height, width).astype(np.float32) / 255.0
    if channels == 1:  # ITU-R BT.601 luma, as most image libraries' grey conversion
        x = (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[None]
    else:
        x = rgb.transpose(2, 0, 1)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if mean is not None or std is not None:
        m = np.asarray(mean if mean is not None else [0.0], dtype=np.float32).reshape(-1)
        s = np.asarray(std if std is not None else [1.0], dtype=np.float32).reshape(-1)
        m = np.repeat(m, channels) if m.size == 1 else m  # one value serves every channel
        s = np.repeat(s, channels) if s.size == 1 else s
        if m.shape != (channels,) or s.shape != (channels,):
            raise ImageError(f"mean and std need one value, or one per channel ({channels}), "
                             f"for {name}")
        if (s == 0).any():
            raise ImageError("std must not be 0")
        x = (x - m[:, None, None]) / s[:, None, None]
    return x


def load_image(path: str | os.PathLike, channels: int, height: int, width: int,
               mean: Sequence[float] | None = None, std: Sequence[float] | None = None
               ) -> np.ndarray:
    """An image file as float32 (C, H, W) for an Input of that shape."""
    return to_input(read_image(path), channels, height, width, mean, std, Path(path).name)


def load_array(path: str | os.PathLike, shape: tuple[int, int, int]) -> np.ndarray:
    """A .npy float array (C, H, W) or (N, C, H, W), used as it is, as float32 (N, C, H, W)."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise ImageError(f"{path.name}: not a readable .npy array ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise ImageError(f"{path.name}: an archive of several arrays; --input takes one .npy array")
    if array.dtype.kind not in "fiu":
        raise ImageError(f"{path.name}: holds {array.dtype} values, not numbers")
    given = tuple(array.shape)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or tuple(array.shape[1:]) != tuple(shape):
        c, h, w = shape
        raise ImageError(f"{path.name}: has shape {given}, but this design's Input "
                         f"takes ({c}, {h}, {w}) or (N, {c}, {h}, {w})")
    if not np.isfinite(array).all():
        raise ImageError(f"{path.name}: holds NaN or infinite values")
    return array.astype(np.float32)


def load_input(path: str | os.PathLike, shape: tuple[int, int, int],
               mean: Sequence[float] | None = None, std: Sequence[float] | None = None
               ) -> np.ndarray:
    """``--input``: a .npy array as it is, or an image converted to the Input (and normalized
    with ``mean`` and ``std`` if given); (N, C, H, W)."""
    if str(path).lower().endswith(".npy"):
        if mean is not None or std is not None:
            raise ImageError("--mean and --std apply to images; a .npy array is used as it is")
        return load_array(path, shape)
    return load_image(path, *shape, mean=mean, std=std)[None]


# ------------------------------------------------------------------ activation maps out

@lru_cache(maxsize=1)
def viridis() -> np.ndarray:
    """The viridis colour map as a (256, 3) uint8 lookup table."""
    path = resources_dir() / "colormaps" / "viridis.csv"
    rows = [line for line in path.read_text(encoding="ascii").splitlines()
            if line and not line.startswith("#")]
    return np.array([[int(v) for v in row.split(",")] for row in rows], dtype=np.uint8)


def normalize_each(maps: np.ndarray) -> np.ndarray:
    """Scale each map (first axis) to [0, 1] on its own; a constant map becomes 0."""
    flat = maps.reshape(maps.shape[0], -1).astype(np.float64)
    lo, hi = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return ((flat - lo) / span).reshape(maps.shape)


def tile_maps(activation: np.ndarray, gap: int = 2, min_cell: int = 48) -> np.ndarray:
    """One sample's activation, (C, H, W) or (F,), as an RGB grid (rows, cols, 3) uint8: every map
    (or, for a flat vector, every value) coloured with viridis on its own scale, tiled in a near-
    square grid, small maps enlarged to at least ``min_cell`` pixels."""
    if activation.ndim == 1:  # a flat vector: one strip, one shared scale
        maps = normalize_each(activation[None, None, :])  # (1, 1, F)
    else:
        maps = normalize_each(activation)
    c, h, w = maps.shape
    scale = max(1, math.ceil(min_cell / max(h, w))) if activation.ndim == 3 else \
        max(1, math.ceil(min_cell / h))
    if activation.ndim == 1:
        scale_h, scale_w = min_cell, max(1, math.ceil(400 / w))
    else:
        scale_h = scale_w = scale
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    cell_h, cell_w = h * scale_h, w * scale_w
    grid = np.full((rows * (cell_h + gap) - gap, cols * (cell_w + gap) - gap, 3), 255, np.uint8)
    lut = viridis()
    index = np.rint(maps * 255).astype(np.uint8)
    for i in range(c):
        r, q = divmod(i, cols)
        big = np.repeat(np.repeat(lut[index[i]], scale_h, axis=0), scale_w, axis=1)
        y, x = r * (cell_h + gap), q * (cell_w + gap)
        grid[y:y + cell_h, x:x + cell_w] = big
    return grid


def save_png(pixels: np.ndarray, path: str | os.PathLike) -> None:
    """Write (H, W, 3) uint8 as PNG."""
    if not _from_array(pixels).save(str(path), "PNG"):
        raise OSError(f"can't write {path}")
