"""The Train panel as a new user meets it: the wheel over its fields, Start and Pause while it
runs, Stop in the middle of an epoch, the tabs when it ends, an unfit design, where Save weights…
starts, grey data from colour images, Adam's betas, and room at a laptop's size."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from designer.app.train.controller import PAUSED, RUNNING
from tests.app.train.test_train_panel import (settle, slow_steps, stripes_file,  # noqa: F401
                                              tiny_design, trainable)


def wheel(widget, steps: int = -3) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_the_wheel_scrolls_the_settings_and_leaves_unfocused_fields_alone(window, qtbot):
    panel = window.train_panel
    window.show_train_panel()
    window.resizeDocks([window.train_dock], [260], Qt.Orientation.Vertical)  # short: it scrolls
    qtbot.wait(50)
    bar = panel.settings_scroll.verticalScrollBar()
    assert bar.maximum() > 0
    window.view.setFocus()
    lr, epochs, optimizer = panel.lr.value(), panel.epochs.value(), panel.optimizer.currentIndex()
    for widget in (panel.lr, panel.epochs, panel.optimizer, panel.weight_decay, panel.seed):
        assert not widget.hasFocus()
        assert widget.focusPolicy() == Qt.FocusPolicy.StrongFocus
        bar.setValue(0)
        wheel(widget)
        assert bar.value() > 0  # the settings scrolled instead
    assert (panel.lr.value(), panel.epochs.value(), panel.optimizer.currentIndex()) == (
        lr, epochs, optimizer)
    panel.epochs.setFocus()  # a field the user is in takes the wheel
    qtbot.waitUntil(panel.epochs.hasFocus, timeout=2000)
    wheel(panel.epochs, steps=1)
    assert panel.epochs.value() == epochs + 1


def test_stop_mid_epoch_shows_the_numbers_of_the_weights_kept(trainable, qtbot, slow_steps):
    import designer
    window = trainable
    panel, trainer = window.train_panel, window.trainer
    panel.epochs.setValue(50)
    panel.batch_size.setValue(16)  # 19 batches an epoch
    panel.lr.setValue(0.0003)  # slow to learn: mistakes to show
    epochs = []
    trainer.epoch_done.connect(epochs.append)
    with qtbot.waitSignal(trainer.epoch_done, timeout=60000):
        panel.start()
    with qtbot.waitSignal(trainer.steps, timeout=30000):
        pass
    with qtbot.waitSignal(trainer.finished, timeout=30000) as done:
        trainer.stop()
    result = done.args[0]
    settle(qtbot, window)
    rows = result.history.rows
    assert result.stopped and result.history.partial and len(rows) == 2
    last = epochs[-1]
    assert last.partial and last.epoch == 2 and 0 < last.batch < 19 and last.batches == 19
    assert last.row == rows[-1]
    # the confusion matrix, the curves and the status all speak of the stopped epoch
    np.testing.assert_array_equal(panel.confusion.confusion, result.history.confusion)
    assert f"epoch 2 (stopped after {last.batch} of 19 batches)" in panel.confusion.title
    qtbot.waitUntil(lambda: panel.curves.point_count()["val_loss"] == 2, timeout=5000)
    text = panel.status.text()
    assert text.startswith(f"Stopped in epoch 2 ({last.batch} of 19 batches)")
    assert f"validation accuracy {100 * rows[-1]['val_accuracy']:.1f} %" in text
    # the wrong images are the kept weights' mistakes, with their probabilities
    net = designer.build(result.design, weights=result.weights)
    x_val, y_val = trainer.data.val
    assert last.wrong
    for wrong in last.wrong:
        p = net.predict(x_val[wrong.index:wrong.index + 1])[0]
        assert p.argmax() == wrong.predicted != wrong.true
        assert p[wrong.predicted] == pytest.approx(wrong.confidence, rel=1e-4)


def in_front(widget) -> bool:
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def test_the_train_tab_stays_in_front_when_training_ends(trainable, qtbot):
    from designer.app.run.controller import InputImage
    window = trainable
    runner = window.runner
    with qtbot.waitSignal(runner.finished, timeout=20000):
        runner.set_image(InputImage(np.full((8, 8, 3), 128, np.uint8), "grey"))
        if not runner.busy:
            runner.run()
    assert in_front(window.activations)  # a run the user asked for shows its maps
    window.show_train_panel()
    qtbot.waitUntil(lambda: in_front(window.train_panel), timeout=2000)
    window.train_panel.epochs.setValue(1)
    with qtbot.waitSignal(runner.finished, timeout=60000):  # the run on the trained weights
        with qtbot.waitSignal(window.trainer.finished, timeout=60000):
            window.train_panel.start()
    qtbot.wait(100)
    assert in_front(window.train_panel) and not in_front(window.activations)
    # the next run the user asks for shows its maps again
    with qtbot.waitSignal(runner.finished, timeout=20000):
        runner.run()
    qtbot.waitUntil(lambda: in_front(window.activations), timeout=2000)


def test_an_unfit_design_disables_start_and_says_why_once(window, qtbot, stripes_file):
    window.document.replace(tiny_design(classes=3), None)
    panel = window.train_panel
    with qtbot.waitSignal(window.trainer.data_loaded, timeout=20000):
        panel.choose_source(stripes_file)
    reason = panel.problem.text()
    assert "set fc's out_features to 2" in reason and panel.problem.isVisibleTo(panel)
    assert not panel.start_button.isEnabled() and not window.start_training_action.isEnabled()
    assert panel.start_button.toolTip() == reason
    assert reason not in panel.status.text()
    window.start_training_action.trigger()  # F6: disabled, nothing happens
    assert not window.trainer.training
    shown = [panel.status.text(), window.statusBar().currentMessage(), panel.problem.text()]
    assert sum("out_features to 2" in text for text in shown) == 1
    window.document.set_param("fc", "out_features", 2)  # fixed: Start comes back
    assert panel.start_button.isEnabled() and window.start_training_action.isEnabled()
    assert "F6" in panel.start_button.toolTip() and not panel.problem.isVisibleTo(panel)


def test_save_weights_starts_in_the_documents_folder_then_the_last_one(
        trainable, qtbot, tmp_path, monkeypatch, settings_home):
    from PySide6.QtCore import QStandardPaths
    from designer.app.train import panel as panel_module
    window = trainable
    panel = window.train_panel
    panel.epochs.setValue(1)
    with qtbot.waitSignal(window.trainer.finished, timeout=60000):
        panel.start()
    settle(qtbot, window)
    asked = []
    monkeypatch.setattr(panel_module.QFileDialog, "getSaveFileName",
                        lambda parent, title, start, filters: asked.append(start) or ("", ""))
    panel.save_weights_dialog()
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    assert Path(asked[-1]).parent == Path(documents)
    assert Path(asked[-1]).name == "trained-stripes-1ep.npz"
    target = tmp_path / "mine" / "w.npz"
    target.parent.mkdir()
    assert panel.save_to(target)
    panel.save_weights_dialog()
    assert Path(asked[-1]).parent == target.parent.resolve()


def test_adam_betas_are_in_the_panel_and_reach_the_optimizer(window):
    panel = window.train_panel
    window.show_train_panel()
    assert panel.optimizer.currentText() == "Adam"
    assert (panel.beta1.value(), panel.beta2.value()) == (0.9, 0.999)
    assert panel.betas_row.isVisibleTo(panel) and not panel.momentum_row.isVisibleTo(panel)
    panel.beta1.setValue(0.8)
    panel.beta2.setValue(0.99)
    for name in ("Adam", "AdamW"):
        panel.optimizer.setCurrentText(name)
        settings = panel.read_settings()
        assert settings.betas == (0.8, 0.99)
        assert tuple(settings.make_optimizer().betas) == (0.8, 0.99)
    panel.optimizer.setCurrentText("SGD")
    assert not panel.betas_row.isVisibleTo(panel) and panel.momentum_row.isVisibleTo(panel)
    assert panel.opt_form.labelForField(panel.betas_row).isHidden()


def test_colour_data_for_a_grey_input_says_it_was_converted(window, qtbot, tmp_path):
    from designer.app.train.controller import source_channels
    panel = window.train_panel
    window.document.replace(tiny_design(), None)  # a grey 1×8×8 Input
    with qtbot.waitSignal(window.trainer.data_loaded, timeout=30000):
        panel.choose_source("builtin:shapes")  # drawn in colour
    assert "shown as the Input takes them: colour converted to grey" in panel.data_note.text()
    assert "colour converted to grey" in panel.preview.toolTip()
    with qtbot.waitSignal(window.trainer.data_loaded, timeout=30000):
        panel.choose_source("builtin:digits")  # grey as drawn: nothing to say
    assert "converted" not in panel.data_note.text()
    assert "converted" not in panel.preview.toolTip()
    # an .npz file's channels come from its header
    path = tmp_path / "colour.npz"
    np.savez(path, x=np.zeros((4, 3, 8, 8), np.float32), y=np.zeros(4, np.int64))
    assert source_channels(str(path)) == 3 and source_channels(str(tmp_path)) is None


def test_weights_trained_here_show_their_validation_accuracy_in_the_run_panel(
        trainable, qtbot, stripes_file):
    from PySide6.QtWidgets import QLabel
    window = trainable
    window.train_panel.epochs.setValue(2)
    with qtbot.waitSignal(window.trainer.finished, timeout=60000) as done:
        window.train_panel.start()
    settle(qtbot, window)
    accuracy = 100 * done.args[0].history.rows[-1]["val_accuracy"]
    note = (f"Weights: trained in the app on {stripes_file} — 2 epochs, {accuracy:.1f} % "
            f"validation accuracy")
    assert window.runner.weights_note() == note
    assert window.runner.weights_label == "trained-stripes-2ep"  # the weights list's name
    labels = [label.text() for label in window.run_panel.findChildren(QLabel)]
    assert any("trained in the app on" in text and f"{accuracy:.1f} %" in text
               for text in labels)
    window.runner.load_weights(_saved(window, stripes_file))  # a file: named by the file
    assert window.runner.weights_note().startswith("Weights: from ")


def _saved(window, stripes_file) -> str:
    path = str(Path(stripes_file).with_name("w.npz"))
    assert window.train_panel.save_to(path)
    return path


def test_the_curves_keep_room_for_their_axes_in_a_laptop_window(trainable, qtbot):
    from designer.app.train.charts import AXIS_WIDTH, CURVES_MIN_HEIGHT
    window = trainable
    window.resize(1366, 768)
    window.train_panel.epochs.setValue(1)
    with qtbot.waitSignal(window.trainer.finished, timeout=60000):
        window.train_panel.start()
    settle(qtbot, window)
    window.resizeDocks([window.train_dock], [120], Qt.Orientation.Vertical)  # squeezed
    qtbot.wait(50)
    curves = window.train_panel.curves
    assert curves.height() >= CURVES_MIN_HEIGHT
    for plot in (curves.loss_plot, curves.accuracy_plot):
        assert plot.getAxis("left").width() == AXIS_WIDTH
        assert plot.getViewBox().height() >= 60  # room for the curves, not just a title
