"""Images in (Qt's reader: formats, alpha, grey, resize, scaling, normalization), arrays in, and
activation maps out."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage

from designer.io import images
from designer.io.images import ImageError
from tests.helpers import deadline


def write(path, pixels, fmt=None):
    """Save an (H, W, 3|4) uint8 array with Qt, in the format the suffix names."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w, c = pixels.shape
    kind = QImage.Format.Format_RGBA8888 if c == 4 else QImage.Format.Format_RGB888
    assert QImage(pixels.data, w, h, c * w, kind).copy().save(str(path), fmt)
    return path


@pytest.mark.parametrize("suffix", ["png", "bmp", "jpg", "webp", "tiff"])
def test_common_formats_decode_to_the_right_colour(tmp_path, suffix):
    pixels = np.zeros((8, 10, 3), np.uint8)
    pixels[:] = (200, 40, 120)
    x = images.load_image(write(tmp_path / f"c.{suffix}", pixels), 3, 8, 10)
    assert x.shape == (3, 8, 10) and x.dtype == np.float32
    tolerance = 0.05 if suffix in ("jpg", "webp", "gif") else 1e-6  # lossy or palette formats
    np.testing.assert_allclose(x.mean(axis=(1, 2)), np.array([200, 40, 120]) / 255, atol=tolerance)


def test_gif_decodes(tmp_path):
    # Qt reads GIF but does not write it: a 1×1 GIF89a, one transparent pixel (white behind it)
    gif = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
           b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
    (tmp_path / "t.gif").write_bytes(gif)
    x = images.load_image(tmp_path / "t.gif", 3, 2, 2)
    np.testing.assert_allclose(x, 1.0)


def test_grey_uses_luma_weights(tmp_path):
    pixels = np.zeros((4, 4, 3), np.uint8)
    pixels[:] = (255, 0, 0)
    x = images.load_image(write(tmp_path / "red.png", pixels), 1, 4, 4)
    assert x.shape == (1, 4, 4)
    np.testing.assert_allclose(x, 0.299, atol=1e-6)


def test_transparency_is_composited_onto_white(tmp_path):
    pixels = np.zeros((2, 2, 4), np.uint8)
    pixels[0, 0] = (0, 0, 0, 255)  # opaque black
    pixels[0, 1] = (0, 0, 0, 0)  # fully transparent
    pixels[1, :] = (0, 0, 0, 102)  # 40 % black over white
    x = images.load_image(write(tmp_path / "a.png", pixels), 3, 2, 2)
    assert x[:, 0, 0].tolist() == [0, 0, 0]
    assert x[:, 0, 1].tolist() == [1, 1, 1]
    np.testing.assert_allclose(x[:, 1, 0], round(255 * 0.6) / 255, atol=1 / 255)


def test_resize_averages_when_shrinking(tmp_path):
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[::2, ::2] = 255
    pixels[1::2, 1::2] = 255  # a one-pixel checkerboard: half white
    x = images.load_image(write(tmp_path / "fine.png", pixels), 3, 16, 16)
    assert x.shape == (3, 16, 16)
    np.testing.assert_allclose(x, 0.5, atol=0.03)


def test_normalization_per_channel(tmp_path):
    pixels = np.full((2, 2, 3), 255, np.uint8)
    x = images.load_image(write(tmp_path / "w.png", pixels), 3, 2, 2, mean=[0.5, 0.5, 0.0],
                          std=[0.5, 0.25, 1.0])
    np.testing.assert_allclose(x[:, 0, 0], [1.0, 2.0, 1.0])
    x = images.load_image(tmp_path / "w.png", 3, 2, 2, mean=[0.5], std=[0.25])  # broadcast
    np.testing.assert_allclose(x[:, 0, 0], [2.0, 2.0, 2.0])
    with pytest.raises(ImageError, match="one per channel"):
        images.load_image(tmp_path / "w.png", 3, 2, 2, mean=[0.5, 0.5])


