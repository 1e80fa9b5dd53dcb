"""Images in and out, through Qt's ``QImage`` (QtGui only: no widgets, no application needed).

In: any format Qt's image reader supports (PNG, JPEG, BMP, GIF, WebP, TIFF, …), EXIF orientation
applied, transparency composited onto white, resized to the Input's height × width, converted to
grey (1 channel) or RGB (3), scaled to [0, 1], optionally normalized per channel. Nothing is
decoded or resized before its cost is known: the file must be a regular file, its header gives
the image's size and pixel format, and the memory that decoding and resizing take is checked
against what is free (and against Qt's own limits) first. Pixels stay 8-bit until the one float32
array the network takes is filled, a band of rows at a time.

Out: activation maps tiled into one PNG with a perceptual colour map, one scale per map, never
larger than ``MAX_PICTURE_SIDE`` pixels a side (large maps are shown averaged over blocks of
pixels, and :class:`TilePlan` says so), made in float32 one map and one band of rows at a time.
"""
from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PySide6.QtCore import QBuffer, QFile, QIODevice, Qt
from PySide6.QtGui import QImage, QImageIOHandler, QImageReader

from designer.core.atomic import NotRegularFile, open_regular, regular_file_problem, write_atomic
from designer.engine.arrays import ArrayFileError, load_npy
from designer.io.templates import resources_dir


class ImageError(ValueError):
    """An image or array that can't be used as input; the message says why and what to do."""


def supported_formats() -> list[str]:
    return sorted(bytes(f).decode("ascii") for f in QImageReader.supportedImageFormats())


# --------------------------------------------------------------------------- limits and costs

#: Qt keeps widths and heights in C ints, and a line's size in bits in one too (32-bit pixels)
QT_MAX_HEIGHT = 2**31 - 1
QT_MAX_WIDTH = (2**31 - 32) // 32
#: bytes per pixel assumed for a decoded image whose header doesn't name its pixel format
_UNKNOWN_BYTES_PER_PIXEL = 8
#: Qt's smooth scaling: a 32-bit copy of the source and working space, and the result
_RESIZE_BYTES_PER_SOURCE_PIXEL = 8
_RESIZE_BYTES_PER_TARGET_PIXEL = 8
#: the float32 input is filled this many pixels at a time (a few MiB of temporaries)
_BAND_PIXELS = 1 << 18


def available_memory() -> int | None:
    """Bytes free for a new allocation, or None if unknown (the executor's function, looked up
    when called: that is where callers and tests replace it)."""
    from designer.engine import network
    return network.available_memory()


def _mib(n: int | float) -> str:
    return f"{round(n / 2**20):,} MiB"


def _check_free(need: int, what: str, advice: str) -> None:
    """ImageError with both numbers if ``need`` bytes are more than the machine has free."""
    free = available_memory()
    if free is not None and need > free:
        raise ImageError(f"{what} needs about {_mib(need)}, but only {_mib(free)} is free; "
                         f"{advice}")


def _check_qt_size(height: int, width: int, what: str) -> None:
    if height < 1 or width < 1:
        raise ImageError(f"{what}: {height:,} × {width:,} pixels is not an image size")
    if width > QT_MAX_WIDTH or height > QT_MAX_HEIGHT:
        raise ImageError(f"{what}: {height:,} × {width:,} pixels is more than Qt can hold in one "
                         f"image (at most {QT_MAX_WIDTH:,} pixels wide and {QT_MAX_HEIGHT:,} "
                         f"high); use a smaller size")


def resize_bytes(source: tuple[int, int], target: tuple[int, int]) -> int:
    """Working memory of resizing a (height, width) image to another (none if equal)."""
    if tuple(source) == tuple(target):
        return 0
    return (source[0] * source[1] * _RESIZE_BYTES_PER_SOURCE_PIXEL
            + target[0] * target[1] * _RESIZE_BYTES_PER_TARGET_PIXEL)


def input_bytes(channels: int, height: int, width: int) -> int:
    """The float32 (C, H, W) array the network takes."""
    return channels * height * width * 4


# ------------------------------------------------------------------------------ files in

