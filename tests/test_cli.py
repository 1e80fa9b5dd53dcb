"""The command line (contract §4)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from designer.cli import main
from tests.helpers import SEED

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "resources" / "templates"
INDEX = json.loads((TEMPLATES / "index.json").read_text(encoding="utf-8"))


CONV1 = {"id": "conv1", "type": "Conv2d", "output_shape": [10, 32, 32], "params": 760,
         "macs": 778240, "receptive_field": {"size": [5, 5], "jump": [1, 1], "start": [0.0, 0.0]},
         "errors": [], "warnings": []}

NODE_KEYS = {"id", "type", "output_shape", "params", "macs", "receptive_field", "errors", "warnings"}

LINEAR_AFTER_CONV = {
    "format": "cnn-designer", "version": 1, "name": "broken",
    "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 3, "height": 8, "width": 8}},
        {"id": "conv", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3}},
        {"id": "fc", "type": "Linear", "params": {"out_features": 10}},
    ],
    "edges": [["input", "conv"], ["conv", "fc"]],
}


def write(tmp_path: Path, data, name: str = "design.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def run_module(*args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "designer", *map(str, args)], capture_output=True,
                          text=True, encoding="utf-8", timeout=60, cwd=cwd or ROOT, env=env)


# ------------------------------------------------------------------------------ summary --json

def test_summary_json_of_the_seed_example(tmp_path, capsys):
    code, out, err = run(capsys, "summary", write(tmp_path, SEED), "--json")
    assert code == 0
    assert err == ""
    summary = json.loads(out)
    assert list(summary) == ["valid", "total_params", "total_macs", "nodes"]
    assert summary["valid"] is True
    assert summary["total_params"] == 760
    assert summary["total_macs"] == 778240
    assert [n["id"] for n in summary["nodes"]] == ["input", "conv1"]
    for n in summary["nodes"]:
        assert set(n) == NODE_KEYS
    assert summary["nodes"][1] == CONV1
    assert summary["nodes"][0]["output_shape"] == [3, 32, 32]
    assert summary["nodes"][0]["params"] == 0 and summary["nodes"][0]["macs"] == 0


def test_summary_json_nodes_are_in_topological_order(tmp_path, capsys):
    # the file lists nodes backwards: the output must still be topological
    data = json.loads((TEMPLATES / "inception-block.json").read_text(encoding="utf-8"))
    data["nodes"].reverse()
    code, out, _ = run(capsys, "summary", write(tmp_path, data), "--json")
    assert code == 0
    summary = json.loads(out)
    order = [n["id"] for n in summary["nodes"]]
    assert sorted(order) == sorted(n["id"] for n in data["nodes"])
    position = {n: i for i, n in enumerate(order)}
    for source, target in data["edges"]:
        assert position[source] < position[target], (source, target)
    assert summary["total_params"] == 163_696


def test_summary_json_for_an_invalid_design(tmp_path, capsys):
    code, out, _ = run(capsys, "summary", write(tmp_path, LINEAR_AFTER_CONV), "--json")
    assert code == 1
    summary = json.loads(out)
    assert summary["valid"] is False
    fc = next(n for n in summary["nodes"] if n["id"] == "fc")
    assert fc["errors"] and "Flatten" in " ".join(fc["errors"])
    assert fc["output_shape"] is None


def test_summary_json_flat_outputs_have_null_field(tmp_path, capsys):
    code, out, _ = run(capsys, "summary", TEMPLATES / "lenet5.json", "--json")
    assert code == 0
    nodes = {n["id"]: n for n in json.loads(out)["nodes"]}
    assert nodes["fc2"]["receptive_field"] is None
    assert nodes["fc2"]["output_shape"] == [10]
    assert nodes["fc1"]["params"] == 120 * 84 + 84
    assert nodes["fc1"]["macs"] == 120 * 84 + 84


# ------------------------------------------------------------------------------ exit statuses

def test_summary_exits_1_for_a_design_with_errors_and_still_prints(tmp_path, capsys):
    code, out, _ = run(capsys, "summary", write(tmp_path, LINEAR_AFTER_CONV))
    assert code == 1
    assert "Param #" in out
    for node_id in ("input", "conv", "fc"):
        assert node_id in out
    error_lines = [line for line in out.splitlines() if "fc:" in line]
    assert error_lines and any("Flatten" in line for line in error_lines)


def test_summary_exits_2_for_a_missing_file(tmp_path, capsys):
    code, out, err = run(capsys, "summary", tmp_path / "missing.json")
    assert code == 2
    assert out == ""
    assert "missing.json" in err


def test_summary_exits_2_for_broken_json(tmp_path, capsys):
    path = write(tmp_path, '{"format": "cnn-designer",\n "version": 1,\n "nodes": [}\n')
    for extra in ([], ["--json"]):
        code, out, err = run(capsys, "summary", path, *extra)
        assert code == 2
        assert out == ""
        assert "design.json" in err and "line 3" in err


def test_summary_exits_2_for_a_non_design(tmp_path, capsys):
    code, out, err = run(capsys, "summary", write(tmp_path, {"format": "keras"}))
    assert code == 2
    assert out == ""
    assert "format" in err


def test_summary_exits_2_for_a_newer_version(tmp_path, capsys):
    code, out, err = run(capsys, "summary", write(tmp_path, dict(SEED, version=3)))
    assert code == 2
    assert out == ""
    assert "newer" in err


def test_summary_without_file_is_a_usage_error(capsys):
    code = main(["summary"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "usage" in err.lower()


# -------------------------------------------------------------------------------- the table

def table_lines(out: str) -> tuple[str, list[str]]:
    """The header and the data rows of the layer table."""
    lines = out.splitlines()
    header_at = next(i for i, line in enumerate(lines) if "Param #" in line)
    assert set(lines[header_at - 1]) == {"="} and set(lines[header_at + 1]) == {"="}
    end = next(i for i in range(header_at + 2, len(lines)) if set(lines[i]) == {"="})
    return lines[header_at], lines[header_at + 2:end]


def test_table_columns_are_aligned(capsys):
    code, out, _ = run(capsys, "summary", TEMPLATES / "vgg16.json")
    assert code == 0
    header, rows = table_lines(out)
    assert len(rows) == len(json.loads((TEMPLATES / "vgg16.json").read_text())["nodes"])
    edge = header.index("Param #") + len("Param #")
    mult_edge = header.index("Mult-Adds") + len("Mult-Adds")
    for row in rows:
        # right-aligned number columns: every cell ends exactly under the header's right edge
        assert row[edge - 1] != " " and row[edge:edge + 2] == "  ", row
        assert row[mult_edge - 1] != " " and row[mult_edge:mult_edge + 2] == "  ", row
    layer_col = header.index("Type")
    for row in rows:
        assert row[layer_col - 1] == " " and row[layer_col] != " ", row


def test_table_shows_thousands_separators_and_totals(capsys):
    code, out, _ = run(capsys, "summary", TEMPLATES / "vgg16.json")
    assert code == 0
    assert "138,357,544" in out
    assert re.search(r"Total params:\s*138,357,544", out)
    header, rows = table_lines(out)
    classifier0 = next(r for r in rows if r.startswith("classifier.0 "))
    assert f"{25088 * 4096 + 4096:,}" in classifier0  # 102,764,544: 512·7·7 inputs, 4096 outputs
    assert re.search(r"mult-adds", out, re.IGNORECASE)
    assert "15,483.82" in out or "15.48" in out


def test_table_for_the_seed_example(tmp_path, capsys):
    code, out, _ = run(capsys, "summary", write(tmp_path, SEED))
    assert code == 0
    header, rows = table_lines(out)
    assert [r.split()[0] for r in rows] == ["input", "conv1"]
    conv_row = rows[1]
    assert "[10, 32, 32]" in conv_row and "760" in conv_row and "778,240" in conv_row
    assert "5×5" in conv_row
    assert re.search(r"Total params:\s*760\b", out)


# ------------------------------------------------------------------------ templates and new

def test_templates_lists_every_id(capsys):
    code, out, _ = run(capsys, "templates")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    for entry in INDEX:
        assert entry["id"] in listed
    vgg = next(line for line in out.splitlines() if line.startswith("vgg16 "))
    assert "138,357,544" in vgg


def test_new_writes_the_template(tmp_path, capsys):
    target = tmp_path / "mine.json"
    code, out, err = run(capsys, "new", "lenet5", "-o", target)
    assert code == 0
    assert target.is_file()
    written = json.loads(target.read_text(encoding="utf-8"))
    assert written == json.loads((TEMPLATES / "lenet5.json").read_text(encoding="utf-8"))
    code, out, _ = run(capsys, "summary", target, "--json")
    assert code == 0 and json.loads(out)["total_params"] == 61_706
    assert [p.name for p in tmp_path.iterdir()] == ["mine.json"]


def test_new_refuses_to_overwrite(tmp_path, capsys):
    target = write(tmp_path, "precious", "mine.json")
    code, out, err = run(capsys, "new", "lenet5", "-o", target)
    assert code == 2
    assert "mine.json" in err and "--force" in err
    assert target.read_text(encoding="utf-8") == "precious"
    code, _, _ = run(capsys, "new", "lenet5", "-o", target, "--force")
    assert code == 0
    assert json.loads(target.read_text(encoding="utf-8"))["name"] == "LeNet-5"
    assert [p.name for p in tmp_path.iterdir()] == ["mine.json"]


def test_new_unknown_template(tmp_path, capsys):
    target = tmp_path / "x.json"
    code, out, err = run(capsys, "new", "nope", "-o", target)
    assert code == 2
    assert not target.exists()
    for entry in INDEX:
        assert entry["id"] in err


def test_new_into_a_missing_folder(tmp_path, capsys):
    target = tmp_path / "no-such-folder" / "x.json"
    code, out, err = run(capsys, "new", "lenet5", "-o", target)
    assert code == 2
    assert "no-such-folder" in err
    assert not target.parent.exists()


# ------------------------------------------------------------------------------ open and help

def test_open_a_file_starts_the_app_on_it(tmp_path, capsys, monkeypatch):
    import designer.app.main_window as main_window
    opened = []
    monkeypatch.setattr(main_window, "run_app", lambda path=None: opened.append(path) or 0)
    path = write(tmp_path, SEED)
    code, _, _ = run(capsys, path)
    assert code == 0
    assert opened == [str(path)]


def test_open_a_missing_file(tmp_path, capsys):
    code, out, err = run(capsys, tmp_path / "missing.json")
    assert code == 2
    assert "missing.json" in err


@pytest.mark.parametrize("args", [["--help"], ["summary", "--help"], ["new", "--help"],
                                  ["templates", "--help"]])
def test_help_exits_0(capsys, args):
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert "usage" in out.lower()


def test_help_mentions_the_commands(capsys):
    _, out, _ = run(capsys, "--help")
    for command in ("summary", "templates", "new"):
        assert command in out


# -------------------------------------------------------------------------- robustness

def test_summary_of_huge_counts_does_not_crash(tmp_path, capsys):
    """Python ints are unbounded: a 400-digit out_channels loads; the table must still print
    (exit 0 or 1), not die with OverflowError."""
    data = json.loads(json.dumps(SEED))
    data["nodes"][1]["params"]["out_channels"] = 10 ** 400
    path = write(tmp_path, data)
    code = main(["summary", str(path)])
    out, err = capsys.readouterr()
    assert code in (0, 1)
    assert "conv1" in out


class _TooSlow(Exception):
    pass


def test_summary_of_a_huge_adaptive_output_is_prompt(tmp_path, capsys):
    """A file may hold any output_size: the summary must come back promptly (the arithmetic
    does not need one entry per output row), not grind for minutes and gigabytes."""
    data = {"format": "cnn-designer", "version": 1, "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 1, "height": 8, "width": 8}},
        {"id": "pool", "type": "AdaptiveAvgPool2d", "params": {"output_size": 10 ** 9}}],
        "edges": [["input", "pool"]]}
    path = write(tmp_path, data)

    def too_slow(signum, frame):
        raise _TooSlow("summary took more than 3 seconds")

    old = signal.signal(signal.SIGALRM, too_slow)
    signal.setitimer(signal.ITIMER_REAL, 3.0)
    try:
        code = main(["summary", str(path), "--json"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    out, _ = capsys.readouterr()
    assert code in (0, 1)
    assert json.loads(out)["nodes"][1]["id"] == "pool"


# ---------------------------------------------------------------------- the real console entry

def test_python_m_designer_summary(tmp_path):
    path = write(tmp_path, SEED)
    result = run_module("summary", path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "conv1" in result.stdout and "778,240" in result.stdout
    result = run_module("summary", path, "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["nodes"][1] == CONV1


def test_python_m_designer_exit_statuses(tmp_path):
    result = run_module("summary", write(tmp_path, LINEAR_AFTER_CONV))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Flatten" in result.stdout
    result = run_module("summary", tmp_path / "missing.json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "missing.json" in result.stderr and "Traceback" not in result.stderr


def test_python_m_designer_help(tmp_path):
    # (without arguments it opens the desktop window: tests/app drives that)
    result = run_module("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "usage" in result.stdout.lower()
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------- the last guard

import tempfile  # noqa: E402

import numpy as np  # noqa: E402

from designer import cli  # noqa: E402


@pytest.fixture
def temp_folder(tmp_path, monkeypatch):
    """The system's temporary folder, for this test: where error reports go."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_an_unforeseen_error_is_a_short_message_and_a_report(tmp_path, capsys, monkeypatch,
                                                               temp_folder):
    def broken(args):
        raise RuntimeError("boom in the summary")

    monkeypatch.setattr(cli, "cmd_summary", broken)
    code, out, err = run(capsys, "summary", write(tmp_path, SEED))
    assert code == 2 and out == ""
    assert err.startswith("cnn-designer: unexpected error (RuntimeError: boom in the summary); "
                          "this is a bug in CNN Designer; please report it with the command you "
                          "ran; the details are in ")
    assert len(err.strip().splitlines()) == 1
    reports = list((temp_folder / "cnn-designer-error-reports").iterdir())
    assert len(reports) == 1 and str(reports[0]) in err
    text = reports[0].read_text(encoding="utf-8")
    assert "Traceback" in text and "boom in the summary" in text and "in broken" in text
    assert "command: cnn-designer summary" in text


