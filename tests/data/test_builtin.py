"""The built-in data sets: deterministic, balanced, in range, split and cached."""
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from designer.data import builtin
from designer.data.strokes import DIGITS, GLYPHS, polylines

ROOT = Path(__file__).resolve().parents[2]

#: sha256 of draw(name, 7, 20, 10): a change to the drawing must bump builtin.VERSION (the cache
#: key) and update these
CHECKSUMS = {
    "digits": "248dda84c3725b25dbcd0999452e6df4257b5e867875db65981673a975a00057",
    "shapes": "d58fb689634910f48878241e4e9c59ccd0e0cc1d04922c141687de2a10ae2d59",
}


def digest(drawn):
    h = hashlib.sha256()
    for array in drawn:
        h.update(array.tobytes())
    return h.hexdigest()


def test_every_glyph_samples_into_its_unit_box():
    for char in GLYPHS:
        lines = polylines(char)
        points = np.concatenate(lines)
        assert lines and all(len(line) >= 2 for line in lines)
        assert points.min() >= -0.1 and points.max() <= 1.1, char
    # the ellipse of "0" passes through its box's four sides
    zero = polylines("0")[0]
    assert np.isclose(zero[:, 0].min(), 0) and np.isclose(zero[:, 0].max(), 1)
    assert np.isclose(zero[:, 1].min(), 0) and np.isclose(zero[:, 1].max(), 1)


def test_glyph_fields_are_distances_to_the_strokes():
    fields = builtin.glyph_fields()
    assert fields.shape == (10, builtin._GRID, builtin._GRID)
    # "1"'s stem is the vertical line at x = 0.58 of the box: at the box's middle height, the
    # distance along the row is |u − (0.58 − 0.5)·aspect|
    t = np.linspace(-builtin._EXTENT, builtin._EXTENT, builtin._GRID)
    row = np.argmin(np.abs(t - 0.1))
    stem = (0.58 - 0.5) * builtin._ASPECT
    near = np.abs(t - stem) < 0.15
    assert np.allclose(fields[1, row, near], np.abs(t[near] - stem), atol=1e-6)


def test_shape_fields_are_negative_inside_and_positive_outside():
    fields = builtin.shape_fields()
    middle = builtin._GRID // 2
    centre = fields[:, middle, middle]
    inside = [n for n in builtin.SHAPE_CLASSES if n != "ring"]
    for k, name in enumerate(builtin.SHAPE_CLASSES):
        assert (centre[k] < 0) == (name in inside), name
        assert fields[k, 0, 0] > 0.5, name  # a corner of the grid is outside every shape
    # the circle (radius 0.9): the signed distance is |p| − 0.9 (its 64-gon within 1.2e-3)
    t = np.linspace(-builtin._EXTENT, builtin._EXTENT, builtin._GRID)
    v, u = np.meshgrid(t, t, indexing="ij")
    assert np.allclose(fields[0], np.hypot(u, v) - 0.9, atol=1.2e-3)


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_a_draw_is_the_same_in_another_process_and_as_stored(name):
    here = builtin.draw(name, 7, 20, 10)
    code = ("import hashlib, sys; from designer.data import builtin;"
            f"h = hashlib.sha256(); [h.update(a.tobytes()) for a in builtin.draw({name!r}, 7, 20, 10)];"
            "print(h.hexdigest())")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=ROOT, check=True).stdout.strip()
    assert digest(here) == there == CHECKSUMS[name], "the drawing changed: bump builtin.VERSION"


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_seeds_and_parts_differ(name):
    a, b = builtin.draw(name, 0, 20, 20), builtin.draw(name, 1, 20, 20)
    assert not np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, a.x_val)


