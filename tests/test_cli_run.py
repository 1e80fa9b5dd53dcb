"""`cnn-designer run`: activations, weights and PNGs written; exit 0 / 1 / 2 with clear messages."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtGui import QImage

import designer
from designer.cli import main
from designer.engine.network import build
from designer.io.templates import find_template

SMALL = {
    "format": "cnn-designer", "version": 1, "name": "small",
    "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 3, "height": 16, "width": 16}},
        {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3,
                                                     "padding": 1}},
        {"id": "relu/1", "type": "ReLU", "params": {}},
        {"id": "flat", "type": "Flatten", "params": {}},
        {"id": "fc", "type": "Linear", "params": {"out_features": 3}},
    ],
    "edges": [["input", "conv1"], ["conv1", "relu/1"], ["relu/1", "flat"], ["flat", "fc"]],
}


@pytest.fixture
def design_file(tmp_path):
    path = tmp_path / "small.json"
    path.write_text(json.dumps(SMALL))
    return path


@pytest.fixture
def image_file(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 24, 3)).astype(np.uint8)
    path = tmp_path / "in.png"
    assert QImage(pixels.data, 24, 20, 72, QImage.Format.Format_RGB888).copy().save(str(path))
    return path


def test_run_writes_activations_weights_and_pngs(tmp_path, design_file, image_file, capsys):
    out = tmp_path / "out"
    assert main(["run", str(design_file), "--input", str(image_file), "--out", str(out),
                 "--seed", "3"]) == 0
    assert "Ran 5 nodes" in capsys.readouterr().out
    with np.load(out / "activations.npz", allow_pickle=False) as acts:
        assert set(acts.files) == {"input", "conv1", "relu/1", "flat", "fc"}
        x = acts["input"]
        assert x.shape == (1, 3, 16, 16) and 0 <= x.min() and x.max() <= 1
        expected = build(designer.load_design(design_file), seed=3).forward(x)
        for key in acts.files:
            np.testing.assert_allclose(acts[key], expected[key], rtol=1e-6)
    with np.load(out / "weights.npz", allow_pickle=False) as w:
        assert w["conv1.weight"].shape == (4, 3, 3, 3) and w["fc.weight"].shape == (3, 1024)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["conv1.png", "fc.png", "flat.png", "input.png", "relu_1.png"]
    assert not QImage(str(out / "conv1.png")).isNull()


def test_run_with_saved_weights_reproduces(tmp_path, design_file, image_file):
    assert main(["run", str(design_file), "--input", str(image_file), "--out", str(tmp_path / "a"),
                 "--seed", "7"]) == 0
    assert main(["run", str(design_file), "--input", str(image_file), "--out", str(tmp_path / "b"),
                 "--weights", str(tmp_path / "a" / "weights.npz"), "--seed", "99"]) == 0
    with np.load(tmp_path / "a" / "activations.npz") as a, \
            np.load(tmp_path / "b" / "activations.npz") as b:
        np.testing.assert_array_equal(a["fc"], b["fc"])


def test_run_normalizes_an_image_on_request(tmp_path, design_file, image_file):
    assert main(["run", str(design_file), "--input", str(image_file), "--out", str(tmp_path / "p")]) == 0
    assert main(["run", str(design_file), "--input", str(image_file), "--out", str(tmp_path / "n"),
                 "--mean", "0.5,0.25,0", "--std", "0.5,1,2"]) == 0
    with np.load(tmp_path / "p" / "activations.npz") as plain, \
            np.load(tmp_path / "n" / "activations.npz") as normed:
        expected = (plain["input"] - np.array([0.5, 0.25, 0])[None, :, None, None]) \
            / np.array([0.5, 1, 2])[None, :, None, None]
        np.testing.assert_allclose(normed["input"], expected, rtol=1e-6, atol=1e-6)


def test_run_takes_a_npy_batch(tmp_path, design_file):
    batch = np.random.default_rng(1).random((2, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", batch)
    assert main(["run", str(design_file), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "o")]) == 0
    with np.load(tmp_path / "o" / "activations.npz") as acts:
        np.testing.assert_array_equal(acts["input"], batch)
        assert acts["fc"].shape == (2, 3)


def test_run_a_template_on_an_image(tmp_path, image_file):
    path = find_template("lenet5").path
    assert main(["run", str(path), "--input", str(image_file), "--out", str(tmp_path / "l")]) == 0
    with np.load(tmp_path / "l" / "activations.npz") as acts:
        assert acts["input"].shape == (1, 1, 32, 32)  # converted to grey and resized


def test_run_exit_statuses_and_messages(tmp_path, design_file, image_file, capsys):
    invalid = dict(SMALL, nodes=SMALL["nodes"][:2] + [
        {"id": "fc", "type": "Linear", "params": {"out_features": 3}}],
        edges=[["input", "conv1"], ["conv1", "fc"]])
    bad_design = tmp_path / "invalid.json"
    bad_design.write_text(json.dumps(invalid))
    out = str(tmp_path / "o")
    cases = [
        (["run", str(bad_design), "--input", str(image_file), "--out", out], 1, "insert a Flatten"),
        (["run", str(tmp_path / "none.json"), "--input", str(image_file), "--out", out], 2,
         "no such file"),
        (["run", str(design_file), "--input", str(tmp_path / "none.png"), "--out", out], 2,
         "no such file"),
        (["run", str(design_file), "--input", str(design_file), "--out", out], 2,
         "can't be read as an image"),
        (["run", str(design_file), "--input", str(image_file), "--out", out, "--weights",
          str(image_file)], 2, "not a readable weights file"),
    ]
    np.save(tmp_path / "wrong.npy", np.zeros((3, 8, 8), np.float32))
    cases.append((["run", str(design_file), "--input", str(tmp_path / "wrong.npy"), "--out", out],
                  2, "(3, 16, 16)"))
    for args, status, words in cases:
        assert main(args) == status, args
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (args, err)
