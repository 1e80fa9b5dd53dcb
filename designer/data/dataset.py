"""``load_dataset``: training data shaped for a design's Input (contract §6).

Sources:

- ``builtin:digits``, ``builtin:shapes``: drawn by the project (:mod:`designer.data.builtin`),
  with their fixed split (10,000 training and 1,000 validation images);
- a folder with one sub-folder of images per class (``DIR/<class name>/*.png``; classes in
  sorted order; every file with an image extension Qt reads, hidden files skipped), each image
  read as ``run --input`` reads it (transparency onto white, converted and resized by
  ``designer.io.images``);
- an ``.npz`` file (never unpickled) with the keys:

  ========== ============================================================================
  ``x``      float32 ``(N, C, H, W)`` images: any finite values (already scaled as the
             network should see them, e.g. standardised), or uint8 0–255 (scaled to [0, 1])
  ``y``      integer ``(N,)`` labels, ``0 … K−1``
  ``classes`` optional: ``(K,)`` text, the class names (else ``"0"``, ``"1"``, …)
  ``x_val``  optional, with ``y_val``: a validation part, as ``x`` and ``y``
  ``y_val``
  ========== ============================================================================

A folder or ``.npz`` without a validation part is split 90/10 by the seed, class by class.
Everything becomes float32 ``(N, C, H, W)`` for the Input: grey ↔ RGB (grey is the BT.601 luma,
as for images; RGB from grey a copy per channel), resized to H × W (area averaging when
shrinking, bilinear when growing). Images and uint8 arrays end up in [0, 1]; float arrays keep
their scale (every step is a weighted average, so standardised data stays standardised). Bad
data (NaN or infinite values among them) is refused with a :class:`DataError` naming the file
and what to do.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from designer.core.design import Design
from designer.data import builtin
from designer.engine.arrays import ArrayFileError, NpzReader
from designer.engine.memory import NotEnoughMemory, count, mib

#: the keys an .npz data file may hold
NPZ_KEYS = ("x", "y", "classes", "x_val", "y_val")
#: the share of a folder or .npz set aside for validation when it has no validation part
VAL_SHARE = 0.1
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # as designer.io.images
#: images converted at a time
_CHUNK = 1024


class DataError(ValueError):
    """Data that can't be trained on; the message names the file or folder and says why."""


def _free() -> int | None:
    # looked up on the executor's module at call time: that is where callers and tests replace it
    from designer.engine import network
    return network.available_memory()


def check_memory(n: int, shape: tuple[int, int, int], what: str) -> None:
    """Refuse (NotEnoughMemory, both numbers) n float32 images of shape (C, H, W) that don't fit."""
    c, h, w = shape
    need = n * c * h * w * 4
    free = _free()
    if free is not None and need > free:
        raise NotEnoughMemory(f"{what}: {count(n)} images of {c} × {h} × {w} need about {mib(need)} "
                              f"as float32, but only {mib(free)} is free; use fewer or smaller "
                              f"images (a smaller Input)")


# --------------------------------------------------------------------------- the dataset

def augment(x: np.ndarray, rng: np.random.Generator, shift: int = 2,
            flip: bool = False, turn: bool = False) -> np.ndarray:
    """A randomly shifted copy of a batch (N, C, H, W): each image moved by up to ``shift``
    pixels each way (the edge pixels repeated into the space it leaves: a random crop of the
    edge-padded image); if ``flip``, mirrored left-right with probability 1/2; if ``turn`` (and
    the images are square), turned by 0, 90, 180 or 270 degrees, each with probability 1/4."""
    n, c, h, w = x.shape
    if shift > 0:
        padded = np.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)), mode="edge")
        offsets = np.floor(rng.random((n, 2)) * (2 * shift + 1)).astype(np.intp)
        rows = offsets[:, 0, None] + np.arange(h)  # (n, h)
        cols = offsets[:, 1, None] + np.arange(w)  # (n, w)
        x = padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                   rows[:, None, :, None], cols[:, None, None, :]]
    else:
        x = x.copy()
    if flip:
        mirrored = rng.random(n) < 0.5
        x[mirrored] = x[mirrored, :, :, ::-1]
    if turn and h == w:
        quarters = np.floor(rng.random(n) * 4).astype(np.intp)
        for k in (1, 2, 3):
            chosen = quarters == k
            x[chosen] = np.rot90(x[chosen], k, axes=(2, 3))
    return x


