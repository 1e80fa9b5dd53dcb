#!/usr/bin/env python3
"""Set up a private virtual environment and run the app or the tests.

    python3 dev.py app [FILE]   set up, then open CNN Designer (on the bundled example by default)
    python3 dev.py test [ARGS]  set up, then run the import-layer check and the whole test suite
    python3 dev.py bundle       set up, then build the one-folder app in dist/cnn-designer/ (PyInstaller)

Only the Python standard library is used here, so this works on a fresh machine with Python 3 and git.
The environment lives in .venv/ and is reinstalled only when pyproject.toml changes.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXAMPLE = ROOT / "resources" / "templates" / "cifar10-convnet.json"


def _venv_python() -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    exe = "python.exe" if os.name == "nt" else "python"
    return VENV / sub / exe


def _run(cmd: list[str | os.PathLike], **kwargs) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def setup() -> Path:
    """Create .venv and install the project (editable) with its test extras, if not done already."""
    if sys.version_info < (3, 10):
        sys.exit(f"CNN Designer needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    python = _venv_python()
    stamp = VENV / ".installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        print("Creating the virtual environment in .venv ...", flush=True)
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        except Exception as exc:  # e.g. Debian without python3-venv
            sys.exit(f"Could not create a virtual environment ({exc}).\n"
                     "On Debian/Ubuntu install it with: sudo apt install python3-venv")
    print("Installing CNN Designer and its dependencies into .venv ...", flush=True)
    quiet = [] if os.environ.get("CI") else ["--quiet"]
    if _run([python, "-m", "pip", "install", *quiet, "--upgrade", "pip"]) != 0:
        sys.exit("Could not upgrade pip in .venv (see above).")
    if _run([python, "-m", "pip", "install", *quiet, "-e", ".[test]"]) != 0:
        sys.exit("Could not install CNN Designer into .venv (see above).")
    stamp.write_text(wanted)
    return python


def cmd_app(args: list[str]) -> int:
    python = setup()
    target = args or [str(EXAMPLE)]
    return _run([python, "-m", "designer", *target])


def cmd_test(args: list[str]) -> int:
    python = setup()
    scripts = python.parent
    lint = scripts / ("lint-imports.exe" if os.name == "nt" else "lint-imports")
    print("Checking import layers (the core never imports Qt) ...", flush=True)
    if _run([lint]) != 0:
        return 1
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    status = _run([python, "-m", "pytest", *args], env=env)
    if status == 5:
        print("pytest collected no tests: treating that as a failure.", file=sys.stderr)
        return 1
    return status


SPEC = ROOT / "packaging" / "cnn-designer.spec"
BUNDLE = ROOT / "dist" / "cnn-designer"


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def cmd_bundle(args: list[str]) -> int:
    """Build dist/cnn-designer/ with PyInstaller (installed into .venv the first time: the
    `bundle` extra, never needed to run the app). ``--distpath DIR`` and ``--workpath DIR``
    put it and PyInstaller's work elsewhere; other ARGS go to PyInstaller."""
    python = setup()
    if _run([python, "-c", "import PyInstaller"], stderr=subprocess.DEVNULL) != 0:
        print("Installing PyInstaller into .venv (the bundle extra) ...", flush=True)
        quiet = [] if os.environ.get("CI") else ["--quiet"]
        if _run([python, "-m", "pip", "install", *quiet, "-e", ".[test,bundle]"]) != 0:
            sys.exit("Could not install PyInstaller into .venv (see above).")
    import argparse

    parser = argparse.ArgumentParser(prog="python3 dev.py bundle")
    parser.add_argument("--distpath", type=Path, default=ROOT / "dist",
                        help="where the cnn-designer folder goes (default: dist)")
    parser.add_argument("--workpath", type=Path, default=ROOT / "build" / "pyinstaller",
                        help="PyInstaller's work folder (default: build/pyinstaller)")
    options, rest = parser.parse_known_args(args)
    bundle = options.distpath.absolute() / BUNDLE.name
    print(f"Building the one-folder app into {bundle} ...", flush=True)
    status = _run([python, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                   "--distpath", options.distpath.absolute(),
                   "--workpath", options.workpath.absolute(), *rest, SPEC])
    if status != 0:
        return status
    executable = bundle / ("cnn-designer.exe" if os.name == "nt" else "cnn-designer")
    size = _folder_size(bundle) / 2**20
    print(f"Built {bundle} ({size:,.0f} MiB). Start it with: {executable} [FILE]")
    return 0


def main() -> int:
    commands = {"app": cmd_app, "test": cmd_test, "bundle": cmd_bundle}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__.strip())
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
