"""Helpers of the slow packaging tests: run an installed CNN Designer far from the repository,
with a home, settings and data folders of its own."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: opens the app on argv[1], and after argv[2] milliseconds prints each main window's title and
#: node count and quits (the window stays as the user would see it: nothing is clicked)
OPEN_AND_QUIT = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
def done():
    for w in app.topLevelWidgets():
        if type(w).__name__ == "MainWindow" and w.isVisible():
            print("WINDOW", len(w.document.design.nodes), w.windowTitle(), flush=True)
            w.document.undo_stack.setClean()
    app.quit()
QTimer.singleShot(int(sys.argv[2]), done)
from designer.app.main_window import run_app
sys.exit(run_app(sys.argv[1]))
"""


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user who has nothing of the repository: no PYTHONPATH, a home of
    their own, Qt offscreen."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "XDG_", "PYTEST", "QT_"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local" / "share"),
               XDG_CACHE_HOME=str(home / ".cache"), QT_QPA_PLATFORM="offscreen",
               PYTHONIOENCODING="utf-8", PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    env.update(extra)
    return env


def run(cmd: list, cwd: Path, env: dict[str, str], timeout: float = 600,
        status: int | None = 0) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd``; check its exit status (unless None) and that no traceback got out."""
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    said = f"$ {' '.join(map(str, cmd))}\n{done.stdout}\n{done.stderr}"
    if status is not None:
        assert done.returncode == status, said
    assert "Traceback" not in done.stdout + done.stderr, said
    return done


def constraints(path: Path) -> Path:
    """The versions of this environment's packages, so a fresh environment gets the same ones
    (from pip's cache or the package index) and the test does not depend on a new release."""
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout
    lines = [line for line in frozen.splitlines()
             if "==" in line and not line.lower().startswith("cnn-designer")]
    path.write_text("\n".join(lines) + "\n")
    return path
