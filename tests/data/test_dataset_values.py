"""An .npz's float images keep their scale (standardised data trains; contract §6 asks only for
float32), and NaN or infinite values are refused with how many and where the first is."""
import numpy as np
import pytest

from designer.data import dataset as ds
from designer.data.dataset import DataError, load_dataset


def design(c, h, w):
    return {"format": "cnn-designer", "version": 1, "edges": [],
            "nodes": [{"id": "input", "type": "Input",
                       "params": {"channels": c, "height": h, "width": w}}]}


def test_standardised_images_are_taken_as_they_are(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.random((20, 1, 6, 6)) - 0.5).astype(np.float32) * 8  # values in [-4, 4)
    y = np.arange(20) % 2
    path = tmp_path / "standardised.npz"
    np.savez(path, x=x, y=y, x_val=x[:4], y_val=y[:4])
    data = load_dataset(path, design(1, 6, 6))
    assert np.array_equal(data.train[0], x)  # same size and channels: untouched
    assert data.train[0].min() < -3 and data.train[0].max() > 3


def test_conversions_of_values_outside_0_1_are_plain_averages_and_copies():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 3, 4, 6)) * 5).astype(np.float32)
    grey = ds.convert(x, (1, 4, 6), "test")
    assert np.allclose(grey[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2], atol=1e-5)
    rgb = ds.convert(x[:, :1], (3, 4, 6), "test")
    assert all(np.array_equal(rgb[:, k], x[:, 0]) for k in range(3))
    # shrinking 4×6 to 2×3 averages 2×2 blocks, negative values and all
    small = ds.convert(x, (3, 2, 3), "test")
    blocks = x.reshape(3, 3, 2, 2, 3, 2).mean(axis=(3, 5))
    assert np.allclose(small, blocks, atol=1e-5)
    assert small.min() < -1


def test_uint8_images_still_end_up_in_0_1():
    x = np.array([0, 51, 255], np.uint8).reshape(3, 1, 1, 1).repeat(2, 2).repeat(2, 3)
    assert ds.convert(x, (1, 3, 3), "test")[:, 0, 1, 1].tolist() == pytest.approx([0, 0.2, 1])


@pytest.mark.parametrize("bad, count, first, shown", [
    ({(3, 0, 1, 2): np.nan}, 1, "image 3 (channel 0, row 1, column 2)", "nan"),
    ({(5, 0, 0, 0): np.inf, (7, 0, 3, 3): -np.inf, (9, 0, 2, 1): np.nan}, 3,
     "image 5 (channel 0, row 0, column 0)", "inf"),
])
def test_nan_and_infinite_values_are_refused_with_count_and_place(tmp_path, bad, count, first,
                                                                   shown):
    x = np.zeros((10, 1, 4, 4), np.float32) - 2.5  # out of [0, 1], but finite: not the problem
    for where, value in bad.items():
        x[where] = value
    path = tmp_path / "bad.npz"
    np.savez(path, x=x, y=np.arange(10) % 2)
    with pytest.raises(DataError) as caught:
        load_dataset(path, design(1, 4, 4))
    text = str(caught.value)
    assert f"'x' holds {count} value" in text and first in text and shown in text
    assert "[0, 1]" not in text


def test_float64_values_too_large_for_float32_are_refused(tmp_path):
    x = np.zeros((4, 1, 2, 2))
    x[2, 0, 1, 0] = 1e300
    path = tmp_path / "big.npz"
    np.savez(path, x=x, y=np.array([0, 1, 0, 1]), x_val=np.zeros((2, 1, 2, 2)),
             y_val=np.array([0, 1]))
    with pytest.raises(DataError, match="1 value that is not a finite.*image 2 \\(channel 0, "
                                        "row 1, column 0\\)"):
        load_dataset(path, design(1, 2, 2))


def test_nan_in_the_validation_part_is_named(tmp_path):
    x_val = np.zeros((4, 1, 2, 2), np.float32)
    x_val[1, 0, 0, 1] = np.nan
    path = tmp_path / "val.npz"
    np.savez(path, x=np.zeros((4, 1, 2, 2), np.float32), y=np.array([0, 1, 0, 1]),
             x_val=x_val, y_val=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="'x_val' holds 1 value.*image 1"):
        load_dataset(path, design(1, 2, 2))
