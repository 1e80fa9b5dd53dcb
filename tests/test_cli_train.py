"""`cnn-designer train`: weights, metrics.csv, curves.png, confusion.png and design.json written;
exit 0 trained, 1 design invalid or unfit for the data, 2 bad file or data; Ctrl+C saves."""
from __future__ import annotations

import json
import signal
import sys

import numpy as np
import pytest
from PySide6.QtGui import QImage

import designer
from designer import cli
from designer.cli import main
from designer.train.charts import CURVES_SIZE, confusion_size
from tests.train.test_loop import stripes, tiny_design

HEADER = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds"


def design_dict(classes=2, channels=1):
    design = tiny_design(classes, (channels, 8, 8))
    return json.loads(designer.io.design_file.design_to_json(design))


@pytest.fixture
def design_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(design_dict()))
    return path


@pytest.fixture
def data_file(tmp_path):
    x, y = stripes(300, 1)
    path = tmp_path / "stripes.npz"
    np.savez(path, x=x, y=y, classes=np.array(["vertical", "horizontal"]))
    return path


def run(*args):
    return main(["train", *map(str, args)])


def test_train_writes_every_result(tmp_path, design_file, data_file, capsys):
    out = tmp_path / "out"
    assert run(design_file, "--data", data_file, "--out", out, "--epochs", 3,
               "--batch-size", 32, "--lr", 0.01) == 0
    printed = capsys.readouterr().out
    assert printed.count("epoch ") == 3 and "val accuracy" in printed  # a line per epoch
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0] == HEADER and [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]
    assert float(lines[-1].split(",")[4]) >= 0.9  # val_accuracy
    saved = json.loads((out / "design.json").read_text())
    assert saved["classes"] == ["vertical", "horizontal"] and saved["version"] == 2
    # the weights written are the trained ones: they reproduce the reported validation accuracy
    net = designer.build(designer.load_design(out / "design.json"), weights=out / "weights.npz")
    data = designer.load_dataset(data_file, net.design)
    accuracy = np.mean(net.predict(data.val[0]).argmax(1) == data.val[1])
    assert accuracy == pytest.approx(float(lines[-1].split(",")[4]), abs=1e-6)
    curves, confusion = QImage(str(out / "curves.png")), QImage(str(out / "confusion.png"))
    assert (curves.width(), curves.height()) == CURVES_SIZE
    assert (confusion.width(), confusion.height()) == confusion_size(2)[:2]
    assert not list(out.glob(".*.tmp"))  # every file written atomically, nothing left over


def test_sgd_with_momentum_and_weight_decay_trains(tmp_path, design_file, data_file):
    out = tmp_path / "out"
    assert run(design_file, "--data", data_file, "--out", out, "--epochs", 1, "--optimizer",
               "sgd", "--lr", 0.05, "--momentum", 0.8, "--weight-decay", 1e-4, "--seed", 2) == 0
    assert len((out / "metrics.csv").read_text().splitlines()) == 2


def test_ctrl_c_stops_after_the_batch_and_saves(tmp_path, design_file, data_file, monkeypatch,
                                                capsys):
    training = sys.modules["designer.train"]  # the package (designer.train is the function)
    real = training.train

    def interrupted(*args, progress, **kwargs):
        def progress_then_ctrl_c(event):
            if event.kind == "batch" and event.batch == 2:
                signal.raise_signal(signal.SIGINT)  # what Ctrl+C delivers
            return progress(event)
        return real(*args, progress=progress_then_ctrl_c, **kwargs)

    monkeypatch.setattr(training, "train", interrupted)
    out = tmp_path / "out"
    assert run(design_file, "--data", data_file, "--out", out, "--epochs", 5,
               "--batch-size", 32) == 0
    assert "Stopped (Ctrl+C) during epoch 1" in capsys.readouterr().out
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0] == HEADER and len(lines) == 2
    start = designer.build(designer.load_design(design_file)).weights["fc.weight"]
    with np.load(out / "weights.npz") as saved:
        assert not np.array_equal(saved["fc.weight"], start)  # two steps were learnt and kept
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler given back


