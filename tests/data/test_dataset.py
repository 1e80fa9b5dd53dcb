"""load_dataset: the sources, the conversions to the Input, the split, augmentation, and every
refusal."""
import numpy as np
import pytest

from designer.data import builtin
from designer.data import dataset as ds
from designer.data.dataset import DataError, augment, load_dataset
from designer.engine import network
from designer.engine.memory import NotEnoughMemory
from designer.io.images import save_png


def design(c, h, w):
    return {"format": "cnn-designer", "version": 1, "edges": [],
            "nodes": [{"id": "input", "type": "Input",
                       "params": {"channels": c, "height": h, "width": w}}]}


# ----------------------------------------------------------------------------- builtin

@pytest.mark.parametrize("name, shape", [("digits", (1, 28, 28)), ("shapes", (3, 64, 64)),
                                         ("digits", (3, 32, 32)), ("shapes", (1, 32, 32))])
def test_builtin_sets_shaped_for_the_input(small_sets, name, shape):
    data = load_dataset(f"builtin:{name}", design(*shape))
    (x, y), (xv, yv) = data.train, data.val
    assert x.shape == (100,) + shape and xv.shape == (50,) + shape
    assert x.dtype == xv.dtype == np.float32 and y.dtype == yv.dtype == np.int64
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.5
    assert data.classes == builtin.SETS[name].classes and len(data.classes) == 10
    assert data.flip == data.turn == (name == "shapes")
    drawn = builtin.load(name, 0)
    assert np.array_equal(y, drawn.y_train) and np.array_equal(yv, drawn.y_val)
    if shape == builtin.SETS[name].shape:  # native: only scaled to [0, 1]
        assert np.array_equal(x, drawn.x_train.astype(np.float32) / 255)


def test_builtin_seed_chooses_the_drawing(small_sets):
    a = load_dataset("builtin:digits", design(1, 28, 28), seed=0).train[0]
    b = load_dataset("builtin:digits", design(1, 28, 28), seed=1).train[0]
    assert not np.array_equal(a, b)


# --------------------------------------------------------------------------- conversion

def reference_resize(image, h, w):
    """Slow reference: area averaging (exact box overlaps) when shrinking, bilinear with half-pixel
    centres when growing, one axis at a time."""
    def axis(values, n_out):
        n_in = values.shape[0]
        out = np.zeros((n_out,) + values.shape[1:])
        for i in range(n_out):
            if n_out < n_in:
                lo, hi = i * n_in / n_out, (i + 1) * n_in / n_out
                total = 0.0
                for j in range(n_in):
                    overlap = max(0.0, min(hi, j + 1) - max(lo, j))
                    out[i] += overlap * values[j]
                    total += overlap
                out[i] /= total
            elif n_out > n_in:
                src = min(max((i + 0.5) * n_in / n_out - 0.5, 0), n_in - 1)
                j = min(int(src), n_in - 2)
                f = src - j
                out[i] = (1 - f) * values[j] + f * values[j + 1]
            else:
                out[i] = values[i]
        return out
    return axis(axis(image, h).T, w).T


@pytest.mark.parametrize("h0, w0, h, w", [(28, 28, 32, 32), (64, 64, 32, 32), (10, 7, 4, 9),
                                          (5, 5, 5, 3), (9, 6, 13, 6)])
def test_resizing_matches_a_slow_reference(h0, w0, h, w):
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, h0, w0)).astype(np.float32)
    got = ds.convert(x, (1, h, w), "test")
    for k in range(3):
        assert np.allclose(got[k, 0], reference_resize(x[k, 0].astype(float), h, w), atol=1e-5)


def test_channels_convert_grey_and_rgb():
    rgb = np.zeros((2, 3, 4, 4), np.uint8)
    rgb[0, 0] = 255  # pure red
    rgb[1] = 51
    grey = ds.convert(rgb, (1, 4, 4), "test")
    assert np.allclose(grey[0], 0.299) and np.allclose(grey[1], 0.2)
    back = ds.convert(grey, (3, 4, 4), "test")
    assert np.allclose(back[:, 0], grey[:, 0]) and np.allclose(back[:, 2], grey[:, 0])
    with pytest.raises(DataError, match="2 channels.*Input takes 3"):
        ds.convert(np.zeros((1, 2, 4, 4), np.float32), (3, 4, 4), "test")