def test_the_guard_still_answers_when_no_report_can_be_written(tmp_path, capsys, monkeypatch,
                                                                temp_folder):
    monkeypatch.setattr(cli, "cmd_templates", lambda args: {}["missing"])
    (temp_folder / "cnn-designer-error-reports").write_text("a file where the folder should be")
    code, out, err = run(capsys, "templates")
    assert code == 2 and "unexpected error (KeyError: 'missing')" in err
    assert "the details could not be written to" in err


@pytest.mark.parametrize("error", [MemoryError(), MemoryError("out of memory in a test"),
                                   "numpy"])
def test_a_memory_error_anywhere_says_not_enough_memory(tmp_path, capsys, monkeypatch,
                                                        temp_folder, error):
    def short_of_memory(args):
        if error == "numpy":
            np.empty(2**62, np.uint8)  # NumPy's own MemoryError
        raise error

    monkeypatch.setattr(cli, "cmd_summary", short_of_memory)
    code, out, err = run(capsys, "summary", write(tmp_path, SEED))
    assert code == 2 and err.startswith("cnn-designer: not enough memory")
    assert not (temp_folder / "cnn-designer-error-reports").exists()  # not a bug


def test_interrupt_and_broken_pipe_are_not_bugs(tmp_path, capsys, monkeypatch, temp_folder):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_summary", interrupted)
    assert run(capsys, "summary", write(tmp_path, SEED))[0] == 130
    assert not (temp_folder / "cnn-designer-error-reports").exists()


