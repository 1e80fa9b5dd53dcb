"""The app's last guard for the unforeseen. Every failure the app knows of is handled where it
happens, with its own message; this catches what is left (a bug): an exception in a Qt slot or
event handler (PySide hands those to ``sys.excepthook``), in the main thread, or in any other
thread (``threading.excepthook``). The user sees a short message naming the error and saying it
is a bug to report; the traceback goes to a file whose path the message gives; the app keeps
running, and the unsaved work is autosaved at once.

``run_app`` installs it; tests install it themselves (pytest-qt keeps its own capture otherwise).
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QStandardPaths, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

TITLE = "Unexpected error"
BUG = "This is a bug in CNN Designer; please report it"
MAX_SHOWN = 300  # characters of the error's own message shown in the box


def reports_dir() -> Path:
    """Where tracebacks are written: the app-data folder's ``error-reports``."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".cnn-designer") / "error-reports"


def write_report(text: str) -> Path | None:
    """Write one report (the traceback and what ran) to a new file; its path, or None if no
    folder would take it (the app-data folder, else the system's temporary folder)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"error-{stamp}-{os.getpid()}-{threading.get_ident() % 100000}.txt"
    for folder in (reports_dir(), Path(tempfile.gettempdir()) / "cnn-designer-error-reports"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            with open(path, "x", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write(text)
            return path
        except OSError:
            continue
    return None


def describe(exc_type: type, exc: BaseException | None) -> str:
    """``TypeName: message``, the message cut short (a message may hold a whole design)."""
    try:
        text = str(exc) if exc is not None else ""
    except Exception:  # a broken __str__ must not break the guard
        text = ""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > MAX_SHOWN:
        text = text[:MAX_SHOWN] + "…"
    return f"{exc_type.__name__}: {text}" if text else exc_type.__name__


def _report_text(exc_type, exc, tb, where: str) -> str:
    import platform

    try:
        from PySide6 import __version__ as pyside
    except ImportError:  # pragma: no cover
        pyside = "?"
    import numpy

    head = (f"CNN Designer error report\n{time.strftime('%Y-%m-%d %H:%M:%S')}\n"
            f"where: {where}\nPython {platform.python_version()} on {platform.platform()}; "
            f"PySide6 {pyside}; NumPy {numpy.__version__}\n\n")
    return head + "".join(traceback.format_exception(exc_type, exc, tb))


class Guard(QObject):
    """See the module docstring. ``window`` returns the main window (or None), for the message's
    parent and its autosave."""

    caught = Signal(str, object)  # what went wrong, the report's path: shown on the GUI thread

    def __init__(self, window: Callable[[], QWidget | None] = lambda: None) -> None:
        super().__init__()
        self.window = window
        self.seen: dict[tuple, int] = {}  # where an error was raised -> how many times
        self.shown: list[str] = []  # texts of the messages shown
        self._showing = False
        self._old: tuple[Any, Any] | None = None
        # queued even from the GUI thread: the message never opens inside the slot or paint
        # event that failed, and the failed code's stack is gone by then
        self.caught.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> "Guard":
        self._old = (sys.excepthook, threading.excepthook)
        sys.excepthook = self.excepthook
        threading.excepthook = self.thread_excepthook
        return self

    def uninstall(self) -> None:
        if self._old is not None:
            sys.excepthook, threading.excepthook = self._old
            self._old = None

    # ------------------------------------------------------------------ any thread

    def excepthook(self, exc_type, exc, tb) -> None:
        self.handle(exc_type, exc, tb, "the main thread")

    def thread_excepthook(self, args) -> None:
        name = args.thread.name if args.thread is not None else "a thread"
        self.handle(args.exc_type, args.exc_value, args.exc_traceback, f"thread {name!r}")

    def handle(self, exc_type, exc, tb, where: str) -> None:
        if exc_type is None or issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            # Ctrl+C in the terminal that started the app, or an exit asked for: not a bug
            hook = self._old[0] if self._old else sys.__excepthook__
            if exc_type is not None and where == "the main thread":
                hook(exc_type, exc, tb)
            return
        try:
            frames = traceback.extract_tb(tb) if tb is not None else []
            last = (frames[-1].filename, frames[-1].lineno) if frames else None
            signature = (exc_type.__name__, last)
            count = self.seen.get(signature, 0)
            self.seen[signature] = count + 1
            if count:  # the same failure again (a paint event fails on every frame): one report
                return
            path = write_report(_report_text(exc_type, exc, tb, where))
            summary = describe(exc_type, exc)
            if sys.stderr is not None:
                print(f"CNN Designer: unexpected error ({summary}); "
                      f"{f'details in {path}' if path else 'no report could be written'}",
                      file=sys.stderr)
            self.caught.emit(summary, path)
        except Exception:  # the guard itself failed: fall back to Python's own report
            sys.__excepthook__(exc_type, exc, tb)

    # ------------------------------------------------------------------ GUI thread

    def message(self, summary: str, path: Path | None, work: str) -> str:
        where = (f"The details are in {path}: attach that file to the report."
                 if path is not None else "Its details could not be written to a file.")
        return (f"CNN Designer ran into an error it didn't expect:\n\n{summary}\n\n{BUG}. "
                f"{where}\n\nYou can keep working. {work}")

    def _secure_work(self, window) -> str:
        """Autosave the work at once (before anything else can go wrong); what to tell the user
        about it."""
        document = getattr(window, "document", None)
        saver = getattr(window, "autosaver", None)
        if document is None or not document.modified:
            return "You have no unsaved changes."
        try:
            saver.save_now()
            safe = saver.up_to_date
        except Exception:
            safe = False
        if safe:
            return "Your unsaved work is autosaved; saving it under a new name now is safest."
        return "Your unsaved work could not be autosaved: save it now (File ▸ Save as…)."

    def _show(self, summary: str, path: Path | None) -> None:
        window = self.window()
        text = self.message(summary, path, self._secure_work(window))
        self.shown.append(text)
        if self._showing:  # one message at a time: a second one waits for no one
            return
        self._showing = True
        try:
            box = QMessageBox(QMessageBox.Icon.Critical, TITLE, text, QMessageBox.StandardButton.Ok,
                              window)
            box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            box.exec()
        finally:
            self._showing = False


def install_guard(window: Callable[[], QWidget | None] = lambda: None) -> Guard:
    """Install the last guard (see the module docstring); ``uninstall`` undoes it."""
    return Guard(window).install()
