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
from tests.helpers import deadline

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


# ------------------------------------------------------------------ robustness (issue 11)

import os  # noqa: E402
import re  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402

from designer import cli  # noqa: E402
from designer.engine import network  # noqa: E402

GIB = 2**30



def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def design_with_input(tmp_path, c, h, w, layers=(), name="d.json"):
    nodes = [{"id": "input", "type": "Input", "params": {"channels": c, "height": h, "width": w}}]
    nodes += [{"id": i, "type": t, "params": p} for i, t, p in layers]
    edges = [[a["id"], b["id"]] for a, b in zip(nodes, nodes[1:])]
    path = tmp_path / name
    path.write_text(json.dumps({"format": "cnn-designer", "version": 1, "nodes": nodes,
                                "edges": edges}))
    return path


@pytest.mark.parametrize("option, value, words", [
    ("--std", "nan", "std must be a finite number above 0"),
    ("--std", "inf", "std must be a finite number above 0"),
    ("--std", "0.2,0,0.2", "std must be a finite number above 0"),
    ("--std", "-1", "std must be a finite number above 0"),
    ("--mean", "inf", "mean must be a finite number"),
    ("--mean", "0.5,nan,0.5", "mean must be a finite number"),
])
def test_run_refuses_unusable_mean_and_std(tmp_path, design_file, image_file, capsys,
                                           option, value, words):
    code, out, err = run(capsys, "run", design_file, "--input", image_file,
                         "--out", tmp_path / "o", option, value)
    assert code == 2 and words in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("which", ["--input", "--weights"])
def test_run_refuses_special_files_without_blocking(tmp_path, design_file, image_file, capsys,
                                                    which):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    for target, words in [(fifo, "not a regular file"), ("/dev/zero", "not a regular file"),
                          (tmp_path / "folder", "is a folder"),
                          (tmp_path / "absent", "no such file")]:
        args = ["run", design_file, "--out", tmp_path / "o",
                "--input", target if which == "--input" else image_file]
        if which == "--weights":
            args += ["--weights", target]
        with deadline(10):
            code, out, err = run(capsys, *args)
        assert code == 2 and words in err and str(target) in err, (target, err)


def test_run_says_when_the_results_folder_cant_be_written(tmp_path, design_file, image_file,
                                                          capsys, monkeypatch):
    ran = []
    monkeypatch.setattr(network.Network, "forward", lambda self, x, progress=None: ran.append(1))
    code, out, err = run(capsys, "run", design_file, "--input", image_file,
                         "--out", "/proc/cnn-designer-results")
    assert code == 2 and "can't hold new files" in err and "does not exist" not in err
    (tmp_path / "file").write_text("x")
    code, out, err = run(capsys, "run", design_file, "--input", image_file,
                         "--out", tmp_path / "file")
    assert code == 2 and "is a file, not a folder" in err
    assert ran == []  # refused before the forward pass


def test_run_says_why_a_result_cant_be_saved(tmp_path, design_file, image_file, capsys):
    out = tmp_path / "o"
    (out / "conv1.png").mkdir(parents=True)  # a folder where a picture should go
    code, _, err = run(capsys, "run", design_file, "--input", image_file, "--out", out)
    assert code == 2 and f"can't save to {out / 'conv1.png'}: it is a folder" in err
    out = tmp_path / "p"
    (out / "activations.npz").mkdir(parents=True)
    code, _, err = run(capsys, "run", design_file, "--input", image_file, "--out", out)
    assert code == 2 and f"can't save to {out / 'activations.npz'}: it is a folder" in err


def test_an_input_too_large_is_refused_before_decoding(tmp_path, image_file, capsys, monkeypatch):
    monkeypatch.setattr(network, "available_memory", lambda: 8 * GIB)
    for c, h, w in [(3, 100_000, 100_000), (3, 20_000, 20_000)]:
        path = design_with_input(tmp_path, c, h, w, [("conv", "Conv2d", {"out_channels": 4,
                                                                          "kernel_size": 3})])
        started = time.perf_counter()
        code, out, err = run(capsys, "run", path, "--input", image_file, "--out", tmp_path / "o")
        assert time.perf_counter() - started < 20
        assert code == 2, err
        assert re.search(r"needs about [\d,]+ MiB .*but only 8,192 MiB is free", err), err


def test_an_image_too_large_to_decode_is_refused_from_its_header(tmp_path, design_file, capsys,
                                                                 monkeypatch):
    from tests.io.test_images import png_header
    monkeypatch.setattr(network, "available_memory", lambda: 4 * GIB)
    (tmp_path / "huge.png").write_bytes(png_header(100_000, 100_000))
    code, out, err = run(capsys, "run", design_file, "--input", tmp_path / "huge.png",
                         "--out", tmp_path / "o")
    assert code == 2
    assert "huge.png: decoding this 100,000 × 100,000 image and resizing it to 16 × 16 needs " \
           "about" in err and "but only 4,096 MiB is free" in err


