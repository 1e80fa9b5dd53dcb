"""Images in (Qt's reader: formats, alpha, grey, resize, scaling, normalization), arrays in, and
activation maps out."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage

from designer.io import images
from designer.io.images import ImageError


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
    with pytest.raises(ImageError, match="not a readable .npy array"):
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