def check_regular_file(path: str | os.PathLike, kind: str = "image") -> None:
    """ImageError unless ``path`` is a regular file that exists (a folder, a pipe or a device is
    refused without opening it, so nothing can block)."""
    problem = regular_file_problem(path, f"an {kind}" if kind[0] in "aeiou" else f"a {kind}")
    if problem is not None:
        raise ImageError(problem)


@dataclass(frozen=True)
class ImageInfo:
    """What an image file's header says, before any pixel is decoded."""

    path: Path
    format: str  #: Qt's name for the file format ("png", "jpeg", ...)
    height: int | None  #: None if the header doesn't say (then it is known after decoding)
    width: int | None
    bytes_per_pixel: int  #: of the image Qt decodes it to (assumed, if the header doesn't say)
    transformed: bool  #: EXIF asks for a rotation or flip (one more copy while decoding)

    @property
    def pixels(self) -> int | None:
        return None if self.height is None or self.width is None else self.height * self.width

    def decode_bytes(self) -> int | None:
        """Peak memory of :func:`read_image`: the decoded image (twice if EXIF turns it), its
        8-bit RGB(A) conversion, and the (H, W, 3) array it ends in."""
        if self.pixels is None:
            return None
        native = self.pixels * self.bytes_per_pixel
        converted, out = self.pixels * 4, self.pixels * 3
        return max(native * (2 if self.transformed else 1), native + converted, converted + out)


@contextlib.contextmanager
def _open_reader(path: str | os.PathLike
                 ) -> Iterator[tuple[Callable[[int | None], tuple[QImage, str]], ImageInfo]]:
    """What the file's header says, and ``read(allocation limit in MiB)`` giving the decoded
    image (null on failure) and Qt's reason. The file is opened by Python (any file name works,
    and a pipe that appeared since the check can't block) and read through a QImageReader."""
    path = Path(path)
    try:
        handle = open_regular(path, "an image")
    except NotRegularFile as exc:
        raise ImageError(str(exc)) from None
    device = QFile()
    reader = None
    try:
        if not device.open(handle.fileno(), QIODevice.OpenModeFlag.ReadOnly,
                           QFile.FileHandleFlag.DontCloseHandle):
            raise ImageError(f"{path}: can't be read ({device.errorString()})")
        reader = QImageReader(device)
        reader.setAutoTransform(True)  # honour EXIF orientation
        if not reader.canRead():
            raise ImageError(f"{path.name}: can't be read as an image ({reader.errorString()}); "
                             f"supported formats: {', '.join(supported_formats())}")
        size = reader.size()
        height, width = (size.height(), size.width()) if size.isValid() else (None, None)
        fmt = reader.imageFormat()
        bpp = _UNKNOWN_BYTES_PER_PIXEL
        # a broken header can leave the format uninitialised (any number): Qt's lookup of an
        # out-of-range format crashes, so only known formats are asked about
        if 0 < fmt.value < QImage.Format.NImageFormats.value:
            bpp = max(1, math.ceil(QImage.toPixelFormat(fmt).bitsPerPixel() / 8))
        transformed = reader.transformation() != QImageIOHandler.Transformation.TransformationNone
        info = ImageInfo(path, bytes(reader.format()).decode("ascii", "replace"), height, width,
                         bpp, transformed)

        def read(limit: int | None) -> tuple[QImage, str]:
            with _allocation_limit(limit):
                image = reader.read()
            return image, reader.errorString()

        yield read, info
    finally:
        reader = None  # before its device: a format's handler may still touch the device on exit
        device.close()
        handle.close()


def image_info(path: str | os.PathLike) -> ImageInfo:
    """Read only the header of an image file (ImageError if it is not a readable image)."""
    with _open_reader(path) as (_, info):
        return info


@contextlib.contextmanager
def _allocation_limit(megabytes: int | None) -> Iterator[None]:
    """Let Qt's reader allocate what our own check allowed (Qt refuses more than 256 MB by
    default, which would turn away large images the machine can hold)."""
    old = QImageReader.allocationLimit()
    if megabytes is not None and old != 0:
        QImageReader.setAllocationLimit(max(old, megabytes))
    try:
        yield
    finally:
        QImageReader.setAllocationLimit(old)