def test_bad_images_say_what_is_wrong(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match=r"junk\.png: can't be read as an image .*png"):
        images.load_image(tmp_path / "junk.png", 3, 4, 4)
    with pytest.raises(ImageError, match="no such file"):
        images.load_image(tmp_path / "absent.png", 3, 4, 4)
    with pytest.raises(ImageError, match="is a folder"):
        images.load_image(tmp_path, 3, 4, 4)
    write(tmp_path / "ok.png", np.zeros((4, 4, 3)))
    with pytest.raises(ImageError, match=r"64 channels.*\.npy array of shape \(64, 4, 4\)"):
        images.load_image(tmp_path / "ok.png", 64, 4, 4)


def test_npy_arrays_are_used_as_they_are(tmp_path):
    a = np.random.default_rng(0).standard_normal((2, 4, 5)).astype(np.float64)
    np.save(tmp_path / "a.npy", a)
    x = images.load_input(tmp_path / "a.npy", (2, 4, 5))
    assert x.shape == (1, 2, 4, 5) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], a, rtol=1e-6)
    np.save(tmp_path / "batch.npy", np.zeros((3, 2, 4, 5), np.float32))
    assert images.load_input(tmp_path / "batch.npy", (2, 4, 5)).shape == (3, 2, 4, 5)
    with pytest.raises(ImageError, match=r"has shape \(2, 4, 5\), but this design's Input takes "
                                         r"\(3, 4, 5\)"):
        images.load_input(tmp_path / "a.npy", (3, 4, 5))
    np.save(tmp_path / "o.npy", np.array([object()]), allow_pickle=True)
    with pytest.raises(ImageError, match="holds Python objects, which are never loaded"):
        images.load_input(tmp_path / "o.npy", (1, 1, 1))
    np.save(tmp_path / "nan.npy", np.full((2, 4, 5), np.nan))
    with pytest.raises(ImageError, match="NaN"):
        images.load_input(tmp_path / "nan.npy", (2, 4, 5))


def test_viridis_table():
    lut = images.viridis()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0].tolist() == [68, 1, 84] and lut[-1].tolist() == [253, 231, 37]
    luminance = lut @ np.array([0.299, 0.587, 0.114])
    assert (np.diff(luminance[::4]) > 0).all()  # perceptual: brightness rises steadily


