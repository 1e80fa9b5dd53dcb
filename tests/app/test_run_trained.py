"""The Run panel uses the trained weights that ship (contract §6) for a design with their layers,
says which weights are in use, falls back to seeded weights when an edit changes the layers
(and back again on undo), and still takes a weights file or weights handed to it."""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QApplication

import designer
from designer.app.run import controller as run_module
from designer.app.run.controller import CLASSIC, FILE, RANDOM, TRAINED, InputImage
from designer.io.design_file import load_design
from designer.io.templates import find_template
from designer.io.trained import list_trained
from tests.app.test_run import WAIT_MS, load_sample, run_and_wait

def _note(template: str) -> str:
    """The Run panel's line for a template's shipped weights, from the index's figure."""
    model = next(m for m in list_trained() if m.template == template)
    return f"Weights: trained on {model.data} — {100 * model.val_accuracy:.1f} % validation accuracy"


TRAINED_SHAPES = _note("cifar10-convnet")
TRAINED_DIGITS = _note("lenet5")
RANDOM_NOTE = "Weights: random (seed 0) — untrained"


def shipped(template: str) -> dict[str, np.ndarray]:
    model = next(m for m in list_trained() if m.template == template)
    with np.load(model.weights, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def assert_weights(result, expected: dict[str, np.ndarray]) -> None:
    assert set(result.network.weights) == set(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(result.network.weights[key], value)


def note(window) -> str:
    """The weights note as the user reads it (the label's text without its markup)."""
    from PySide6.QtGui import QTextDocument
    doc = QTextDocument()
    doc.setHtml(window.run_panel.weights_note.text())
    return doc.toPlainText()


def open_design(window, design) -> None:
    window.document.replace(design, None)
    QApplication.processEvents()


def settle(qtbot, window) -> None:
    """Wait for the edit check (250 ms after an edit) and any run it starts."""
    qtbot.wait(400)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=WAIT_MS)


def test_the_bundled_example_runs_on_its_trained_weights_and_says_so(qtbot, window,
                                                                    monkeypatch):
    read = []
    real = run_module.load_weights_file
    monkeypatch.setattr(run_module, "load_weights_file", lambda p: read.append(p) or real(p))
    open_design(window, load_design(find_template("cifar10-convnet").path))
    runner, panel = window.runner, window.run_panel
    assert runner.weights_mode == TRAINED
    assert note(window) == TRAINED_SHAPES
    assert panel.weights.currentText() == "Trained on shapes"
    assert panel.weights_note.isVisible()
    runner.auto_run = False
    load_sample(window, "Shapes")
    result = run_and_wait(qtbot, window)
    assert result.trained is not None and result.trained.template == "cifar10-convnet"
    assert result.weights_note == TRAINED_SHAPES
    assert result.notes == []
    assert_weights(result, shipped("cifar10-convnet"))
    run_and_wait(qtbot, window)
    assert len(read) == 1  # the trained file is read once, not for every run


def test_lenet5_reads_a_drawn_digit_as_that_digit(qtbot, window):
    """The trained weights mean something: a digit of the built-in data, given as an image,
    is predicted as that digit (seeded weights would be right one time in ten)."""
    from designer.data import builtin
    open_design(window, find_template("lenet5").load())
    window.runner.auto_run = False
    drawn = builtin.draw("digits", 0, train_size=0, val_size=10)
    right = 0
    for i in range(4):
        grey = drawn.x_val[i, 0]  # uint8, as an image file holds it
        assert grey.dtype == np.uint8
        window.runner.set_image(InputImage(np.repeat(grey[..., None], 3, axis=2), f"d{i}.png"))
        result = run_and_wait(qtbot, window)
        right += int(np.argmax(result.activations["fc2"]) == drawn.y_val[i])
    assert right >= 3


def test_an_edit_of_the_layers_falls_back_to_seeded_weights_and_undo_brings_them_back(
        qtbot, window):
    open_design(window, find_template("lenet5").load())
    runner = window.runner
    load_sample(window, "Digits")
    settle(qtbot, window)  # the image runs by itself (a small design)
    assert runner.result is not None and runner.result.trained.template == "lenet5"
    assert note(window) == TRAINED_DIGITS

    window.document.set_param("conv1", "out_channels", 8)
    settle(qtbot, window)
    assert note(window) == (f"{RANDOM_NOTE}: the layers were changed, so the weights trained "
                            f"for LeNet-5 don't fit (undo the change to use them again)")
    assert window.run_panel.weights.currentText() == "Trained (none here)"
    result = runner.result
    assert result.trained is None and result.design.node("conv1").params["out_channels"] == 8
    assert result.weights_note == note(window)
    assert_weights(result, designer.build(result.design, seed=0).weights)

    window.document.undo_stack.undo()
    settle(qtbot, window)
    assert note(window) == TRAINED_DIGITS
    assert runner.result.trained.template == "lenet5"
    assert_weights(runner.result, shipped("lenet5"))


def test_an_edit_that_leaves_the_network_the_same_keeps_the_trained_weights(qtbot, window):
    """A card moved, a default spelt out: the same network, the same weights."""
    open_design(window, find_template("lenet5").load())
    window.runner.auto_run = False
    window.document.move_nodes({"conv1": (window.document.design.node("conv1").position,
                                          (300.0, 130.0))})
    window.document.set_param("conv1", "stride", 1)
    window.document.set_param("conv1", "kernel_size", [5, 5])
    settle(qtbot, window)
    assert note(window) == TRAINED_DIGITS
    load_sample(window, "Digits")
    assert run_and_wait(qtbot, window).trained.template == "lenet5"


def test_a_design_without_trained_weights_says_it_runs_untrained(qtbot, window):
    open_design(window, find_template("lecture-receptive-field").load())
    assert window.runner.weights_mode == TRAINED
    assert note(window) == f"{RANDOM_NOTE}: no trained weights ship for this design"
    assert window.run_panel.weights.currentText() == "Trained (none here)"
    window.runner.auto_run = False
    load_sample(window, "Checkerboard")
    result = run_and_wait(qtbot, window)
    assert result.trained is None and result.weights_note == note(window)
    assert_weights(result, designer.build(result.design, seed=0).weights)


def test_choosing_untrained_weights_for_a_trained_design_says_trained_ones_ship(qtbot, window):
    open_design(window, find_template("lenet5").load())
    window.runner.auto_run = False
    panel = window.run_panel
    load_sample(window, "Digits")
    for mode, start in ((RANDOM, RANDOM_NOTE),
                        (CLASSIC, "Weights: classic filters in the first convolution, random "
                                  "(seed 0) elsewhere — untrained")):
        panel._weights_chosen(panel.weights.findData(mode))
        assert window.runner.weights_mode == mode
        assert note(window) == (f"{start} (weights trained on builtin:digits ship for this "
                                f"design: choose Trained)")
        result = run_and_wait(qtbot, window)
        assert result.trained is None
        if mode == RANDOM:
            assert_weights(result, designer.build(result.design, seed=0).weights)
    panel._weights_chosen(panel.weights.findData(TRAINED))
    assert note(window) == TRAINED_DIGITS
    assert_weights(run_and_wait(qtbot, window), shipped("lenet5"))


def test_a_weights_file_or_weights_handed_over_are_used_and_named(qtbot, window, tmp_path):
    """A weights file (Load…), then weights handed over with use_weights (what a training run
    in the window does), then the trained ones again."""
    open_design(window, find_template("lenet5").load())
    window.runner.auto_run = False
    own = designer.build(window.document.design, seed=5)
    own.save_weights(tmp_path / "mine.npz")
    window.runner.load_weights(tmp_path / "mine.npz")
    assert window.runner.weights_mode == FILE
    assert note(window) == "Weights: from mine.npz"
    assert window.run_panel.weights.currentText() == "From mine.npz"
    load_sample(window, "Digits")
    assert_weights(run_and_wait(qtbot, window), own.weights)

    given = {k: v.copy() for k, v in designer.build(window.document.design, seed=9).weights.items()}
    expected = {k: v.copy() for k, v in given.items()}
    window.runner.use_weights(given, "trained-digits-3ep")
    given["conv1.weight"][:] = 0  # the caller's arrays are not the runner's
    assert window.runner.weights_mode == FILE
    assert note(window) == "Weights: from trained-digits-3ep"
    assert window.run_panel.weights.currentText() == "From trained-digits-3ep"
    assert_weights(run_and_wait(qtbot, window), expected)

    window.run_panel._weights_chosen(window.run_panel.weights.findData(TRAINED))
    assert note(window) == TRAINED_DIGITS
    assert_weights(run_and_wait(qtbot, window), shipped("lenet5"))


def test_trained_weights_that_cant_be_read_fall_back_with_a_note(qtbot, window, tmp_path,
                                                                 monkeypatch):
    real = next(m for m in list_trained() if m.template == "lenet5")
    gone = type(real)(real.template, tmp_path / "gone.npz", real.classes, real.data,
                      real.val_accuracy, real.fingerprint, real.entry)
    monkeypatch.setattr(run_module, "find_trained", lambda design: gone)
    open_design(window, find_template("lenet5").load())
    window.runner.auto_run = False
    load_sample(window, "Digits")
    result = run_and_wait(qtbot, window)
    assert result.trained is None and result.weights_note == RANDOM_NOTE
    assert len(result.notes) == 1 and "trained weights can't be read" in result.notes[0]
    assert "gone.npz" in result.notes[0]
    assert "seeded random instead" in window.run_panel.status.text()
    assert_weights(result, designer.build(result.design, seed=0).weights)
