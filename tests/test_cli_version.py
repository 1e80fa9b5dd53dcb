"""`cnn-designer --version`, and misspelled commands: a suggestion, not a file that isn't there."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import designer
from designer.app import main_window
from designer.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def opened(monkeypatch):
    """What the desktop app was asked to open (the app itself is not started)."""
    calls = []
    monkeypatch.setattr(main_window, "run_app", lambda path=None: calls.append(path) or 0)
    return calls


def test_version_is_the_package_version(capsys):
    code, out, err = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"cnn-designer {designer.__version__}"


def test_version_from_the_module_entry_point():
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    result = subprocess.run([sys.executable, "-m", "designer", "--version"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT, env=env)
    assert result.returncode == 0
    assert designer.__version__ in result.stdout


@pytest.mark.parametrize("argv, suggestion", [
    (["sumary", "x.json"], "summary"),
    (["summry"], "summary"),
    (["Summary", "x.json"], "summary"),
    (["tempaltes"], "templates"),
    (["nwe", "vgg16", "-o", "v.json"], "new"),
    (["rnu", "x.json", "--input", "a.png", "--out", "o"], "run"),
])
def test_a_misspelled_command_gets_a_suggestion(capsys, opened, tmp_path, monkeypatch, argv,
                                                suggestion):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.strip() == (f"cnn-designer: unknown command '{argv[0]}'; "
                           f"did you mean {suggestion}?")
    assert opened == []  # not read as a file to open


def test_an_unknown_word_with_more_arguments_lists_the_commands(capsys, opened, tmp_path,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "frobnicate", "x.json")
    assert code == 2
    assert "unknown command 'frobnicate'" in err
    assert "summary, templates, new, run" in err
    assert opened == []


def test_a_file_still_opens_even_if_named_like_a_misspelled_command(capsys, opened, tmp_path,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sumary").write_text("{}", encoding="utf-8")
    design = tmp_path / "summary-of-vgg.json"
    design.write_text("{}", encoding="utf-8")
    assert run(capsys, "sumary")[0] == 0
    assert run(capsys, str(design))[0] == 0
    assert opened == ["sumary", str(design)]


def test_a_missing_file_is_still_a_missing_file(capsys, opened, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "mynet.json")
    assert code == 2
    assert "mynet.json: no such file" in err
    code, out, err = run(capsys, "zebra")  # one word, like no command: a file that isn't there
    assert code == 2 and "zebra: no such file" in err
    assert opened == []