def test_tile_maps_one_scale_per_map():
    maps = np.zeros((5, 4, 4), np.float32)
    maps[1] = np.arange(16).reshape(4, 4)  # a ramp: darkest and brightest colours
    maps[2] = 1000.0  # constant: the lowest colour
    maps[3] = -np.arange(16).reshape(4, 4) * 1e-6  # tiny values still use the whole scale
    grid = images.tile_maps(maps, gap=2, min_cell=8)
    lut = images.viridis()
    # 5 maps: a 3 × 2 grid of 8-pixel cells with 2-pixel gaps
    assert grid.shape == (2 * 8 + 2, 3 * 8 + 2 * 2, 3)
    cell = lambda i: grid[(i // 3) * 10:(i // 3) * 10 + 8, (i % 3) * 10:(i % 3) * 10 + 8]
    assert (cell(0) == lut[0]).all() and (cell(2) == lut[0]).all()
    assert cell(1)[0, 0].tolist() == lut[0].tolist() and cell(1)[-1, -1].tolist() == lut[255].tolist()
    assert cell(3)[0, 0].tolist() == lut[255].tolist()
    assert (grid[8:10] == 255).all()  # the gap between rows is white


def test_tile_maps_of_a_flat_vector_is_a_strip():
    grid = images.tile_maps(np.arange(10, dtype=np.float32), min_cell=16)
    assert grid.shape[0] == 16 and grid.shape[1] % 10 == 0
    lut = images.viridis()
    assert grid[0, 0].tolist() == lut[0].tolist() and grid[0, -1].tolist() == lut[255].tolist()


def test_png_round_trip(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (7, 9, 3)).astype(np.uint8)
    images.save_png(pixels, tmp_path / "p.png")
    np.testing.assert_array_equal(images.read_image(tmp_path / "p.png"), pixels)


# ------------------------------------------------------------- checked before decoding

import math  # noqa: E402
import os  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import zlib  # noqa: E402

from PySide6.QtGui import QImageReader  # noqa: E402

GIB = 2**30


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height RGB pixels, with two rows of data only."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * (3 * min(width, 1000) + 1) * 2)) + chunk(b"IEND", b""))


@pytest.fixture
def free(monkeypatch):
    """Pretend the machine has this many bytes free."""
    def set_free(n):
        monkeypatch.setattr(images, "available_memory", lambda: n)
    return set_free



def test_the_header_is_read_before_any_pixel(tmp_path):
    (tmp_path / "big.png").write_bytes(png_header(100_000, 50_000))
    info = images.image_info(tmp_path / "big.png")
    assert (info.width, info.height, info.format) == (100_000, 50_000, "png")
    assert info.decode_bytes() >= 100_000 * 50_000 * 4


def test_an_image_too_large_to_decode_is_refused_with_both_numbers(tmp_path, free):
    free(4 * GIB)
    (tmp_path / "big.png").write_bytes(png_header(100_000, 100_000))
    for load in (lambda p: images.load_image(p, 3, 224, 224), images.read_image):
        started = time.perf_counter()
        with pytest.raises(ImageError) as info:
            load(tmp_path / "big.png")
        assert time.perf_counter() - started < 10
        text = str(info.value)
        assert "big.png" in text and "100,000 × 100,000" in text
        assert re.search(r"needs about [\d,]+ MiB, but only 4,096 MiB is free", text), text


def test_decoding_and_resizing_are_counted_together(tmp_path, free):
    pixels = np.zeros((100, 100, 3), np.uint8)
    write(tmp_path / "small.png", pixels)
    free(64 * 2**20)  # 64 MiB: a 100 × 100 image decodes, but a 3 × 4000 × 4000 input doesn't fit
    assert images.read_image(tmp_path / "small.png").shape == (100, 100, 3)
    with pytest.raises(ImageError, match=r"resizing it to 4,000 × 4,000 needs about [\d,]+ MiB, "
                                         r"but only 64 MiB is free"):
        images.load_image(tmp_path / "small.png", 3, 4000, 4000)


def test_an_input_too_large_for_memory_or_qt_is_refused_at_once(free):
    pixels = np.zeros((8, 8, 3), np.uint8)
    free(4 * GIB)
    for h, w in [(100_000, 100_000), (20_000, 20_000)]:
        started = time.perf_counter()
        with pytest.raises(ImageError, match=r"needs about [\d,]+ MiB, but only 4,096 MiB is free"):
            images.to_input(pixels, 3, h, w)
        assert time.perf_counter() - started < 10
    free(None)  # unknown: Qt's limits still hold
    with pytest.raises(ImageError, match="more than Qt can hold"):
        images.to_input(pixels, 3, 4, 2**31)
    with pytest.raises(ImageError, match="more than Qt can hold"):
        images.to_input(pixels, 1, 2**31, 4)


def test_a_large_image_loads_past_qts_default_allocation_limit(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (600, 700, 3)).astype(np.uint8)
    write(tmp_path / "big.png", pixels)
    old = QImageReader.allocationLimit()
    QImageReader.setAllocationLimit(1)  # 1 MiB: less than this 1.6 MB image
    try:
        np.testing.assert_array_equal(images.read_image(tmp_path / "big.png"), pixels)
        assert QImageReader.allocationLimit() == 1  # restored after the read
    finally:
        QImageReader.setAllocationLimit(old)


def test_special_files_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with deadline(5):
        for target in (fifo, "/dev/zero"):
            for load in (images.read_image, images.image_info,
                         lambda p: images.load_image(p, 3, 4, 4)):
                with pytest.raises(ImageError, match="not a regular file"):
                    load(target)


def test_any_file_name_the_system_allows(tmp_path):
    pixels = np.full((3, 4, 3), 7, np.uint8)
    for name in (os.fsdecode(b"raw \xff\xfe bytes.png"), "unicodé ☃ 画像.png"):
        write(tmp_path / "plain.png", pixels)
        os.replace(tmp_path / "plain.png", tmp_path / name)
        np.testing.assert_array_equal(images.read_image(tmp_path / name), pixels)
    with pytest.raises(ImageError, match="not a usable file name"):
        images.read_image(tmp_path / "lone \ud800.png")
    with pytest.raises(ImageError, match="not a usable file name"):
        images.read_image("nul\0.png")


def test_every_alpha_composites_exactly(tmp_path):
    c, a = np.meshgrid(np.arange(0, 256, 5), np.arange(256), indexing="ij")
    rgba = np.stack([c, 255 - c, np.full_like(c, 128), a], axis=-1).astype(np.uint8)
    write(tmp_path / "alpha.png", rgba)
    got = images.read_image(tmp_path / "alpha.png").astype(np.int64)
    colour = rgba[..., :3].astype(np.int64)
    alpha = rgba[..., 3:].astype(np.int64)
    expected = np.floor(colour * alpha / 255 + 0.5) + 255 - alpha  # exact, rounded once
    np.testing.assert_array_equal(got, expected)


def numpy_peak(function, *args, **kwargs):
    """(result, peak bytes NumPy allocated while ``function`` ran)."""
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_an_image_is_lean(tmp_path):
    rgba = np.random.default_rng(3).integers(0, 256, (1000, 1000, 4)).astype(np.uint8)
    write(tmp_path / "a.png", rgba)
    pixels, peak = numpy_peak(images.read_image, tmp_path / "a.png")
    assert pixels.nbytes == 3_000_000
    assert peak < 1.5 * pixels.nbytes, peak  # no float copies: the result and a band


def test_making_the_input_is_lean():
    pixels = np.random.default_rng(4).integers(0, 256, (1000, 1000, 3)).astype(np.uint8)
    for channels in (3, 1):
        x, peak = numpy_peak(images.to_input, pixels, channels, 1000, 1000, mean=[0.5], std=[0.25])
        assert peak < x.nbytes + 4 * 2**20, (channels, peak)  # the result and a band of rows
        reference = pixels.astype(np.float64) / 255
        if channels == 1:
            reference = reference @ [0.299, 0.587, 0.114]
            reference = reference[..., None]
        np.testing.assert_allclose(x, (reference.transpose(2, 0, 1) - 0.5) / 0.25, atol=2e-6)


@pytest.mark.parametrize("mean, std, words", [
    ([0.5], [float("nan")], "std must be a finite number above 0"),
    ([0.5], [float("inf")], "std must be a finite number above 0"),
    ([0.5], [0.0], "std must be a finite number above 0"),
    ([0.5], [-1.0], "std must be a finite number above 0"),
    ([float("inf")], [1.0], "mean must be a finite number"),
    ([float("nan")], None, "mean must be a finite number"),
    ([0.0], [1e-50], "32-bit"),
])
def test_mean_and_std_must_be_usable(tmp_path, mean, std, words):
    write(tmp_path / "w.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ImageError, match=words):
        images.load_image(tmp_path / "w.png", 3, 2, 2, mean=mean, std=std)
    with pytest.raises(ImageError, match=words):
        images.to_input(np.zeros((2, 2, 3), np.uint8), 3, 2, 2, mean=mean, std=std)


# ------------------------------------------------------------------- pictures out, bounded

import re  # noqa: E402


def slow_colours(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reference: viridis of (v − lo)/(hi − lo), per value, in float64."""
    lut = images.viridis()
    span = hi - lo if hi > lo else 1.0
    return lut[np.rint((np.asarray(values, np.float64) - lo) / span * 255).astype(int)]


def test_a_picture_of_large_maps_stays_within_bounds():
    plan = images.plan_tiles((64, 2048, 2048))
    assert plan.width <= images.MAX_PICTURE_SIDE and plan.height <= images.MAX_PICTURE_SIDE
    assert plan.shrink == 5 and plan.reduced
    assert plan.note() == "2,048×2,048 maps shown at 410×410 (averages of 5×5 blocks)"
    small = images.plan_tiles((512, 14, 14))  # VGG-16 at 224: unchanged, enlarged to 48 pixels
    assert not small.reduced and small.note() == "" and small.cell_h == 56
    assert small.width == 23 * 58 - 2


def test_averaged_maps_match_a_reference():
    rng = np.random.default_rng(5)
    maps = rng.standard_normal((3, 50, 37)).astype(np.float32)
    grid = images.tile_maps(maps, gap=2, min_cell=4, max_side=40)
    plan = images.plan_tiles(maps.shape, gap=2, min_cell=4, max_side=40)
    assert grid.shape == (plan.height, plan.width, 3) and max(grid.shape[:2]) <= 40
    f = plan.shrink
    assert f == 3
    lut = images.viridis().astype(int)
    for i in range(3):
        m = maps[i].astype(np.float64)
        lo, hi = m.min(), m.max()
        unit = (m - lo) / (hi - lo)
        r, q = divmod(i, plan.cols)
        cell = grid[r * (plan.cell_h + 2):r * (plan.cell_h + 2) + plan.cell_h,
                    q * (plan.cell_w + 2):q * (plan.cell_w + 2) + plan.cell_w].astype(int)
        for y in range(math.ceil(50 / f)):
            for x in range(math.ceil(37 / f)):
                level = unit[y * f:(y + 1) * f, x * f:(x + 1) * f].mean() * 255
                nearest = {math.floor(level), math.ceil(level)}  # float32 may round either way
                assert any((lut[k] == cell[y, x]).all() for k in nearest), (i, y, x)


def test_millions_of_maps_show_the_first_ones():
    plan = images.plan_tiles((100_000, 1, 1), gap=2, min_cell=48, max_side=300)
    assert plan.shown == 100 * 100 and plan.width <= 300 and plan.height <= 300
    assert plan.note() == "only the first 10,000 of 100,000 maps shown"
    grid = images.tile_maps(np.arange(100_000, dtype=np.float32).reshape(-1, 1, 1), max_side=300)
    assert grid.shape == (plan.height, plan.width, 3)


def test_a_long_flat_vector_is_wrapped_and_averaged():
    values = np.arange(10_000, dtype=np.float32)
    plan = images.plan_tiles(values.shape, min_cell=16, max_side=64)
    assert plan.shrink == 3 and plan.width == 64 and plan.height <= 64
    assert plan.note() == "10,000 values shown as 3,392 averages of 3"
    grid = images.tile_maps(values, min_cell=16, max_side=64)
    expected = slow_colours([values[i:i + 3].mean() for i in range(0, 10_000, 3)], 0, 9999)
    got = grid[::plan.scale_h].reshape(-1, 3)[:len(expected)]
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2
    assert (grid[::plan.scale_h].reshape(-1, 3)[len(expected):] == 255).all()  # the tail is white
    wide = images.plan_tiles((25_088,))  # VGG-16's flatten: rows of 4,096 values
    assert wide.shrink == 1 and wide.width == 4096 and wide.rows == 7 and not wide.reduced


def test_non_finite_values_keep_the_finite_scale():
    maps = np.array([[[0.0, 1.0, 2.0, np.inf, -np.inf, np.nan]]], np.float32)
    lut = images.viridis()
    row = images.tile_maps(maps, gap=0, min_cell=1)[0]
    assert row[0].tolist() == lut[0].tolist() and row[2].tolist() == lut[255].tolist()
    assert row[1].tolist() == lut[128].tolist()
    assert row[3].tolist() == lut[255].tolist() and row[4].tolist() == lut[0].tolist()
    assert row[5].tolist() == list(images.NAN_COLOUR)
    blank = images.tile_maps(np.full((1, 2, 2), np.nan, np.float32), gap=0, min_cell=1)
    assert (blank == images.NAN_COLOUR).all()


def test_huge_and_tiny_ranges_use_the_whole_scale():
    lut = images.viridis()
    for values in ([-3e38, 0.0, 3e38], [1000.0, 1000.0 + 6.103515625e-05 / 2, 1000.000061]):
        row = images.tile_maps(np.array([[values]], np.float32), gap=0, min_cell=1)[0]
        assert row[0].tolist() == lut[0].tolist() and row[2].tolist() == lut[255].tolist()


def test_pictures_are_made_without_float64_copies():
    maps = np.random.default_rng(6).standard_normal((64, 512, 512)).astype(np.float32)  # 64 MiB
    grid, peak = numpy_peak(images.tile_maps, maps)
    assert peak < grid.nbytes + 12 * 2**20, peak


def test_save_png_says_why_it_cant_write(tmp_path):
    pixels = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(FileNotFoundError):
        images.save_png(pixels, "/proc/x.png")
    with pytest.raises(OSError, match="characters that can't be written"):
        images.save_png(pixels, tmp_path / "x\ud800.png")
    images.save_png(pixels, tmp_path / "ok.png")
    assert [p.name for p in tmp_path.iterdir()] == ["ok.png"]
