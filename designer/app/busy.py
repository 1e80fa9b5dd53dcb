"""Work that takes seconds (reading or writing a large ONNX model) done on a worker thread while
the window stays drawn: a short job holds back the user's input and shows nothing; one that
takes longer shows a modal "working" dialog until it ends."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication, QProgressDialog, QWidget

#: a job shorter than this shows no dialog (the user's input waits until it ends)
QUIET_S = 0.4


class _Working(QProgressDialog):
    """A busy dialog that Escape or the window's close button can't take away while the work
    goes on (the input it holds back would reach the window)."""

    def reject(self) -> None:
        pass

    def closeEvent(self, event) -> None:
        event.ignore()


def run_busy(parent: QWidget, text: str, work: Callable[[], Any]) -> Any:
    """``work()`` on a worker thread; returns its result or raises its exception here. The
    event loop keeps running (the window repaints); no input reaches the window meanwhile, so
    nothing changes under the work."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def body() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller, on the GUI thread
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=body, name="cnn-designer-busy", daemon=True)
    thread.start()
    app = QApplication.instance()
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        started = time.monotonic()
        while not done.wait(0.02) and time.monotonic() - started < QUIET_S:
            app.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        if not done.is_set():
            dialog = _Working(text, "", 0, 0, parent)
            dialog.setCancelButton(None)  # the work can't be stopped half-way: it is short
            dialog.setWindowTitle("CNN Designer")
            dialog.setWindowModality(Qt.WindowModality.WindowModal)
            dialog.setMinimumDuration(0)
            dialog.show()
            loop = QEventLoop()
            timer = QTimer(interval=30)
            timer.timeout.connect(lambda: done.is_set() and loop.quit())
            timer.start()
            if not done.is_set():
                loop.exec()
            timer.stop()
            dialog.hide()
            dialog.deleteLater()
    finally:
        QApplication.restoreOverrideCursor()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