def test_a_npy_batch_too_large_is_refused_from_its_header(tmp_path, design_file, capsys,
                                                          monkeypatch):
    monkeypatch.setattr(network, "available_memory", lambda: 1 * GIB)
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 3, 16, 16), np.float32))
    header["shape"] = (10**7, 3, 16, 16)
    with open(tmp_path / "x.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)  # a header and no data
    code, out, err = run(capsys, "run", design_file, "--input", tmp_path / "x.npy",
                         "--out", tmp_path / "o")
    assert code == 2 and "10000000 images" in err.replace(",", "") and "1,024 MiB is free" in err
    header["shape"] = (2, 3, 8, 8)
    with open(tmp_path / "y.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
    code, out, err = run(capsys, "run", design_file, "--input", tmp_path / "y.npy",
                         "--out", tmp_path / "o")
    assert code == 2 and "has shape (2, 3, 8, 8)" in err and "(N, 3, 16, 16)" in err


def test_a_run_that_overflows_says_where(tmp_path, capsys):
    depth = 42
    layers = [(f"c{i}", "Conv2d", {"out_channels": 1, "kernel_size": 1, "bias": False})
              for i in range(1, depth + 1)]
    path = design_with_input(tmp_path, 1, 4, 4, layers)
    np.savez(tmp_path / "w.npz", **{f"c{i}.weight": np.full((1, 1, 1, 1), 10, np.float32)
                                    for i in range(1, depth + 1)})
    np.save(tmp_path / "x.npy", np.ones((1, 4, 4), np.float32))
    code, out, err = run(capsys, "run", path, "--input", tmp_path / "x.npy", "--weights",
                         tmp_path / "w.npz", "--out", tmp_path / "o")
    assert code == 0 and "Ran 43 nodes" in out
    # 10^38 fits in float32, 10^39 doesn't: c39 is the first layer whose output is infinite
    assert "cnn-designer: warning: activations overflow from c39 on (1e38 going in)" in err, err
    with np.load(tmp_path / "o" / "activations.npz") as acts:
        assert np.isinf(acts["c39"]).all() and np.isfinite(acts["c38"]).all()
    assert (tmp_path / "o" / "c42.png").is_file()
    code, out, err = run(capsys, "run", path, "--input", tmp_path / "x.npy",
                         "--out", tmp_path / "p")
    assert code == 0 and "warning" not in err  # seeded weights stay finite


def test_large_maps_are_pictured_within_bounds_and_the_output_says_so(tmp_path, capsys):
    path = design_with_input(tmp_path, 1, 4500, 10, [("relu", "ReLU", {})])
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((1, 1, 4500, 10), np.float32))
    code, out, err = run(capsys, "run", path, "--input", tmp_path / "x.npy",
                         "--out", tmp_path / "o")
    assert code == 0, err
    assert "2 picture(s) would be over 4,096 pixels a side" in out
    assert "input: 4,500×10 maps shown at 2,250×5 (averages of 2×2 blocks)" in out
    picture = QImage(str(tmp_path / "o" / "relu.png"))
    assert (picture.height(), picture.width()) == (2250, 5)
    with np.load(tmp_path / "o" / "activations.npz") as acts:
        assert acts["relu"].shape == (1, 1, 4500, 10)  # every value kept


def test_activations_are_streamed_into_a_zip64_archive(tmp_path):
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b/c": np.ones(5, np.float64)}
    cli.write_npz(tmp_path / "acts.npz", arrays.items())
    with np.load(tmp_path / "acts.npz", allow_pickle=False) as loaded:
        assert sorted(loaded.files) == ["a", "b/c"]
        np.testing.assert_array_equal(loaded["a"], arrays["a"])
        assert loaded["b/c"].dtype == np.float32  # written in float32
    with zipfile.ZipFile(tmp_path / "acts.npz") as archive, open(tmp_path / "acts.npz", "rb") as raw:
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            raw.seek(info.header_offset)  # the entry's local header: a ZIP64 field, no 4 GiB limit
            name_length, extra_length = struct.unpack("<HH", raw.read(30)[26:30])
            raw.seek(name_length, 1)
            assert extra_length >= 20 and raw.read(2) == b"\x01\x00"
    assert [p.name for p in tmp_path.iterdir()] == ["acts.npz"]
    with pytest.raises(ValueError, match="not valid text"):
        cli.write_npz(tmp_path / "bad.npz", [("in\ud800", np.zeros(1))])
    assert [p.name for p in tmp_path.iterdir()] == ["acts.npz"]  # no half-written file


def test_run_with_any_file_names(tmp_path, design_file, image_file, capsys):
    picture = tmp_path / os.fsdecode(b"photo \xff.png")
    os.replace(image_file, picture)
    out = tmp_path / os.fsdecode(b"results \xfe")
    code, _, err = run(capsys, "run", design_file, "--input", picture, "--out", out)
    assert code == 0, err
    assert (out / "conv1.png").is_file() and (out / "activations.npz").is_file()


def test_a_refused_run_leaves_no_results_folder(tmp_path, design_file, image_file, capsys,
                                                monkeypatch):
    monkeypatch.setattr(network, "available_memory", lambda: 2**20)
    code, _, err = run(capsys, "run", design_file, "--input", image_file, "--out", tmp_path / "o")
    assert code == 2 and "but only 1 MiB is free" in err
    assert not (tmp_path / "o").exists()