@dataclass
class Dataset:
    """``train`` and ``val``: (x float32 (N, C, H, W), y int64 (N,)); ``classes``: the
    class names (label i is ``classes[i]``). ``augment``: whether the trainer should augment the
    training batches (:meth:`augment_batch`); ``flip``: whether a left-right mirror image keeps
    its class (shapes; not digits, nor folders and .npz files, whose content isn't known);
    ``turn``: whether a quarter turn does (shapes, drawn at every angle)."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    classes: list[str]
    source: str = ""
    augment: bool = False
    flip: bool = False
    turn: bool = False
    shift: int = field(default=0)

    def augment_batch(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A training batch as the trainer should use it: randomly shifted (and flipped and
        turned where the data allows) if ``augment`` was asked for, else ``x`` itself."""
        if not self.augment:
            return x
        return augment(x, rng, self.shift, self.flip, self.turn)


# ------------------------------------------------------------------------- conversion

def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: area averaging when shrinking, bilinear (half-pixel centres, edges
    clamped) when growing."""
    m = np.zeros((n_out, n_in))
    if n_out == n_in:
        np.fill_diagonal(m, 1.0)
    elif n_out < n_in:
        scale = n_in / n_out
        for i in range(n_out):
            lo, hi = i * scale, (i + 1) * scale
            for j in range(int(np.floor(lo)), min(n_in, int(np.ceil(hi)))):
                m[i, j] = (min(hi, j + 1) - max(lo, j)) / scale
    else:
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        j = np.minimum(np.floor(src).astype(int), n_in - 2) if n_in > 1 else np.zeros(n_out, int)
        f = src - j
        m[np.arange(n_out), j] += 1 - f
        if n_in > 1:
            m[np.arange(n_out), j + 1] += f
    return m.astype(np.float32)


def convert(x: np.ndarray, shape: tuple[int, int, int], what: str) -> np.ndarray:
    """Images (N, C', H', W') — uint8 0–255 (scaled to [0, 1]) or finite floats (kept on their
    scale) — as float32 (N, C, H, W) for an Input of ``shape``: grey ↔ RGB, resized, a chunk at
    a time (the result's memory checked first)."""
    c, h, w = shape
    n, c0, h0, w0 = x.shape
    if c0 != c and {c0, c} != {1, 3}:
        raise DataError(f"{what}: the images have {c0} channels, but the design's Input takes "
                        f"{c}; only grey (1) and RGB (3) convert into each other")
    check_memory(n, shape, what)
    out = np.empty((n, c, h, w), np.float32)
    rows = None if h0 == h else _resize_matrix(h0, h)
    cols = None if w0 == w else _resize_matrix(w0, w).T
    for i in range(0, n, _CHUNK):
        part = x[i:i + _CHUNK].astype(np.float32)
        if x.dtype == np.uint8:
            part /= np.float32(255)
        if c0 == 3 and c == 1:
            part = np.einsum("nchw,c->nhw", part, _LUMA)[:, None]
        elif c0 == 1 and c == 3:
            part = np.repeat(part, 3, axis=1)
        if cols is not None:
            part = part @ cols
        if rows is not None:
            part = np.einsum("oh,nchw->ncow", rows, part)
        out[i:i + _CHUNK] = part
    return out


def _design(design: Any) -> Design:
    if not isinstance(design, Design):
        from designer.io.design_file import load_design
        design = load_design(design)
    return design


def _outputs(design: Design) -> int | None:
    """The number of scores the design's output gives (flat [F], F ≥ 2), else None."""
    from designer.core.analysis import Analysis
    analysis = Analysis(design)
    try:
        out = analysis.output
        shape = analysis.info(out).shape if out is not None else None
    except Exception:  # noqa: BLE001 - a design that can't be analysed: the trainer says why
        return None
    finally:
        analysis.close()
    return shape[0] if shape is not None and len(shape) == 1 and shape[0] >= 2 else None


def input_shape(design: Any) -> tuple[int, int, int]:
    """(C, H, W) of the design's one Input. ``design``: a Design, or a path or dict."""
    design = _design(design)
    inputs = [node for node in design.nodes if node.type == "Input"]
    if len(inputs) != 1:
        raise DataError(f"the design has {len(inputs)} Input nodes; data can be given to a "
                        f"design with exactly one")
    params = inputs[0].params
    values = []
    for key in ("channels", "height", "width"):
        value = params.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DataError(f"the design's Input {inputs[0].id!r} has no valid {key} "
                            f"({value!r}); fix the design first")
        values.append(value)
    return values[0], values[1], values[2]


def _image_channels(shape: tuple[int, int, int], source: str) -> None:
    if shape[0] not in (1, 3):
        raise DataError(f"{source} holds images (grey or RGB), but the design's Input has "
                        f"{shape[0]} channels; give it 1 or 3 channels, or use an .npz file with "
                        f"{shape[0]}-channel arrays")


# ---------------------------------------------------------------------- labels and splits

def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _labels_list(values: list[int]) -> str:
    """'3', '3 and 5', '3, 5 and 9'."""
    shown = ", ".join(str(v) for v in values)
    if len(values) > 1:
        head, _, last = shown.rpartition(", ")
        shown = f"{head} and {last}"
    return shown


def _first_bad(parts: list[tuple[str, np.ndarray]], bad) -> tuple[int, str, int, int]:
    """(how many labels ``bad(labels)`` marks, the key, index and value of the first)."""
    total, first = 0, None
    for key, labels in parts:
        marked = bad(labels)
        found = int(np.count_nonzero(marked))
        if found and first is None:
            i = int(np.argmax(marked))
            first = (key, i, int(labels[i]))
        total += found
    assert first is not None
    return (total,) + first


def _out_of_range(name: str, parts: list[tuple[str, np.ndarray]], k: int, bad, why: str,
                  extra: str = "") -> DataError:
    n, key, i, value = _first_bad(parts, bad)
    keys = " and ".join(repr(key) for key, labels in parts if np.any(bad(labels)))
    return DataError(f"{name}: {keys} {'hold' if ' and ' in keys else 'holds'} "
                     f"{_count(n, 'label', 'labels')} out of range (the first, {value}, at "
                     f"{key}[{i}]): {why}, so labels must be 0 … {k - 1}{extra}")


def _check_labels(name: str, parts: list[tuple[str, np.ndarray]], classes: list[str] | None,
                  outputs: int | None) -> int:
    """The number of classes K of an .npz's labels, after checking them (DataError naming the
    wrong labels: how many, the first's place and value, and the range they must be in).

    With ``classes``, K is its length. Without, K is the largest label + 1 — unless the design's
    output has ``outputs`` scores and the few labels beyond them look like mistakes rather than
    classes (each rarer than a fifth of a typical class): then those labels are out of range.
    Without ``classes``, labels 0 … K−1 that no image has are refused too (a class without
    images can't be learnt, and a gap usually means a mistyped label)."""
    parts = [(key, labels) for key, labels in parts if labels is not None and labels.size]
    every = np.concatenate([labels for _, labels in parts])
    if every.min() < 0:
        n, key, i, value = _first_bad(parts, lambda labels: labels < 0)
        same = ("; besides, every image has the same label, but a classifier needs two classes "
                "or more" if every.max() == every.min() else "")
        raise DataError(
            f"{name}: {key!r} holds {_count(n, 'negative label', 'negative labels')} (the first, "
            f"{value}, at {key}[{i}]): labels are class numbers, 0 or more (0 … K−1 for K "
            f"classes){same}")
    if classes is not None:
        k = len(classes)
        if every.max() >= k:
            raise _out_of_range(name, parts, k, lambda labels: labels >= k,
                                f"'classes' names {_count(k, 'class', 'classes')}",
                                "; fix those labels, or add their classes to 'classes'")
        return k
    top = int(every.max())
    values, counts = np.unique(every, return_counts=True)  # not bincount: labels may be huge
    if outputs is not None and top >= outputs:
        inside = counts[values < outputs]
        typical = float(np.median(inside)) if inside.size else 0.0
        if inside.size and counts[values >= outputs].max() < 0.2 * typical:
            raise _out_of_range(
                name, parts, outputs, lambda labels: labels >= outputs,
                f"the design's output has {outputs} scores, one per class (the labels below "
                f"{outputs} have about {typical:,.0f} images each)",
                "; fix or remove those images" + (
                    f" (if they really are classes of their own, give the .npz a 'classes' "
                    f"array naming all {top + 1:,} and set the last layer's out_features to "
                    f"{top + 1:,})" if top < max(1000, 10 * outputs) else ""))
    if len(values) < top + 1:
        present = set(values.tolist())
        missing = []
        for v in range(top + 1):
            if v not in present:
                missing.append(v)
                if len(missing) > 8:
                    break
        n_missing = top + 1 - len(values)
        shown = (_labels_list(missing) if n_missing <= 8 else
                 ", ".join(map(str, missing[:8])) + f", … ({n_missing:,} labels in all)")
        gap = missing[0]
        above = int(np.count_nonzero(every > gap))
        hint = ""
        if gap and above < 0.2 * float(np.median(counts[values < gap])):
            n, key, i, value = _first_bad(parts, lambda labels: labels > gap)
            hint = (f"; if the data has {gap} classes (0 … {gap - 1}), "
                    f"{_count(n, 'label is', 'labels are')} out of range (the first, {value}, "
                    f"at {key}[{i}])")
        raise DataError(
            f"{name}: no image is labelled {shown}, but the labels go up to {top:,}: without "
            f"a 'classes' array the classes are 0 … {top:,}, and a class without images can't "
            f"be learnt{hint}. Number the classes 0 … K−1 with no gaps, or give a 'classes' "
            f"array naming all {top + 1:,} (K) classes")
    return top + 1


def split(y: np.ndarray, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): a tenth of each class (rounded, at least one where a class has two
    or more) set aside for validation, chosen by the seed; both sorted."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        members = members[np.argsort(rng.random(members.size), kind="stable")]
        k = int(round(members.size * VAL_SHARE))
        if members.size >= 2:
            k = max(1, k)
        val.append(members[:k])
        train.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _finish(x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None,
            classes: list[str], seed: int, source: str) -> Dataset:
    if len(set(y.tolist())) < 2:
        raise DataError(f"{source}: every training example has the same label "
                        f"({classes[int(y[0])]!r}); a classifier needs two classes or more")
    if x_val is None or y_val is None:
        train, val = split(y, seed, source)
        if val.size == 0:
            raise DataError(f"{source}: too few examples to set a tenth aside for validation; "
                            f"give at least two per class")
        x, x_val, y, y_val = x[train], x[val], y[train], y[val]
    return Dataset((x, y.astype(np.int64)), (x_val, y_val.astype(np.int64)), classes, source)


# ------------------------------------------------------------------------------- sources

def _load_builtin(name: str, shape: tuple[int, int, int], seed: int, source: str) -> Dataset:
    if name not in builtin.SETS:
        raise DataError(f"there is no built-in data set {source!r}; there are "
                        + ", ".join(f"builtin:{k}" for k in builtin.SETS))
    _image_channels(shape, source)
    spec = builtin.SETS[name]
    check_memory(builtin.TRAIN_SIZE + builtin.VAL_SIZE, shape, source)
    drawn = builtin.load(name, seed)
    data = Dataset((convert(drawn.x_train, shape, source), drawn.y_train),
                   (convert(drawn.x_val, shape, source), drawn.y_val), list(spec.classes), source)
    data.flip, data.turn = spec.flip, spec.turn
    return data


def _image_suffixes() -> set[str]:
    from designer.io.images import supported_formats
    return {"." + f.lower() for f in supported_formats()}


def _load_folder(folder: Path, shape: tuple[int, int, int], seed: int) -> Dataset:
    from designer.io.images import ImageError, load_image
    source = str(folder)
    _image_channels(shape, source)
    suffixes = _image_suffixes()
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{source} holds no sub-folders; put each class's images in a sub-folder "
                        f"named after the class ({source}/<class name>/*.png)")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (folder / name).iterdir()
                       if p.suffix.lower() in suffixes and not p.name.startswith(".")
                       and p.is_file())
        if not found:
            raise DataError(f"{folder / name} holds no images (looked for "
                            f"{', '.join(sorted(suffixes))}); add some or remove the folder")
        files += found
        labels += [label] * len(found)
    if len(classes) < 2:
        raise DataError(f"{source} has one class ({classes[0]!r}); a classifier needs two "
                        f"sub-folders or more, one per class")
    check_memory(len(files), shape, source)
    x = np.empty((len(files),) + shape, np.float32)
    for i, path in enumerate(files):
        try:
            x[i] = load_image(path, *shape)
        except ImageError as exc:
            # the reader's message names the file by its name: say it once, with its folder
            why = str(exc)
            if why.startswith(f"{path.name}: "):
                why = why[len(path.name) + 2:]
            raise DataError(f"{path}: {why}; remove or replace it") from None
        except OSError as exc:
            raise DataError(f"{path}: can't be read ({exc.strerror or exc}); remove or replace "
                            f"it") from None
    return _finish(x, np.array(labels, np.int64), None, None, classes, seed, source)


