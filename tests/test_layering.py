"""Layering that import-linter can't express: files, data and training may use QtGui (QImage)
but never widgets, and the model and engine import without Qt installed or loaded."""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "designer"


def imported_modules(folder):
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield path, node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name


def test_files_training_and_data_use_no_widgets():
    bad = [(p.name, m) for layer in ("io", "data", "train")
           for p, m in imported_modules(PACKAGE / layer) if "QtWidgets" in m]
    assert bad == []


def test_core_and_engine_run_without_loading_qt():
    code = ("import sys, numpy as np; import designer.core.analysis, designer.engine.network;"
            "from designer.engine.network import build; from tests.helpers import chain;"
            "build(chain((1, 4, 4), ('r', 'ReLU', {}))).forward(np.zeros((1, 1, 4, 4)));"
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE.parent, check=True).stdout
    assert out.strip() == "[]"
