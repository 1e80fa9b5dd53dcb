"""The console script (``cnn-designer``, ``python -m designer``): what the commands print reaches
the pipe whole and the exit status is the command's, also when the process ends quickly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "resources" / "templates"


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-m", "designer", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_summary_json_through_a_pipe_is_whole_and_exits_with_the_status():
    done = run("summary", "--json", str(TEMPLATES / "resnet18.json"))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # all of it arrived: it parses
    assert summary["valid"] and len(summary["nodes"]) == 70


def test_a_design_with_errors_exits_1_and_an_unreadable_file_2(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": "cnn-designer", "version": 1, "nodes": [
        {"id": "x", "type": "ReLU"}], "edges": []}), encoding="utf-8")
    done = run("summary", str(broken))
    assert done.returncode == 1 and "Errors (" in done.stdout
    done = run("summary", str(tmp_path / "missing.json"))
    assert done.returncode == 2 and "no such file" in done.stderr
