"""The one-folder bundle's entry point (packaging/cnn-designer.spec): the ``cnn-designer``
command line and app, as the console script runs them.

For smoke tests of the bundle: with ``CNN_DESIGNER_QUIT_AFTER_MS=N`` the app quits N
milliseconds after it starts, first printing ``WINDOW <nodes> <title>`` for each main window
(the design it shows is left unsaved, so nothing asks about it)."""
from __future__ import annotations

import os
import sys


def _quit_after(milliseconds: int) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])

    def done() -> None:
        for widget in app.topLevelWidgets():
            if type(widget).__name__ == "MainWindow" and widget.isVisible():
                print("WINDOW", len(widget.document.design.nodes), widget.windowTitle(), flush=True)
                widget.document.undo_stack.setClean()
        app.quit()

    QTimer.singleShot(milliseconds, done)


def main() -> None:
    wanted = os.environ.get("CNN_DESIGNER_QUIT_AFTER_MS", "")
    if wanted.isdigit() and not (len(sys.argv) > 1 and sys.argv[1] in _commands()):
        _quit_after(int(wanted))
    from designer.cli import console_main
    console_main()


def _commands() -> tuple[str, ...]:
    from designer.cli import COMMANDS
    return COMMANDS


if __name__ == "__main__":
    main()