def _npz_arrays(reader: NpzReader, x_key: str, y_key: str, name: str
                ) -> tuple[tuple[int, ...], np.dtype, int]:
    entries = reader.entries
    xs, xd = entries[x_key]
    ys, yd = entries[y_key]
    if len(xs) != 4:
        raise DataError(f"{name}: {x_key!r} has shape {xs}, but images are (N, C, H, W)")
    if not (xd.kind == "f" or xd == np.uint8):
        raise DataError(f"{name}: {x_key!r} holds {xd} values; give float32 (or uint8 0–255)")
    if len(ys) != 1:
        raise DataError(f"{name}: {y_key!r} has shape {ys}, but labels are one integer per image, "
                        f"shape (N,)")
    if yd.kind not in "iu":
        raise DataError(f"{name}: {y_key!r} holds {yd} values, not integers; labels are the "
                        f"class numbers 0, 1, 2, …")
    if ys[0] != xs[0]:
        raise DataError(f"{name}: {x_key!r} holds {xs[0]:,} images but {y_key!r} "
                        f"{ys[0]:,} labels; give one label per image")
    if xs[0] == 0:
        raise DataError(f"{name}: {x_key!r} holds no images")
    return xs, xd, xs[0]


def _read_x(reader: NpzReader, key: str, shape: tuple[int, int, int], name: str) -> np.ndarray:
    x = reader.read(key)
    if x.dtype.kind == "f":
        bad = 0
        first = None
        with np.errstate(over="ignore"):  # float64 beyond float32's range: counted as infinite
            for i in range(0, len(x), _CHUNK):
                wrong = ~np.isfinite(x[i:i + _CHUNK].astype(np.float32))
                found = int(np.count_nonzero(wrong))
                if found and first is None:
                    where = np.unravel_index(int(np.argmax(wrong)), wrong.shape)
                    first = (where[0] + i,) + tuple(int(v) for v in where[1:])
                bad += found
        if bad:
            n, c, r, col = (int(v) for v in first)
            value = x[n, c, r, col]
            raise DataError(f"{name}: {key!r} holds {bad:,} value{'s' if bad != 1 else ''} that "
                            f"{'are' if bad != 1 else 'is'} not a finite number (NaN, infinite "
                            f"or too large for float32); the first, {value}, is in image {n} "
                            f"(channel {c}, row {r}, column {col}); replace them with numbers")
    return convert(x, shape, f"{name}: {key!r}")


