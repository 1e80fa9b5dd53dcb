"""Every command, tried with broken input the way a careless user or a hostile file would: missing
files, folders, pipes, devices, file names that aren't text, huge sizes, wrong types. Each case
must end in a message and the contract's exit status (§4), promptly: never a traceback, never a
hang, and never the last guard's "this is a bug" (each case is handled where it happens)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from designer.cli import main
from designer.engine import network
from tests.helpers import deadline

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "resources" / "templates" / "lenet5.json"
GIB = 2**30



def design(*layers, input_shape=(3, 16, 16)):
    c, h, w = input_shape
    nodes = [{"id": "input", "type": "Input", "params": {"channels": c, "height": h, "width": w}}]
    nodes += [{"id": f"n{i}", "type": t, "params": p} for i, (t, p) in enumerate(layers)]
    edges = [[a["id"], b["id"]] for a, b in zip(nodes, nodes[1:])]
    return {"format": "cnn-designer", "version": 1, "nodes": nodes, "edges": edges}


@pytest.fixture
def place(tmp_path, monkeypatch):
    """Broken things in a folder, by name; the machine is said to have 8 GiB free."""
    monkeypatch.setattr(network, "available_memory", lambda: 8 * GIB)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "garbage").write_bytes(bytes(range(256)) * 4)
    (tmp_path / os.fsdecode(b"raw\xff.json")).write_bytes(LENET.read_bytes())
    pixels = np.zeros((20, 20, 3), np.uint8)
    assert QImage(pixels.data, 20, 20, 60, QImage.Format.Format_RGB888).copy().save(
        str(tmp_path / "ok.png"))
    (tmp_path / "ok.json").write_bytes(LENET.read_bytes())
    (tmp_path / "small.json").write_text(json.dumps(design(
        ("Conv2d", {"out_channels": 2, "kernel_size": 3}))))
    huge = {
        "huge-input.json": design(input_shape=(3, 2**31 - 1, 2**31 - 1)),
        "huge-linear.json": design(("Flatten", {}), ("Linear", {"out_features": 2**31 - 1})),
        "huge-conv.json": design(("Conv2d", {"out_channels": 2**31 - 1, "kernel_size": 1})),
        "huge-kernel.json": design(("Conv2d", {"out_channels": 4, "kernel_size": 16,
                                               "padding": 100_000})),
        "huge-stride.json": design(("Conv2d", {"out_channels": 4, "kernel_size": 3,
                                               "stride": 2**31 - 1})),
        "huge-number.json": design(("Conv2d", {"out_channels": 10**400, "kernel_size": 3})),
        "wrong-types.json": design(("Conv2d", {"out_channels": "4", "kernel_size": [3, None]})),
        "not-a-design.json": {"nodes": "everything"},
    }
    for name, data in huge.items():
        (tmp_path / name).write_text(json.dumps(data))
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    np.savez(tmp_path / "wrong-weights.npz", **{"n0.weight": np.zeros((1, 1), np.float32)})
    np.save(tmp_path / "object.npy", np.array([{}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "strings.npy", np.array(["a"]))
    return tmp_path


BROKEN_FILES = ["missing.json", "folder", "fifo", "/dev/zero", "/dev/null", "empty", "garbage",
                "not-a-design.json", "deep.json", "lone\ud800.json", "nul\0.json", "x" * 300]


def check(capsys, args, statuses, seconds=20):
    with deadline(seconds):
        code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, (args, err)
    assert "unexpected error" not in err, (args, err)  # handled where it happens, not by the guard
    assert code in statuses, (args, code, err)
    if code == 2:  # a message of ours, or argparse's usage and error
        assert err.startswith("cnn-designer") or "error:" in err, (args, err)
    return code, out, err


def at(place, name):
    return name if name.startswith("/") else place / name


@pytest.mark.parametrize("name", BROKEN_FILES)
def test_summary_of_broken_files(place, capsys, name):
    check(capsys, ["summary", at(place, name)], {2})
    check(capsys, ["summary", at(place, name), "--json"], {2})


@pytest.mark.parametrize("name", ["huge-input.json", "huge-linear.json", "huge-conv.json",
                                  "huge-kernel.json", "huge-stride.json", "huge-number.json",
                                  "wrong-types.json", os.fsdecode(b"raw\xff.json")])
def test_summary_of_extreme_designs(place, capsys, name):
    check(capsys, ["summary", at(place, name)], {0, 1})
    check(capsys, ["summary", at(place, name), "--json"], {0, 1})


@pytest.mark.parametrize("name", BROKEN_FILES)
def test_run_with_a_broken_design_input_or_weights(place, capsys, name):
    out = place / "out"
    check(capsys, ["run", at(place, name), "--input", place / "ok.png", "--out", out], {2})
    check(capsys, ["run", place / "ok.json", "--input", at(place, name), "--out", out], {2})
    check(capsys, ["run", place / "ok.json", "--input", place / "ok.png", "--weights",
                   at(place, name), "--out", out], {2})


@pytest.mark.parametrize("name", ["huge-input.json", "huge-linear.json", "huge-conv.json",
                                  "huge-kernel.json", "huge-stride.json", "huge-number.json",
                                  "wrong-types.json"])
def test_run_of_extreme_designs(place, capsys, name):
    ran = {0} if name == "huge-stride.json" else set()  # valid: one output pixel
    code, _, err = check(capsys, ["run", at(place, name), "--input", place / "ok.png",
                                  "--out", place / "out"], {1, 2} | ran)
    if code == 2:
        assert "needs about" in err and "is free" in err, err


@pytest.mark.parametrize("args, words", [
    (["--input", "object.npy"], "object.npy"),
    (["--input", "strings.npy"], "strings.npy"),
    (["--input", "ok.json"], "can't be read as an image"),
    (["--weights", "wrong-weights.npz"], "wrong-weights.npz"),
    (["--weights", "ok.png"], "ok.png"),
    (["--seed", "abc"], "invalid int value"),
    (["--seed", "1e400"], "invalid int value"),
    (["--mean", "a,b"], "expected numbers"),
    (["--mean", "1e400"], "finite"),
    (["--std", ""], "expected numbers"),
    (["--out", "/dev/null"], "not a folder"),
    (["--out", "/proc/results"], "can't hold new files"),
    (["--out", "ok.png"], "not a folder"),
])
def test_run_with_wrong_values(place, capsys, args, words):
    given = dict(zip(args[::2], args[1::2]))
    full = ["run", place / "small.json", "--input", place / "ok.png", "--out", place / "out"]
    for key, value in given.items():
        value = value if value.startswith("/") or key in ("--seed", "--mean", "--std") \
            else place / value
        if key in full:
            full[full.index(key) + 1] = value
        else:
            full += [key, value]
    _, _, err = check(capsys, full, {2})
    assert words in err, err


@pytest.mark.parametrize("target", ["folder", "fifo", "/dev/zero", "/proc/x.json", "/sys/x.json",
                                    "missing/x.json", "lone\ud800.json", "x" * 300 + ".json"])
def test_new_into_places_that_cant_be_written(place, capsys, target):
    check(capsys, ["new", "lenet5", "-o", at(place, target), "--force"], {2})


@pytest.mark.parametrize("template", ["nope", "lenet5\ud800", "../../etc/passwd", ""])
def test_new_with_unknown_templates(place, capsys, template):
    check(capsys, ["new", template, "-o", place / "x.json"], {2})
    assert not (place / "x.json").exists()


@pytest.mark.parametrize("name", ["missing.json", "folder", "fifo", "/dev/zero", "lone\ud800.json",
                                  "nul\0.json"])
def test_open_broken_files(place, capsys, monkeypatch, name):
    import designer.app.main_window as main_window
    monkeypatch.setattr(main_window, "run_app", lambda path=None: pytest.fail("app started"))
    check(capsys, [at(place, name)], {2})


def test_a_run_on_unicode_paths_works(place, capsys):
    picture = place / "фото ☃.png"
    os.replace(place / "ok.png", picture)
    code, out, err = check(capsys, ["run", place / os.fsdecode(b"raw\xff.json"), "--input",
                                    picture, "--out", place / "résultats 結果"], {0})
    assert (place / "résultats 結果" / "conv1.png").is_file()