# ------------------------------------------------------------------------------- folders

def make_folder(root, classes, per_class=10, size=(12, 10), colour=None):
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full(size + (3,), 20 * k + i, np.uint8)
            if colour is not None:
                pixels[:] = colour
            save_png(pixels, root / name / f"{i:03d}.png")
    return root


def test_a_folder_of_class_folders(tmp_path):
    root = make_folder(tmp_path / "data", ["dog", "cat", "bird"])
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "cat" / ".hidden.png").write_bytes(b"skipped")
    data = load_dataset(root, design(1, 6, 5))
    assert data.classes == ["bird", "cat", "dog"]  # sorted
    (x, y), (xv, yv) = data.train, data.val
    assert x.shape == (27, 1, 6, 5) and xv.shape == (3, 1, 6, 5)
    assert np.bincount(yv).tolist() == [1, 1, 1]  # a tenth of each class
    # each image is flat grey 20·k + i: after conversion its value tells its class (k = 2 − label)
    for images, labels in ((x, y), (xv, yv)):
        values = np.round(images[:, 0, 0, 0] * 255)
        assert np.array_equal((values // 20).astype(int), 2 - labels)
        assert np.allclose(images, images[:, :, :1, :1], atol=1e-6)
    assert not data.flip and not data.augment


def test_the_split_depends_on_the_seed(tmp_path):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=20)
    first = load_dataset(root, design(3, 4, 4), seed=0).val[0][:, 0, 0, 0]
    same = load_dataset(root, design(3, 4, 4), seed=0).val[0][:, 0, 0, 0]
    other = load_dataset(root, design(3, 4, 4), seed=5).val[0][:, 0, 0, 0]
    assert np.array_equal(first, same) and not np.array_equal(first, other)


def test_split_reference():
    y = np.repeat(np.arange(3), [30, 10, 1])
    train, val = ds.split(y, 0, "test")
    assert np.bincount(y[val], minlength=3).tolist() == [3, 1, 0]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(41))


# ----------------------------------------------------------------------------------- npz

def test_an_npz_with_classes_and_a_validation_part(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "set.npz"
    np.savez(path, x=rng.random((8, 3, 8, 8)).astype(np.float32), y=np.arange(8) % 2,
             classes=np.array(["cat", "dog"]), x_val=rng.random((4, 3, 8, 8)).astype(np.float32),
             y_val=np.array([1, 0, 1, 0], np.uint8))
    data = load_dataset(path, design(1, 4, 4))
    assert data.classes == ["cat", "dog"]
    assert data.train[0].shape == (8, 1, 4, 4) and data.val[0].shape == (4, 1, 4, 4)
    assert data.val[1].tolist() == [1, 0, 1, 0] and data.val[1].dtype == np.int64


def test_an_npz_without_validation_is_split_and_named_by_number(tmp_path):
    path = tmp_path / "set.npz"
    x = np.zeros((30, 1, 5, 5), np.uint8)
    x[:, 0, 0, 0] = np.arange(30)
    np.savez(path, x=x, y=np.arange(30) % 3)
    data = load_dataset(path, design(1, 5, 5))
    assert data.classes == ["0", "1", "2"]
    assert len(data.train[1]) == 27 and np.bincount(data.val[1]).tolist() == [1, 1, 1]
    ids = np.round(np.concatenate([data.train[0], data.val[0]])[:, 0, 0, 0] * 255)
    labels = np.concatenate([data.train[1], data.val[1]])
    assert np.array_equal(ids.astype(int) % 3, labels)  # images keep their labels


# ------------------------------------------------------------------------------ refusals

def npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    defaults = {"x": np.zeros((4, 1, 4, 4), np.float32), "y": np.array([0, 1, 0, 1])}
    np.savez(path, **{**defaults, **arrays})
    return path


@pytest.mark.parametrize("arrays, message", [
    ({"y": np.zeros(4, int)}, "same label"),
    ({"y": np.array([0, 1, 2, -1])}, "1 negative label \\(the first, -1, at y\\[3\\]\\)"),
    ({"y": np.array([0, 1, 0, 5]), "classes": np.array(["a", "b"])},
     "1 label out of range \\(the first, 5, at y\\[3\\]\\): 'classes' names 2 classes"),
    ({"y": np.array([0.0, 1.0, 0.0, 1.0])}, "float64 values, not integers"),
    ({"y": np.zeros((4, 1), int)}, "shape \\(4, 1\\)"),
    ({"y": np.array([0, 1, 0])}, "4 images but 'y' 3 labels"),
    ({"x": np.zeros((4, 4, 4), np.float32)}, "shape \\(4, 4, 4\\), but images are"),
    ({"x": np.full((4, 1, 4, 4), np.nan, np.float32)}, "64 values that are not a finite"),
    ({"x": np.zeros((4, 1, 4, 4), np.int32)}, "int32 values"),
    ({"classes": np.array(["a", "a"])}, "repeated"),
    ({"classes": np.array([1, 2])}, "1-D array of text"),
    ({"x_val": np.zeros((2, 1, 4, 4), np.float32)}, "without the other"),
    ({"X": np.zeros(3)}, "holds 'X'"),
    ({"x": np.zeros((4, 2, 4, 4), np.float32)}, "2 channels"),
])
def test_bad_npz_files_are_refused(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message):
        load_dataset(npz(tmp_path, **arrays), design(3, 4, 4))


def test_pickled_arrays_are_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, x=np.zeros((2, 1, 4, 4), np.float32),
             y=np.array([0, {"evil": 1}], dtype=object))
    with pytest.raises(DataError, match="pickled.npz: .y.: holds Python objects, which are never"):
        load_dataset(path, design(1, 4, 4))