@pytest.mark.parametrize("name, shape", [("digits", (1, 28, 28)), ("shapes", (3, 64, 64))])
def test_balanced_shuffled_and_in_range(name, shape):
    drawn = builtin.draw(name, 0, 200, 50)
    assert drawn.x_train.shape == (200,) + shape and drawn.x_val.shape == (50,) + shape
    assert drawn.x_train.dtype == np.uint8 and drawn.y_train.dtype == np.int64
    assert np.bincount(drawn.y_train, minlength=10).tolist() == [20] * 10
    assert np.bincount(drawn.y_val, minlength=10).tolist() == [5] * 10
    assert not np.array_equal(drawn.y_train, np.sort(drawn.y_train))
    for image in drawn.x_train[:50]:  # every image has ink on a background: a real contrast
        assert int(image.max()) - int(image.min()) > 100


def test_digits_are_light_strokes_on_a_dark_ground():
    x = builtin.draw("digits", 0, 100, 10).x_train.astype(float) / 255
    border = np.concatenate([x[:, 0, 0], x[:, 0, -1], x[:, 0, :, 0], x[:, 0, :, -1]], axis=1)
    assert border.mean() < 0.15
    assert 0.05 < (x > 0.5).mean() < 0.3  # strokes cover a part of the image, not most of it


def test_the_same_class_varies():
    drawn = builtin.draw("shapes", 0, 100, 10)
    circles = drawn.x_train[drawn.y_train == 0].astype(float)
    assert circles.std(axis=0).mean() > 30  # position, size and colour change between images


def test_cache_round_trip(cache_home, small_sets, monkeypatch):
    first = builtin.load("digits", 3)
    path = builtin.cache_path("digits", 3)
    assert path.parent == cache_home and path.name == f"builtin-digits-v{builtin.VERSION}-seed3.npz"
    monkeypatch.setattr(builtin, "draw", lambda *a, **k: pytest.fail("drawn again"))
    again = builtin.load("digits", 3)
    for a, b in zip(first, again):
        assert np.array_equal(a, b) and a.dtype == b.dtype


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "wrong seed", "unbalanced"])
def test_a_damaged_cache_is_drawn_again(cache_home, small_sets, damage):
    first = builtin.load("digits", 3)
    path = builtin.cache_path("digits", 3)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a zip file")
    elif damage == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif damage == "flipped":  # a byte of the pixels: the archive's CRC no longer matches
        middle = len(data) // 3
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    elif damage == "wrong seed":
        np.savez(path, **{**dict(np.load(path)), "seed": np.int64(4)})
    else:
        arrays = dict(np.load(path))
        arrays["y_train"] = np.zeros_like(arrays["y_train"])
        np.savez(path, **arrays)
    assert builtin._read_cache(path, "digits", 3) is None
    again = builtin.load("digits", 3)
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    assert builtin._read_cache(path, "digits", 3) is not None  # and written again


def test_no_writable_cache_folder_still_draws(cache_home, small_sets, monkeypatch):
    cache_home.parent.mkdir(exist_ok=True)
    cache_home.write_text("a file where the folder should be")
    drawn = builtin.load("shapes", 0)
    assert drawn.x_train.shape == (100, 3, 64, 64)


def test_cache_folder_follows_the_platform(monkeypatch, tmp_path):
    monkeypatch.delenv("CNN_DESIGNER_CACHE")
    monkeypatch.setattr(builtin.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert builtin.cache_folder() == tmp_path / "cnn-designer"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert builtin.cache_folder() == Path.home() / ".cache" / "cnn-designer"
    monkeypatch.setattr(builtin.sys, "platform", "darwin")
    assert builtin.cache_folder() == Path.home() / "Library" / "Caches" / "cnn-designer"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_full_sets_draw_in_seconds(name):
    builtin.glyph_fields() if name == "digits" else builtin.shape_fields()
    start = time.perf_counter()
    drawn = builtin.draw(name, 0)
    took = time.perf_counter() - start
    assert len(drawn.x_train) == builtin.TRAIN_SIZE == 10_000
    assert len(drawn.x_val) == builtin.VAL_SIZE == 1_000
    assert np.bincount(drawn.y_train).tolist() == [1000] * 10
    assert took < 15, f"{name}: {took:.1f} s"
