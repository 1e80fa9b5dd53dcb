"""`cnn-designer train`'s end: the command that runs the trained weights."""
from __future__ import annotations

import shlex

import numpy as np
import pytest

from designer.cli import main
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