# --------------------------------------------------------------- where files can't be written

def test_new_into_a_folder_that_exists_but_cant_hold_files(capsys):
    code, out, err = run(capsys, "new", "lenet5", "-o", "/proc/x.json")
    assert code == 2
    assert "does not exist" not in err and "the folder /proc exists but can't hold new files" in err


def test_new_where_writing_is_refused(tmp_path, capsys):
    code, _, err = run(capsys, "new", "lenet5", "-o", "/sys/x.json")  # refused even to root
    assert code == 2 and "permission denied" in err and "/sys" in err
    code, _, err = run(capsys, "new", "lenet5", "-o", tmp_path, "--force")
    assert code == 2 and "it is a folder" in err
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "new", "lenet5", "-o", fifo, "--force")
    assert code == 2 and "not a regular file" in err
    code, _, err = run(capsys, "new", "lenet5", "-o", tmp_path / ("x" * 300 + ".json"))
    assert code == 2 and "too long" in err


def test_open_refuses_special_files_before_the_app_starts(tmp_path, capsys, monkeypatch):
    import designer.app.main_window as main_window
    opened = []
    monkeypatch.setattr(main_window, "run_app", lambda path=None: opened.append(path) or 0)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for target, words in [(fifo, "not a regular file"), ("/dev/zero", "not a regular file"),
                          (tmp_path, "is a folder")]:
        code, _, err = run(capsys, target)
        assert code == 2 and words in err
    assert opened == []
