"""``import designer`` and the commands that only read designs (``summary``, ``templates``) load
neither the engine nor NumPy (the engine, data, training and ONNX names of the API are imported
on first use), and every public name of contract §5 is still there, the same object as in its
own module."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LENET = ROOT / "resources" / "templates" / "lenet5.json"
HEAVY = ("numpy", "designer.engine", "designer.data", "designer.train", "designer.app",
         "PySide6")


def loaded_after(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = (f"import json, sys\n{code}\n"
              "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    line = [x for x in out.stderr.splitlines() if x.startswith("MODULES ")][-1]
    return json.loads(line[len("MODULES "):])


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]


def test_import_designer_loads_no_engine_nor_numpy():
    modules = loaded_after("import designer")
    assert "designer" in modules and "designer.core.analysis" in modules
    assert heavy(modules) == []


@pytest.mark.parametrize("argv", [["summary", str(LENET)], ["summary", "--json", str(LENET)],
                                  ["templates"]])
def test_commands_that_read_designs_load_no_engine_nor_numpy(argv):
    code = ("from designer.cli import main\n"
            f"status = main({argv!r})\n"
            "assert status == 0, status\n")
    modules = loaded_after(code)
    assert "designer.cli" in modules
    assert heavy(modules) == []


def test_a_command_that_runs_the_engine_still_loads_it():
    """The check above is not vacuous: building a network does load the engine and NumPy."""
    modules = loaded_after(f"import designer\ndesigner.build({str(LENET)!r})")
    assert "numpy" in modules and "designer.engine.network" in modules


PUBLIC = {  # name: the module it is defined in
    "Network": "designer.engine.network", "Cancelled": "designer.engine.network",
    "InputError": "designer.engine.network", "InvalidDesign": "designer.engine.network",
    "NotEnoughMemory": "designer.engine.network", "TrainingError": "designer.engine.training",
    "ExplainError": "designer.engine.explain", "SGD": "designer.engine.optim",
    "Adam": "designer.engine.optim", "AdamW": "designer.engine.optim",
    "CosineAnnealingLR": "designer.engine.optim", "StepLR": "designer.engine.optim",
    "clip_grad_norm": "designer.engine.optim", "WeightsError": "designer.engine.weights",
    "load_dataset": "designer.data.dataset", "OnnxImportError": "designer.io.onnx_import",
    "train": "designer.train.loop", "DesignError": "designer.io.design_file",
    "load_design": "designer.io.design_file", "save_design": "designer.io.design_file",
    "Analysis": "designer.core.analysis", "Design": "designer.core.design",
}


def test_every_public_name_is_importable_and_the_same_object():
    import importlib

    import designer
    for name in designer.__all__:
        assert getattr(designer, name) is not None, name
    for name, where in PUBLIC.items():
        assert getattr(designer, name) is getattr(importlib.import_module(where), name), name
    assert set(PUBLIC) <= set(designer.__all__)
    assert set(dir(designer)) >= set(designer.__all__)
    for name in ("build", "summarize", "layout", "export", "import_onnx", "format_table",
                 "EXPORT_FORMATS", "ExportUnavailable", "__version__"):
        assert hasattr(designer, name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        designer.nope  # noqa: B018


def test_train_stays_the_function_whatever_is_imported_first():
    """The subpackage designer.train is imported on its own (``from designer.train import
    charts``) before or after ``designer.train`` is first asked for: it is the function."""
    code = ("import designer\n"
            "from designer.train import charts\n"
            "import designer.train.loop\n"
            "import sys\n"
            "assert designer.train is sys.modules['designer.train.loop'].train, designer.train\n"
            "from designer import train\n"
            "assert train is designer.train\n"
            "import designer.train as t\n"
            "assert t is train\n")
    assert "designer.train.loop" in loaded_after(code)
    first = ("import designer.train.loop, sys, designer\n"
             "assert designer.train is sys.modules['designer.train.loop'].train\n")
    assert "numpy" in loaded_after(first)
