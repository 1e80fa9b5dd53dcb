"""`cnn-designer train`'s end: the command that runs the trained weights, and a warning for a
run that trained but blew up or learnt nothing."""
from __future__ import annotations

import shlex
import sys

import numpy as np
import pytest

from designer import cli
from designer.cli import main
from designer.engine.training import TrainingError
from tests.test_cli_train_data import design_file, run
from tests.train.test_loop import stripes


@pytest.fixture
def stripes_file(tmp_path):
    x, y = stripes(300, 1)
    path = tmp_path / "stripes.npz"
    np.savez(path, x=x, y=y, classes=np.array(["vertical", "horizontal"]))
    return path


def test_the_end_message_gives_the_command_that_runs_the_trained_weights(tmp_path, capsys,
                                                                          stripes_file):
    out = tmp_path / "trained out"  # a space: the command quotes its paths
    assert run(design_file(tmp_path), "--data", stripes_file, "--out", out, "--epochs", 1) == 0
    printed = capsys.readouterr().out
    line = next(t for t in printed.splitlines() if t.startswith("Run it: "))
    words = shlex.split(line[len("Run it: "):])
    assert words[:2] == ["cnn-designer", "run"] and "--weights" in words
    assert words[words.index("--weights") + 1] == str(out / "weights.npz")
    image = tmp_path / "image.npy"
    np.save(image, stripes(1, 5)[0][0])
    words = [str(image) if w == "IMAGE" else str(tmp_path / "results") if w == "RESULTS_DIR"
             else w for w in words]
    assert main(words[1:]) == 0  # the command as printed runs, on the trained weights
    with np.load(tmp_path / "results" / "weights.npz") as used, \
            np.load(out / "weights.npz") as trained:
        assert all(np.array_equal(used[k], trained[k]) for k in trained.files)
    assert "not scaled to [0, 1]" not in printed


def test_standardised_data_gets_a_note_on_scaling_the_run_input(tmp_path, capsys):
    x, y = stripes(300, 1)
    path = tmp_path / "centred.npz"
    np.savez(path, x=x - 0.5, y=y)
    assert run(design_file(tmp_path), "--data", path, "--out", tmp_path / "o", "--epochs", 1) == 0
    assert "not scaled to [0, 1]" in capsys.readouterr().out


def test_a_run_that_blows_up_warns_but_exits_0(tmp_path, capsys, stripes_file):
    assert run(design_file(tmp_path), "--data", stripes_file, "--out", tmp_path / "o",
               "--epochs", 1, "--optimizer", "sgd", "--lr", 1e6) == 0
    err = capsys.readouterr().err
    assert "warning: training went wrong: the loss grew from" in err
    assert "learning rate 1e+06 is probably too high: try --lr 0.01" in err
    assert (tmp_path / "o" / "weights.npz").exists()  # it did train: the results are written


def test_a_healthy_run_has_no_warning(tmp_path, capsys, stripes_file):
    assert run(design_file(tmp_path), "--data", stripes_file, "--out", tmp_path / "o",
               "--epochs", 2, "--lr", 0.01) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_loss_that_stops_being_a_number_exits_1_naming_the_learning_rate(
        tmp_path, capsys, stripes_file, monkeypatch):
    training = sys.modules["designer.train"]
    real = training.train

    def diverging(net, data, progress, **kwargs):
        def watch(event):
            progress(event)
            if event.batch == 2:
                raise TrainingError("the loss became nan at epoch 1, batch 3: training "
                                    "diverged; use a smaller learning rate (or gradient "
                                    "clipping)")
            return True
        return real(net, data, progress=watch, **kwargs)

    monkeypatch.setattr(training, "train", diverging)
    assert run(design_file(tmp_path), "--data", stripes_file, "--out", tmp_path / "o",
               "--optimizer", "adam", "--lr", 5) == 1
    err = capsys.readouterr().err
    assert "the loss became nan" in err and "--lr 5 with --optimizer adam; try 0.001" in err
    assert "Nothing was saved" in err and not (tmp_path / "o" / "weights.npz").exists()


def row(val_loss, val_accuracy):
    return {"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": val_loss,
            "val_accuracy": val_accuracy, "seconds": 1.0}


@pytest.mark.parametrize("rows, first, classes, optimizer, lr, expected", [
    ([row(0.3, 0.9)] * 5, 2.3, 10, "adam", 1e-3, None),
    ([row(5.6e7, 0.106)], 2.30, 10, "sgd", 1e6, "the loss grew from 2.30 to 5.6e+07"),
    ([row(float("nan"), 0.1)], 2.3, 10, "sgd", 1.0, "the validation loss became nan"),
    ([row(float("inf"), 0.1)], None, 10, "sgd", 1.0, "the validation loss became inf"),
    # 2.1 × the start, but below ln 10 + … : ln K is the floor of "where it started"
    ([row(2.1, 0.5)], 0.5, 10, "adam", 1e-3, None),
    ([row(4.7, 0.5)], 0.5, 10, "adam", 1e-3, "grew from 2.30 to 4.7"),
    # a grown loss with a good accuracy: an overconfident network, not a blown-up one
    ([row(5.0, 0.9)], 2.3, 10, "adam", 1e-3, None),
    # chance level only counts after three epochs
    ([row(2.3, 0.1)] * 2, 2.3, 10, "adam", 1e-3, None),
    ([row(2.3, 0.14)] * 3, 2.3, 10, "adam", 1e-3, "learnt nothing useful: validation accuracy "
                                                   "14.0 % (a guess: 10.0 % for 10 classes)"),
    ([row(2.3, 0.16)] * 3, 2.3, 10, "adam", 1e-3, None),
    ([row(2.3, 0.1)] * 3, 2.3, 10, "adam", 0.5, "learning rate 0.5 is probably too high: try "
                                                 "--lr 0.001"),
])
def test_training_warning(rows, first, classes, optimizer, lr, expected):
    text = cli.training_warning(rows, first, classes, optimizer, lr)
    if expected is None:
        assert text is None
    else:
        assert expected in text
