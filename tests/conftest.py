"""Test configuration: Qt (when present) runs headless."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_configure(config):
    """One QApplication for the whole run, made first: code below the widgets (the training
    charts) makes a QGuiApplication when none exists, and a later window in the same process
    could not be made on that (Qt aborts), so that test folders run in any order or
    selection."""
    try:
        from PySide6.QtWidgets import QApplication
    except ImportError:  # Qt-free checks still run
        return
    config._cnn_designer_qapp = QApplication.instance() or QApplication([])