def _decode(path: str | os.PathLike, later: Callable[[ImageInfo], int] | None = None,
            resize_to: tuple[int, int] | None = None) -> QImage:
    """Decode after checking that it fits in memory: decoding itself, and ``later(info)`` more
    bytes needed afterwards while the (H, W, 3) pixels are kept."""
    with _open_reader(path) as (read, info):
        name = info.path.name
        if info.pixels is not None:
            _check_qt_size(info.height, info.width, name)
            need = info.decode_bytes()
            if later is not None:
                need = max(need, info.pixels * 3 + later(info))
            what = f"{name}: decoding this {info.width:,} × {info.height:,} image"
            if resize_to is not None and resize_to != (info.height, info.width):
                what += f" and resizing it to {resize_to[1]:,} × {resize_to[0]:,}"
            _check_free(need, what, "use a smaller image" if resize_to is None else
                        "use a smaller image or Input size")
            limit = math.ceil(info.pixels * info.bytes_per_pixel / 2**20) + 1
        else:  # the header doesn't say: let the decoded image take at most a quarter of what is free
            free = available_memory()
            limit = None if free is None else max(1, free // 4 // 2**20)
        image, why = read(limit)
        if image.isNull():
            if info.pixels is None and limit is not None:
                why += f"; or larger than the {limit:,} MiB that can be spared to decode it"
            raise ImageError(f"{name}: can't be read as an image ({why}); "
                             f"supported formats: {', '.join(supported_formats())}")
        return image


def _bits(image: QImage, channels: int) -> np.ndarray:
    """A (H, W, channels) uint8 view of an 8-bit image's pixels (valid while ``image`` lives)."""
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * h)
    return buffer.reshape(h, stride)[:, :w * channels].reshape(h, w, channels)


def _rows_per_band(width: int) -> int:
    return max(1, _BAND_PIXELS // max(1, width))


def _to_rgb(image: QImage) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any QImage, transparency composited onto white with 8-bit
    arithmetic: premultiplied colour plus the white that shows through, c·a/255 + (255 − a),
    rounded once (Qt premultiplies exactly)."""
    name = "this image"
    pixels = image.width() * image.height()
    if image.hasAlphaChannel():
        _check_free(pixels * 7, f"converting {name} ({image.width():,} × {image.height():,})",
                    "use a smaller image")
        image = image.convertToFormat(QImage.Format.Format_RGBA8888_Premultiplied)
        if image.isNull():
            raise ImageError("not enough memory to convert the image")
        rgba = _bits(image, 4)
        out = np.empty(rgba.shape[:2] + (3,), np.uint8)
        step = _rows_per_band(rgba.shape[1])
        for r in range(0, rgba.shape[0], step):
            band = rgba[r:r + step]
            np.add(band[:, :, :3], 255 - band[:, :, 3:4], out=out[r:r + step])
        return out
    _check_free(pixels * 6, f"converting {name} ({image.width():,} × {image.height():,})",
                "use a smaller image")
    if image.format() != QImage.Format.Format_RGB888:
        image = image.convertToFormat(QImage.Format.Format_RGB888)
        if image.isNull():
            raise ImageError("not enough memory to convert the image")
    return _bits(image, 3).copy()


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB, transparency composited onto white. The
    header's size is checked against free memory before anything is decoded."""
    return _to_rgb(_decode(path))


def _from_array(pixels: np.ndarray) -> QImage:
    """A (H, W, 3) uint8 array as a QImage that owns a copy of its pixels."""
    return _view(np.ascontiguousarray(pixels, dtype=np.uint8)).copy()


def _view(pixels: np.ndarray) -> QImage:
    """A QImage on a C-contiguous (H, W, 3) uint8 array's memory (use it while ``pixels`` lives)."""
    h, w, _ = pixels.shape
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888)


def _resized(pixels: np.ndarray, height: int, width: int) -> tuple[np.ndarray, QImage | None]:
    """Resize (H, W, 3) uint8 with Qt's smooth filter (area-averaging when shrinking); the
    result is a view on the returned QImage's memory (None if no resizing was needed)."""
    if pixels.shape[:2] == (height, width):
        return pixels, None
    _check_qt_size(height, width, "resizing")
    source = np.ascontiguousarray(pixels, dtype=np.uint8)
    scaled = _view(source).scaled(width, height, Qt.AspectRatioMode.IgnoreAspectRatio,
                                  Qt.TransformationMode.SmoothTransformation)
    if scaled.isNull():
        raise ImageError(f"not enough memory to resize the image to {height:,} × {width:,}")
    if scaled.format() != QImage.Format.Format_RGB888:
        scaled = scaled.convertToFormat(QImage.Format.Format_RGB888)
    return _bits(scaled, 3), scaled


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 with Qt's smooth (area-averaging when shrinking) filter."""
    out, owner = _resized(pixels, height, width)
    return out if owner is None else out.copy()


