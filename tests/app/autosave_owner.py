"""Another running instance, for the autosave tests: autosaves unsaved work into the folder given
as the first argument (holding its lock), prints the copy's path, then waits to be killed."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication

from designer.app import autosave
from designer.app.document import Document
from designer.io.templates import find_template


def main() -> None:
    folder = Path(sys.argv[1])
    autosave.autosave_dir = lambda: folder
    app = QCoreApplication([])  # noqa: F841 (timers and locks want an application)
    document = Document(find_template("lenet5").load())
    document.set_param("conv1", "out_channels", 9)
    saver = autosave.Autosaver(document, interval_ms=10_000_000)
    if not saver.save_now():
        sys.exit("autosave failed")
    print(saver.design_path, flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main()
