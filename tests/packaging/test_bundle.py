"""The one-folder app (slow): `python3 dev.py bundle` builds it with PyInstaller; it holds none
of the Qt modules the app doesn't use, starts offscreen on the example and quits cleanly, runs a
design on a sample image, trains, exports and imports ONNX, and installs its desktop entry."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import designer
from designer.io.desktop import DESKTOP_FILE

from .outside import ROOT, clean_env, run

pytestmark = pytest.mark.slow

#: a regression guard on the bundle's size (it was 189 MiB with PySide6 6.11 and NumPy 2.4)
MAX_MIB = 260


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    done = subprocess.run([sys.executable, str(ROOT / "dev.py"), "bundle", "--distpath",
                           str(out / "dist"), "--workpath", str(out / "build")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = out / "dist" / "cnn-designer"
    assert f"Built {folder} (" in done.stdout
    return folder


def test_bundle_is_lean(bundle):
    size = _size(bundle)
    assert size < MAX_MIB * 2**20, f"{size / 2**20:.0f} MiB"
    names = [p.relative_to(bundle).as_posix() for p in bundle.rglob("*")]
    for unused in ("libQt6Quick", "libQt6Qml", "libQt6WebEngine", "libQt63D", "libQt6Multimedia",
                   "libQt6Pdf", "libQt6Designer", "QtQuick.abi3", "QtQml.abi3", "tkinter",
                   "libgtk", "libcairo", "onnxruntime", "pytest", "hypothesis", "PyInstaller"):
        assert not any(unused in n.rsplit("/", 1)[-1] or f"/{unused}/" in n for n in names), unused
    assert not any(n.endswith(".qm") for n in names)  # Qt's translations of its own dialogs
    resources = bundle / "_internal" / "designer" / "_resources"
    for folder in ("templates", "samples", "trained", "colormaps", "icons", "desktop"):
        assert (resources / folder).is_dir(), folder


def test_bundle_runs_outside_the_repository(bundle, tmp_path):
    exe = bundle / "cnn-designer"
    resources = bundle / "_internal" / "designer" / "_resources"
    example = resources / "templates" / "cifar10-convnet.json"
    env = clean_env(tmp_path / "home")
    work = tmp_path / "work"
    work.mkdir()

    assert run([exe, "--version"], work, env).stdout.strip() == \
        f"cnn-designer {designer.__version__}"

    # the app starts offscreen on the example and quits cleanly
    started = time.perf_counter()
    opened = run([exe, example], work, dict(env, CNN_DESIGNER_QUIT_AFTER_MS="500"), timeout=120)
    seconds = time.perf_counter() - started
    assert "WINDOW 13 cs231n: CIFAR-10 ConvNet" in opened.stdout, opened.stdout + opened.stderr
    assert seconds < 60

    # a design run on a sample image, with the weights that ship for it
    ran = run([exe, "run", example, "--input", resources / "samples" / "builtin" / "shape-star.png",
               "--out", "run"], work, env)
    assert "prediction: star " in ran.stdout, ran.stdout
    with np.load(work / "run" / "activations.npz") as acts:
        assert acts["conv1"].shape == (1, 16, 32, 32)

    run([exe, "new", "lenet5", "-o", "lenet5.json"], work, env)
    trained = run([exe, "train", "lenet5.json", "--data", "builtin:digits", "--epochs", "1",
                   "--out", "trained"], work, env, timeout=300)
    assert "Trained 1 epoch" in trained.stdout
    run([exe, "export", "lenet5.json", "-o", "lenet5.onnx"], work, env)
    run([exe, "import", "lenet5.onnx", "-o", "back.json"], work, env)
    summary = run([exe, "summary", "back.json"], work, env).stdout
    assert "61,706" in summary

    share = tmp_path / "share"
    run([exe, "--install-desktop"], work, dict(env, XDG_DATA_HOME=str(share)))
    entry = (share / "applications" / DESKTOP_FILE).read_text()
    assert f"Exec={exe.resolve()} %f" in entry


def test_bundle_starts_quickly_enough(bundle, tmp_path):
    """Start-up to the first window, best of three (a cold first start reads 190 MB)."""
    env = clean_env(tmp_path / "home", CNN_DESIGNER_QUIT_AFTER_MS="0")
    example = bundle / "_internal" / "designer" / "_resources" / "templates" / "lenet5.json"
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        opened = run([bundle / "cnn-designer", example], tmp_path, env, timeout=120)
        best = min(best, time.perf_counter() - started)
        assert "WINDOW" in opened.stdout
    print(f"bundle start-up to the first window: {best:.2f} s")
    assert best < 20, best