def test_output_size_not_the_number_of_classes_exits_1(tmp_path, data_file, capsys):
    path = tmp_path / "three.json"
    path.write_text(json.dumps(design_dict(classes=3)))
    assert run(path, "--data", data_file, "--out", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "has 3 values" in err and "2 classes" in err and "out_features to 2" in err
    assert not (tmp_path / "out" / "weights.npz").exists()


def test_invalid_design_exits_1(tmp_path, data_file, capsys):
    bad = design_dict()
    bad["nodes"][1]["params"]["kernel_size"] = 20  # larger than the 8×8 input
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert run(path, "--data", data_file, "--out", tmp_path / "out") == 1
    assert "conv" in capsys.readouterr().err


def test_input_channels_images_cannot_have_exit_1(tmp_path, capsys):
    path = tmp_path / "four.json"
    path.write_text(json.dumps(design_dict(channels=4)))
    assert run(path, "--data", "builtin:digits", "--out", tmp_path / "out") == 1
    assert "4 channels" in capsys.readouterr().err


@pytest.mark.parametrize("arrays, message", [
    ({"x": stripes(20, 0)[0], "y": np.zeros(20, np.int64)}, "same label"),
    ({"x": stripes(20, 0)[0][:, 0], "y": stripes(20, 0)[1]}, "(N, C, H, W)"),
    ({"x": stripes(20, 0)[0], "y": stripes(20, 0)[1][:10]}, "one label per image"),
    ({"x": stripes(20, 0)[0], "y": stripes(20, 0)[1] + 5,
      "classes": np.array(["a", "b"])}, "out of range"),
])
def test_bad_data_exits_2(tmp_path, design_file, capsys, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert run(design_file, "--data", path, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_pickled_data_exits_2(tmp_path, design_file, capsys):
    path = tmp_path / "pickled.npz"
    np.savez(path, x=np.array([object()], dtype=object), y=np.zeros(1, np.int64))
    assert run(design_file, "--data", path, "--out", tmp_path / "out") == 2
    assert "cnn-designer:" in capsys.readouterr().err


def test_missing_paths_exit_2(tmp_path, design_file, data_file, capsys):
    assert run(design_file, "--data", tmp_path / "nowhere.npz", "--out", tmp_path / "o") == 2
    assert "nowhere.npz doesn't exist" in capsys.readouterr().err
    assert run(tmp_path / "none.json", "--data", data_file, "--out", tmp_path / "o") == 2
    assert "none.json" in capsys.readouterr().err
    assert run(design_file, "--data", data_file, "--out", tmp_path / "o",
               "--weights", tmp_path / "none.npz") == 2
    assert "none.npz" in capsys.readouterr().err


def test_mis_shaped_weights_exit_2(tmp_path, design_file, data_file, capsys):
    weights = {k: v for k, v in designer.build(designer.load_design(design_file)).weights.items()}
    weights["fc.weight"] = np.zeros((2, 3), np.float32)
    path = tmp_path / "w.npz"
    np.savez(path, **weights)
    assert run(design_file, "--data", data_file, "--out", tmp_path / "o", "--weights", path) == 2
    assert "fc.weight" in capsys.readouterr().err


def test_bad_options_exit_2(tmp_path, design_file, data_file, capsys):
    for extra in (["--epochs", "0"], ["--lr", "-1"], ["--optimizer", "rmsprop"],
                  ["--momentum", "0.5", "--optimizer", "adam"]):
        assert run(design_file, "--data", data_file, "--out", tmp_path / "o", *extra) == 2
        assert capsys.readouterr().err


def test_train_is_a_known_command():
    assert "train" in cli.COMMANDS and cli.unknown_command(["trian", "x"]).endswith("train?")


def test_a_terminal_gets_an_updating_line_a_pipe_only_a_line_per_epoch(tmp_path, design_file,
                                                                       data_file, capsys,
                                                                       monkeypatch):
    assert run(design_file, "--data", data_file, "--out", tmp_path / "a", "--epochs", 2) == 0
    piped = capsys.readouterr().out
    assert "\r" not in piped and "\033" not in piped
    assert [line.split()[:2] for line in piped.splitlines()[:2]] == [["epoch", "1/2"],
                                                                       ["epoch", "2/2"]]
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert run(design_file, "--data", data_file, "--out", tmp_path / "b", "--epochs", 2) == 0
    shown = capsys.readouterr().out
    assert shown.count("\r\033[K") >= 4  # redrawn during each epoch, cleared for its line
    assert "batch    5/5" in shown and "left" in shown