def check_scaling(mean: Sequence[float] | None, std: Sequence[float] | None, channels: int,
                  name: str = "the image") -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel float32 (mean, std) from one value or one per channel, or None if neither is
    given. ImageError unless every mean is finite and every std finite and above 0."""
    if mean is None and std is None:
        return None
    m = np.asarray(mean if mean is not None else [0.0], dtype=np.float64).reshape(-1)
    s = np.asarray(std if std is not None else [1.0], dtype=np.float64).reshape(-1)
    if not np.isfinite(m).all():
        raise ImageError(f"mean must be a finite number (got {', '.join(map(str, m))})")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ImageError(f"std must be a finite number above 0 (got {', '.join(map(str, s))})")
    m = np.repeat(m, channels) if m.size == 1 else m  # one value serves every channel
    s = np.repeat(s, channels) if s.size == 1 else s
    if m.shape != (channels,) or s.shape != (channels,):
        raise ImageError(f"mean and std need one value, or one per channel ({channels}), "
                         f"for {name}")
    m32, s32 = m.astype(np.float32), s.astype(np.float32)
    if not (np.isfinite(m32).all() and np.isfinite(s32).all() and (s32 > 0).all()):
        raise ImageError("mean and std must fit in 32-bit floats (std above 1e-45, both below "
                         "3.4e38)")
    return m32, s32


def _check_channels(channels: int, height: int, width: int) -> None:
    if channels not in (1, 3):
        raise ImageError(f"this design's Input has {channels} channels, but an image gives 1 (grey) "
                         f"or 3 (RGB); give a .npy array of shape ({channels}, {height}, {width}) "
                         f"instead")


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as most libraries' grey


def to_input(pixels: np.ndarray, channels: int, height: int, width: int,
             mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
             name: str = "the image") -> np.ndarray:
    """(H, W, 3) uint8 → float32 (C, H, W) in [0, 1] as the design's Input takes it. The memory
    of resizing and of the result is checked first; pixels become floats a band at a time."""
    _check_channels(channels, height, width)
    scaling = check_scaling(mean, std, channels, name)
    _check_qt_size(height, width, f"the Input ({height:,} × {width:,})")
    _check_free(resize_bytes(pixels.shape[:2], (height, width)) + input_bytes(channels, height, width),
                f"resizing {name} to the Input's {height:,} × {width:,}",
                "use a smaller Input size")
    rgb, owner = _resized(pixels, height, width)
    x = np.empty((channels, height, width), np.float32)
    step = _rows_per_band(width)
    for r in range(0, height, step):
        band = rgb[r:r + step].astype(np.float32)
        band /= 255.0
        if channels == 1:
            np.dot(band, _LUMA, out=x[0, r:r + step])
        else:
            x[:, r:r + step] = band.transpose(2, 0, 1)
        del band  # before the next band is made
    del rgb, owner
    if scaling is not None:
        m, s = scaling
        for c in range(channels):
            np.subtract(x[c], m[c], out=x[c])
            np.divide(x[c], s[c], out=x[c])
    return x


def load_image(path: str | os.PathLike, channels: int, height: int, width: int,
               mean: Sequence[float] | None = None, std: Sequence[float] | None = None
               ) -> np.ndarray:
    """An image file as float32 (C, H, W) for an Input of that shape. Before anything is
    decoded: the channels, mean and std are checked, and the header's size tells the memory
    that decoding, resizing and the result will take, which must be free."""
    _check_channels(channels, height, width)
    check_scaling(mean, std, channels, Path(path).name)
    _check_qt_size(height, width, f"the Input ({height:,} × {width:,})")

    def later(info: ImageInfo) -> int:
        return (resize_bytes((info.height, info.width), (height, width))
                + input_bytes(channels, height, width))

    pixels = _to_rgb(_decode(path, later, (height, width)))
    return to_input(pixels, channels, height, width, mean, std, Path(path).name)


def load_array(path: str | os.PathLike, shape: tuple[int, int, int]) -> np.ndarray:
    """A .npy float array (C, H, W) or (N, C, H, W), used as it is, as float32 (N, C, H, W).

    Read with the engine's safe reader: the header's dtype and shape are checked against the
    Input, and the data's size against the file and free memory, before anything is allocated.
    Raises ImageError, or NotEnoughMemory (both numbers in its message)."""
    path = Path(path)
    c, h, w = shape

    def check(given: tuple[int, ...], dtype: np.dtype) -> None:
        if dtype.kind not in "fiu":
            raise ImageError(f"{path.name}: holds {dtype} values, not numbers")
        if not (given == (c, h, w) or (len(given) == 4 and given[1:] == (c, h, w))):
            raise ImageError(f"{path.name}: has shape {given}, but this design's Input "
                             f"takes ({c}, {h}, {w}) or (N, {c}, {h}, {w})")
        if len(given) == 4 and given[0] < 1:
            raise ImageError(f"{path.name}: holds an empty batch (N = 0)")

    try:
        array = load_npy(path, check, what="input array")
    except ArrayFileError as exc:
        raise ImageError(str(exc)) from None
    if array.ndim == 3:
        array = array[None]
    for sample in array:  # one sample at a time: no temporary the size of the whole batch
        if not np.isfinite(sample).all():
            raise ImageError(f"{path.name}: holds NaN or infinite values")
    return array.astype(np.float32, copy=False)


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

#: a picture of activation maps is never wider or higher than this (about 50 MB as RGB)
MAX_PICTURE_SIDE = 4096
#: where a value is NaN (inf and -inf take the top and bottom colours)
NAN_COLOUR = (160, 160, 160)


@lru_cache(maxsize=1)
def viridis() -> np.ndarray:
    """The viridis colour map as a (256, 3) uint8 lookup table."""
    path = resources_dir() / "colormaps" / "viridis.csv"
    rows = [line for line in path.read_text(encoding="ascii").splitlines()
            if line and not line.startswith("#")]
    return np.array([[int(v) for v in row.split(",")] for row in rows], dtype=np.uint8)


def value_range(values: np.ndarray) -> tuple[float, float]:
    """(lowest, highest) finite value, a band at a time (no copy of a large array); (0, 0) if
    none is finite."""
    flat = values.reshape(-1)
    lo, hi = math.inf, -math.inf
    for start in range(0, flat.size, _BAND_PIXELS):
        band = flat[start:start + _BAND_PIXELS]
        b_lo, b_hi = band.min(), band.max()
        if not (np.isfinite(b_lo) and np.isfinite(b_hi)):
            band = band[np.isfinite(band)]
            if band.size == 0:
                continue
            b_lo, b_hi = band.min(), band.max()
        lo, hi = min(lo, float(b_lo)), max(hi, float(b_hi))
    return (lo, hi) if lo <= hi else (0.0, 0.0)


def _unit(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """float32 values scaled to [0, 1] by (v − lo)/(hi − lo); a constant gives 0, inf and -inf
    the ends, NaN stays NaN."""
    span = hi - lo
    with np.errstate(over="ignore", invalid="ignore"):
        if span > 1e37:  # v − lo could overflow float32: scale first (no cancellation this wide)
            out = np.multiply(values, np.float32(1.0 / span), dtype=np.float32)
            out -= np.float32(lo / span)
        else:
            out = np.subtract(values, np.float32(lo), dtype=np.float32)
            if span > 0:
                out *= np.float32(1.0 / span)
            else:
                out[np.isfinite(out)] = 0.0
        np.clip(out, 0.0, 1.0, out=out)
    return out


def normalize_each(maps: np.ndarray) -> np.ndarray:
    """Scale each map (first axis) to [0, 1] on its own, in float32; a constant map becomes 0;
    the scale is set by the finite values."""
    out = np.empty(maps.shape, np.float32)
    for i in range(maps.shape[0]):
        out[i] = _unit(maps[i], *value_range(maps[i]))
    return out


def _colour(unit: np.ndarray) -> np.ndarray:
    """[0, 1] float32 (NaN allowed) → viridis RGB uint8 (..., 3)."""
    nan = np.isnan(unit)
    index = np.rint(np.where(nan, 0.0, unit) * 255).astype(np.uint8)
    rgb = viridis()[index]
    if nan.any():
        rgb[nan] = NAN_COLOUR
    return rgb


def _block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Average over factor × factor blocks (partial blocks at the edges averaged over what they
    hold); NaN propagates."""
    if factor == 1:
        return values
    h, w = values.shape
    rows = np.add.reduceat(values, np.arange(0, h, factor), axis=0)
    sums = np.add.reduceat(rows, np.arange(0, w, factor), axis=1)
    counts_h = np.minimum(factor, h - np.arange(0, h, factor)).astype(np.float32)
    counts_w = np.minimum(factor, w - np.arange(0, w, factor)).astype(np.float32)
    return sums / counts_h[:, None] / counts_w[None, :]