def _load_npz(path: Path, shape: tuple[int, int, int], seed: int, outputs: int | None
              ) -> Dataset:
    name = str(path)
    try:
        with NpzReader(path, what="array", kind="data file") as reader:
            unknown = [k for k in reader.entries if k not in NPZ_KEYS]
            if unknown:
                raise DataError(f"{name}: holds {', '.join(map(repr, unknown))}; a data file "
                                f"holds only {', '.join(NPZ_KEYS)}")
            for key in ("x", "y"):
                if key not in reader:
                    raise DataError(f"{name}: has no {key!r} array; a data file holds x (N, C, "
                                    f"H, W) images and y (N,) labels")
            if ("x_val" in reader) != ("y_val" in reader):
                raise DataError(f"{name}: has one of 'x_val' and 'y_val' without the other")
            xs, _, n = _npz_arrays(reader, "x", "y", name)
            has_val = "x_val" in reader
            n_val = 0
            if has_val:
                vs, _, n_val = _npz_arrays(reader, "x_val", "y_val", name)
                if vs[1:] != xs[1:]:
                    raise DataError(f"{name}: 'x_val' images are {vs[1:]}, 'x' images {xs[1:]}; "
                                    f"give both the same (C, H, W)")
            classes = None
            if "classes" in reader:
                cs, cd = reader.entries["classes"]
                if cd.kind not in "US" or len(cs) != 1:
                    raise DataError(f"{name}: 'classes' must be a 1-D array of text (the class "
                                    f"names), not {cd} of shape {cs}")
                raw = reader.read("classes")
                classes = [c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c)
                           for c in raw.tolist()]
                if len(set(classes)) != len(classes) or "" in classes:
                    raise DataError(f"{name}: 'classes' has empty or repeated names")
            check_memory(n + n_val, shape, name)
            y = reader.read("y").astype(np.int64)
            y_val = reader.read("y_val").astype(np.int64) if has_val else None
            k = _check_labels(name, [("y", y), ("y_val", y_val)], classes, outputs)
            if classes is None:
                classes = [str(i) for i in range(k)]
            x = _read_x(reader, "x", shape, name)
            x_val = _read_x(reader, "x_val", shape, name) if has_val else None
    except ArrayFileError as exc:
        raise DataError(str(exc)) from None
    return _finish(x, y, x_val, y_val, classes, seed, name)


