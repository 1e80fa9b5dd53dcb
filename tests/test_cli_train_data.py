"""`cnn-designer train` on the data a new user brings: standardised .npz images, NaN, labels out
of range."""
from __future__ import annotations

import numpy as np

import designer
from designer.cli import main
from tests.train.test_loop import stripes, tiny_design


def design_file(tmp_path, classes=2):
    path = tmp_path / "tiny.json"
    path.write_text(designer.io.design_file.design_to_json(tiny_design(classes, (1, 8, 8))))
    return path


def run(*args):
    return main(["train", *map(str, args)])


def test_mean_subtracted_npz_data_trains(tmp_path, capsys):
    x, y = stripes(300, 1)
    path = tmp_path / "centred.npz"
    np.savez(path, x=x - 0.5, y=y)  # values in [-0.5, 0.5]
    out = tmp_path / "out"
    assert run(design_file(tmp_path), "--data", path, "--out", out, "--epochs", 2,
               "--lr", 0.01) == 0
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    assert float(rows[-1].split(",")[4]) >= 0.8  # learnt from the centred values
    assert "error" not in capsys.readouterr().err


def test_nan_in_npz_data_exits_2_naming_the_place(tmp_path, capsys):
    x, y = stripes(40, 1)
    x[7, 0, 2, 3] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, x=x, y=y)
    assert run(design_file(tmp_path), "--data", path, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "1 value that is not a finite number" in err and "image 7" in err
    assert "[0, 1]" not in err


def test_a_stray_label_exits_2_naming_it(tmp_path, capsys):
    x = np.random.default_rng(0).random((200, 1, 8, 8), dtype=np.float32)
    y = np.arange(200) % 10
    y[57] = 12
    path = tmp_path / "stray.npz"
    np.savez(path, x=x, y=y)
    assert run(design_file(tmp_path, classes=10), "--data", path, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "1 label out of range (the first, 12, at y[57])" in err and "0 … 9" in err
    assert "out_features to 13" not in err.split("(if they")[0]


def test_every_label_minus_one_exits_2_saying_labels_are_0_or_more(tmp_path, capsys):
    path = tmp_path / "minus.npz"
    np.savez(path, x=np.zeros((20, 1, 8, 8), np.float32), y=np.full(20, -1))
    assert run(design_file(tmp_path), "--data", path, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "0 or more" in err and "two classes or more" in err and "with 1 classes" not in err