@dataclass(frozen=True)
class TilePlan:
    """How one sample's activation is drawn: the grid of maps (or the strip of a flat vector),
    how much each map is enlarged or averaged down, and the picture's size."""

    shape: tuple[int, ...]  #: the activation's shape, (C, H, W) or (F,)
    shown: int  #: maps drawn (the first ones; all of them unless there are millions)
    rows: int
    cols: int
    shrink: int  #: each picture pixel averages shrink × shrink values (1: every value shown)
    scale_h: int  #: each (averaged) value drawn scale_h × scale_w pixels
    scale_w: int
    cell_h: int
    cell_w: int
    gap: int
    height: int  #: of the whole picture
    width: int

    @property
    def flat(self) -> bool:
        return len(self.shape) == 1

    @property
    def reduced(self) -> bool:
        """Whether the picture shows less than every value (averaged, or not every map)."""
        return self.shrink > 1 or (not self.flat and self.shown < self.shape[0])

    def note(self) -> str:
        """What was left out, in words ('' if nothing)."""
        parts = []
        if self.flat and self.shrink > 1:
            parts.append(f"{self.shape[0]:,} values shown as {self.rows * self.cols:,} "
                         f"averages of {self.shrink:,}")
        elif self.shrink > 1:
            _, h, w = self.shape
            parts.append(f"{h:,}×{w:,} maps shown at {math.ceil(h / self.shrink):,}×"
                         f"{math.ceil(w / self.shrink):,} (averages of {self.shrink}×{self.shrink} "
                         f"blocks)")
        if not self.flat and self.shown < self.shape[0]:
            parts.append(f"only the first {self.shown:,} of {self.shape[0]:,} maps shown")
        return "; ".join(parts)


