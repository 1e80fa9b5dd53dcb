"""cnn-designer --install-desktop / --uninstall-desktop."""
from __future__ import annotations

import pytest

from designer.cli import main
from designer.io import desktop
from designer.io.desktop import DESKTOP_FILE


@pytest.fixture
def share(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setattr(desktop.shutil, "which", lambda name: None)
    return tmp_path / "share"


def test_install_then_uninstall(share, capsys):
    assert main(["--install-desktop"]) == 0
    out = capsys.readouterr().out
    assert f"into {share} (13 files)" in out
    entry = (share / "applications" / DESKTOP_FILE).read_text()
    assert "Exec=" + " ".join(desktop.exec_quote(a) for a in desktop.launcher_command()) in entry
    assert main(["--uninstall-desktop"]) == 0
    assert f"removed CNN Designer's 13 desktop files from {share}" in capsys.readouterr().out
    assert not (share / "applications" / DESKTOP_FILE).exists()


def test_a_file_with_the_option_is_refused(share, capsys):
    assert main(["--install-desktop", "x.json"]) == 2
    err = capsys.readouterr().err
    assert "--install-desktop takes no FILE" in err and "'x.json'" in err
    assert not share.exists()


def test_the_two_options_exclude_each_other(share, capsys):
    assert main(["--install-desktop", "--uninstall-desktop"]) == 2
    assert "not allowed with" in capsys.readouterr().err


def test_an_unwritable_place_is_said(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    monkeypatch.setattr(desktop.shutil, "which", lambda name: None)
    assert main(["--install-desktop"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnn-designer: could not install the desktop files: ")
    assert str(blocker) in err and "Traceback" not in err