def load_dataset(source: str | os.PathLike, design: Any, seed: int = 0,
                 augment: bool = False) -> Dataset:
    """Training data for ``design`` (a Design, or a path or dict) from ``source``:
    ``"builtin:digits"``, ``"builtin:shapes"``, a folder of class sub-folders or an ``.npz``
    file (see the module's notes). ``seed`` chooses the built-in drawing and the 90/10 split of
    data without a validation part; ``augment`` asks the trainer to augment training batches
    (``Dataset.augment_batch``). Raises DataError, NotEnoughMemory."""
    design = _design(design)
    shape = input_shape(design)
    text = os.fspath(source)
    if isinstance(text, str) and text.startswith("builtin:"):
        data = _load_builtin(text[len("builtin:"):], shape, int(seed), text)
    else:
        path = Path(text)
        if not path.exists():
            raise DataError(f"{path} doesn't exist; give builtin:digits, builtin:shapes, a folder "
                            f"of class sub-folders or an .npz file")
        if path.is_dir():
            data = _load_folder(path, shape, int(seed))
        elif path.suffix.lower() == ".npz":
            data = _load_npz(path, shape, int(seed), _outputs(design))
        else:
            raise DataError(f"{path} is neither a folder of class sub-folders nor an .npz file")
    data.augment = bool(augment)
    data.shift = max(1, min(shape[1], shape[2]) // 14)
    return data