def plan_tiles(shape: Sequence[int], gap: int = 2, min_cell: int = 48,
               max_side: int = MAX_PICTURE_SIDE) -> TilePlan:
    """The layout :func:`tile_maps` draws for an activation of this shape (no pixels made)."""
    shape = tuple(int(v) for v in shape)
    if len(shape) == 1:
        (f,) = shape
        if f <= max_side:  # one strip, each value a column at least a few pixels wide
            scale_w = max(1, min(math.ceil(400 / max(f, 1)), max_side // max(f, 1)))
            return TilePlan(shape, 1, 1, max(f, 1), 1, min_cell, scale_w, min_cell, scale_w, 0,
                            min_cell, max(f, 1) * scale_w)
        shrink = math.ceil(f / (max_side * max_side))  # values per pixel
        cells = math.ceil(f / shrink)
        rows = math.ceil(cells / max_side)
        row_h = max(1, min(min_cell, max_side // rows))
        return TilePlan(shape, 1, rows, max_side, shrink, row_h, 1, row_h, 1, 0, rows * row_h,
                        max_side)
    c, h, w = shape
    cols = math.ceil(math.sqrt(c))
    most = (max_side + gap) // (1 + gap)  # cells of one pixel a row or column can hold
    shown = c
    if cols > most:
        shown, cols = most * most, most
    rows = math.ceil(shown / cols)
    room_h = (max_side - (rows - 1) * gap) // rows
    room_w = (max_side - (cols - 1) * gap) // cols
    scale = max(1, math.ceil(min_cell / max(h, w)))
    scale = max(1, min(scale, room_h // h, room_w // w))  # enlarged only as far as it fits
    shrink = 1
    if h * scale > room_h or w * scale > room_w:
        scale = 1
        shrink = max(math.ceil(h / room_h), math.ceil(w / room_w))
    cell_h, cell_w = math.ceil(h / shrink) * scale, math.ceil(w / shrink) * scale
    return TilePlan(shape, shown, rows, cols, shrink, scale, scale, cell_h, cell_w, gap,
                    rows * (cell_h + gap) - gap, cols * (cell_w + gap) - gap)


def tile_maps(activation: np.ndarray, gap: int = 2, min_cell: int = 48,
              max_side: int = MAX_PICTURE_SIDE, plan: TilePlan | None = None) -> np.ndarray:
    """One sample's activation, (C, H, W) or (F,), as an RGB grid (rows, cols, 3) uint8: every map
    (or, for a flat vector, every value) coloured with viridis on its own scale (a flat vector:
    one shared scale), tiled in a near-square grid, small maps enlarged to at least ``min_cell``
    pixels, large ones averaged down so that the picture stays within ``max_side`` pixels a side
    (see :func:`plan_tiles`). Works one map, and one band of rows, at a time in float32."""
    plan = plan or plan_tiles(activation.shape, gap, min_cell, max_side)
    grid = np.full((plan.height, plan.width, 3), 255, np.uint8)
    if plan.flat:
        _draw_flat(activation, plan, grid)
        return grid
    for i in range(plan.shown):
        r, q = divmod(i, plan.cols)
        y, x = r * (plan.cell_h + plan.gap), q * (plan.cell_w + plan.gap)
        _draw_map(activation[i], plan, grid[y:y + plan.cell_h, x:x + plan.cell_w])
    return grid


def _draw_map(values: np.ndarray, plan: TilePlan, cell: np.ndarray) -> None:
    lo, hi = value_range(values)
    h, w = values.shape
    f = plan.shrink
    step = max(f, _rows_per_band(w) // f * f)  # whole blocks per band
    for r in range(0, h, step):
        unit = _block_mean(_unit(values[r:r + step], lo, hi), f)
        rgb = _colour(unit)
        if plan.scale_h > 1 or plan.scale_w > 1:
            rgb = np.repeat(np.repeat(rgb, plan.scale_h, axis=0), plan.scale_w, axis=1)
        y = (r // f) * plan.scale_h
        cell[y:y + rgb.shape[0]] = rgb
        del unit, rgb  # before the next band is made


def _draw_flat(values: np.ndarray, plan: TilePlan, grid: np.ndarray) -> None:
    values = values.reshape(-1)
    lo, hi = value_range(values)
    if plan.rows == 1 and plan.shrink == 1:  # one strip
        rgb = _colour(_unit(values, lo, hi))
        grid[:, :] = np.repeat(rgb, plan.scale_w, axis=0)[None]
        return
    f, per_row = plan.shrink, plan.cols
    chunk = per_row * f  # values drawn in one row of the picture
    for row in range(plan.rows):
        part = values[row * chunk:(row + 1) * chunk]
        if part.size == 0:
            break
        unit = _unit(part, lo, hi)
        if f > 1:
            starts = np.arange(0, part.size, f)
            counts = np.minimum(f, part.size - starts).astype(np.float32)
            unit = np.add.reduceat(unit, starts) / counts
        rgb = _colour(unit)
        y = row * plan.scale_h
        grid[y:y + plan.scale_h, :rgb.shape[0]] = rgb[None]
        del unit, rgb


#: Qt's PNG "quality" (zlib's effort): 50 encodes activation maps about five times faster than
#: Qt's default, for files about a tenth larger
PNG_QUALITY = 50


def image_png_bytes(image: QImage) -> bytes:
    """A QImage encoded as PNG (OSError if the encoder fails)."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG", PNG_QUALITY):
        raise OSError(f"the PNG encoder failed on a {image.width()} × {image.height()} picture")
    return bytes(buffer.data().data())


def png_bytes(pixels: np.ndarray) -> bytes:
    """(H, W, 3) uint8 encoded as PNG."""
    return image_png_bytes(_view(np.ascontiguousarray(pixels, dtype=np.uint8)))


def save_png(pixels: np.ndarray, path: str | os.PathLike) -> None:
    """Write (H, W, 3) uint8 as PNG, atomically; OSError says why it can't be written."""
    data = png_bytes(pixels)
    write_atomic(path, lambda handle: handle.write(data))