def test_missing_and_wrong_paths_are_refused(tmp_path):
    with pytest.raises(DataError, match="doesn't exist"):
        load_dataset(tmp_path / "nowhere", design(1, 4, 4))
    (tmp_path / "a.csv").write_text("1,2")
    with pytest.raises(DataError, match="neither a folder"):
        load_dataset(tmp_path / "a.csv", design(1, 4, 4))
    with pytest.raises(DataError, match="no built-in data set 'builtin:letters'"):
        load_dataset("builtin:letters", design(1, 4, 4))


def test_bad_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no sub-folders"):
        load_dataset(tmp_path / "empty", design(1, 4, 4))
    one = make_folder(tmp_path / "one", ["only"])
    with pytest.raises(DataError, match="one class \\('only'\\)"):
        load_dataset(one, design(1, 4, 4))
    two = make_folder(tmp_path / "two", ["a", "b"])
    (two / "c").mkdir()
    with pytest.raises(DataError, match="c holds no images"):
        load_dataset(two, design(1, 4, 4))
    broken = make_folder(tmp_path / "broken", ["a", "b"])
    (broken / "b" / "005.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="005.png: can't be read"):
        load_dataset(broken, design(1, 4, 4))
    with pytest.raises(DataError, match="Input has 4 channels"):
        load_dataset(two, design(4, 4, 4))
    with pytest.raises(DataError, match="Input has 2 channels"):
        load_dataset("builtin:digits", design(2, 28, 28))


def test_a_design_without_one_input_is_refused():
    two = design(1, 4, 4)
    two["nodes"].append({"id": "input2", "type": "Input",
                         "params": {"channels": 1, "height": 4, "width": 4}})
    with pytest.raises(DataError, match="2 Input nodes"):
        load_dataset("builtin:digits", two)


def test_memory_is_checked_before_allocating(tmp_path, monkeypatch, small_sets):
    monkeypatch.setattr(network, "available_memory", lambda: 10 * 2**20)
    monkeypatch.setattr(builtin, "TRAIN_SIZE", 10_000)
    monkeypatch.setattr(builtin, "VAL_SIZE", 1_000)
    monkeypatch.setattr(builtin, "draw", lambda *a, **k: pytest.fail("drawn before the check"))
    # 11,000 · 3 · 224 · 224 · 4 bytes = 6,316.4 MiB
    with pytest.raises(NotEnoughMemory, match=r"11,000 images of 3 × 224 × 224 need about "
                                              r"6,316 MiB as float32, but only 10 MiB is free"):
        load_dataset("builtin:shapes", design(3, 224, 224))
    path = npz(tmp_path, x=np.zeros((4, 1, 4, 4), np.float32))
    with pytest.raises(NotEnoughMemory, match="bad.npz"):
        load_dataset(path, design(3, 1000, 1000))


# ---------------------------------------------------------------------------- augmentation

def test_augmentation_shifts_with_edges_repeated_and_flips_only_when_allowed():
    rng = np.random.default_rng(0)
    x = rng.random((64, 2, 9, 7)).astype(np.float32)
    out = augment(x, np.random.default_rng(3), shift=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    offsets = set()
    for k in range(64):  # each output is some 9 × 7 window of the padded image
        hits = [(i, j) for i in range(5) for j in range(5)
                if np.array_equal(out[k], padded[k, :, i:i + 9, j:j + 7])]
        assert hits, k
        offsets.add(hits[0])
    assert len(offsets) > 10  # shifts of every kind, not one
    again = augment(x, np.random.default_rng(3), shift=2)
    assert np.array_equal(out, again)  # seeded
    flipped = augment(x, np.random.default_rng(1), shift=0, flip=True)
    mirrored = [np.array_equal(flipped[k], x[k, :, :, ::-1]) for k in range(64)]
    kept = [np.array_equal(flipped[k], x[k]) for k in range(64)]
    assert all(m or s for m, s in zip(mirrored, kept)) and 16 < sum(mirrored) < 48
    assert np.array_equal(augment(x, np.random.default_rng(1), shift=0), x)


def _turned(image: np.ndarray, quarters: int) -> np.ndarray:
    """(C, n, n) turned counter-clockwise by ``quarters`` quarter turns, pixel by pixel."""
    c, n, _ = image.shape
    source = {0: lambda i, j: (i, j), 1: lambda i, j: (j, n - 1 - i),
              2: lambda i, j: (n - 1 - i, n - 1 - j), 3: lambda i, j: (n - 1 - j, i)}[quarters]
    out = np.empty_like(image)
    for i in range(n):
        for j in range(n):
            out[:, i, j] = image[(slice(None),) + source(i, j)]
    return out


def test_augmentation_turns_square_images_by_quarter_turns_only_when_allowed():
    rng = np.random.default_rng(0)
    x = rng.random((200, 3, 6, 6)).astype(np.float32)
    out = augment(x, np.random.default_rng(5), shift=0, turn=True)
    counts = [0, 0, 0, 0]
    for k in range(200):  # each output is its image turned by one number of quarter turns
        turns = [q for q in range(4) if np.array_equal(out[k], _turned(x[k], q))]
        assert len(turns) == 1, k
        counts[turns[0]] += 1
    assert all(25 < c < 75 for c in counts), counts  # each about 1/4 of 200
    wide = rng.random((8, 1, 4, 6)).astype(np.float32)  # not square: never turned
    assert np.array_equal(augment(wide, np.random.default_rng(5), shift=0, turn=True), wide)


def test_the_dataset_augments_batches_only_when_asked(small_sets):
    plain = load_dataset("builtin:digits", design(1, 28, 28))
    batch = plain.train[0][:16]
    assert plain.augment_batch(batch, np.random.default_rng(0)) is batch
    data = load_dataset("builtin:digits", design(1, 28, 28), augment=True)
    assert data.augment and data.shift == 2 and not data.flip
    out = data.augment_batch(batch, np.random.default_rng(0))
    assert out.shape == batch.shape and not np.array_equal(out, batch)
    # digits are never mirrored: each output is a shifted window of its own image
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    for k in range(16):
        assert any(np.array_equal(out[k], padded[k, :, i:i + 28, j:j + 28])
                   for i in range(5) for j in range(5))


def test_the_public_api_exports_load_dataset(small_sets):
    import designer
    assert designer.load_dataset is load_dataset
    assert "load_dataset" in designer.__all__
    data = designer.load_dataset("builtin:digits", design(1, 32, 32))
    assert data.train[0].shape == (100, 1, 32, 32)
