"""Desktop integration for the current user (designer.io.desktop): what it installs where, the
launcher's command line, uninstalling, and that the files agree with each other and the app."""
from __future__ import annotations

import configparser
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import designer
from designer.io import desktop
from designer.io.desktop import (APP_ID, DESIGN_MIME, DESKTOP_FILE, ICON_NAME, ICON_SIZES,
                                 METAINFO_FILE, MIME_FILE, ONNX_MIME)

ROOT = Path(__file__).resolve().parents[2]
LINUX = ROOT / "packaging" / "linux"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"


def entry(text: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(text)
    return parser["Desktop Entry"]


def expected_files(home: Path) -> set[Path]:
    icons = home / "icons" / "hicolor"
    return ({home / "applications" / DESKTOP_FILE, home / "mime" / "packages" / MIME_FILE,
             home / "metainfo" / METAINFO_FILE, icons / "scalable" / "apps" / f"{ICON_NAME}.svg"}
            | {icons / f"{s}x{s}" / "apps" / f"{ICON_NAME}.png" for s in ICON_SIZES})


@pytest.fixture
def no_tools(monkeypatch):
    """Database refreshes found nowhere (the files alone are checked; the slow wheel test runs
    the real tools)."""
    monkeypatch.setattr(desktop.shutil, "which", lambda name: None)


def test_install_writes_every_file_from_the_sources(tmp_path, no_tools):
    home = tmp_path / "share"
    report = desktop.install(home, ["/opt/cnn designer/bin/cnn-designer"])
    assert set(report.files) == expected_files(home)
    assert all(p.is_file() for p in report.files)
    assert (home / "mime" / "packages" / MIME_FILE).read_bytes() == (LINUX / MIME_FILE).read_bytes()
    assert (home / "metainfo" / METAINFO_FILE).read_bytes() == (LINUX / METAINFO_FILE).read_bytes()
    for size in ICON_SIZES:
        installed = home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
        assert installed.read_bytes() == desktop.icon_png(size).read_bytes()
    assert report.refreshed == [] and any("update-mime-database" in s for s in report.skipped)
    assert "log in again" in desktop.describe(report, installed=True)


def test_the_launcher_starts_the_given_command_on_the_file(tmp_path, no_tools):
    home = tmp_path / "share"
    desktop.install(home, ["/opt/cnn designer/bin/python", "-m", "designer"])
    e = entry((home / "applications" / DESKTOP_FILE).read_text(encoding="utf-8"))
    assert e["Exec"] == '"/opt/cnn designer/bin/python" -m designer %f'
    assert shlex.split(e["Exec"]) == ["/opt/cnn designer/bin/python", "-m", "designer", "%f"]
    assert e["TryExec"] == "/opt/cnn designer/bin/python"
    assert e["Icon"] == ICON_NAME and e["Type"] == "Application"
    # the rest is packaging/linux's entry as it is
    template = entry((LINUX / DESKTOP_FILE).read_text(encoding="utf-8"))
    assert {k: v for k, v in e.items() if k not in ("Exec", "TryExec")} == \
        {k: v for k, v in template.items() if k not in ("Exec", "TryExec")}


@pytest.mark.parametrize("arg, quoted", [
    ("/usr/bin/cnn-designer", "/usr/bin/cnn-designer"),
    ("/a b/c", '"/a b/c"'),
    ('/we"ird/$x`', r'"/we\\"ird/\\$x\\`"'),  # \" \$ \` in the quoted argument, then \ doubled
    ("/100%/x", "/100%%/x"),
    ("C:\\tools", r'"C:\\\\tools"'),
])
def test_exec_quoting(arg, quoted):
    assert desktop.exec_quote(arg) == quoted


def test_installing_again_replaces_and_uninstall_removes_only_its_own(tmp_path, no_tools):
    home = tmp_path / "share"
    desktop.install(home, ["/old/cnn-designer"])
    other = home / "applications" / "other.desktop"
    other.write_text("[Desktop Entry]\n")
    desktop.install(home, ["/new/cnn-designer"])
    assert "Exec=/new/cnn-designer %f" in (home / "applications" / DESKTOP_FILE).read_text()
    report = desktop.uninstall(home)
    assert set(report.files) == expected_files(home)
    assert not any(p.exists() for p in expected_files(home))
    assert other.is_file()
    again = desktop.uninstall(home)
    assert again.files == [] and "nothing to remove" in desktop.describe(again, installed=False)


def test_the_default_place_is_xdg_data_home(tmp_path, monkeypatch, no_tools, capsys):
    assert desktop.data_home({"XDG_DATA_HOME": "/x/share", "HOME": "/h"}) == Path("/x/share")
    assert desktop.data_home({"XDG_DATA_HOME": "rel", "HOME": "/h"}) == Path("/h/.local/share")
    assert desktop.data_home({"XDG_DATA_HOME": "", "HOME": "/h"}) == Path("/h/.local/share")
    assert desktop.data_home({"HOME": "/h"}) == Path("/h/.local/share")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert desktop.main(["install"]) == 0
    assert str(tmp_path / "xdg") in capsys.readouterr().out
    assert (tmp_path / "xdg" / "applications" / DESKTOP_FILE).is_file()
    assert desktop.main(["uninstall"]) == 0
    assert not (tmp_path / "xdg" / "applications" / DESKTOP_FILE).exists()


def test_an_unwritable_place_is_named(tmp_path, no_tools, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert desktop.main(["install", "--data-home", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert "could not install the desktop files" in err and str(blocker) in err
    assert "Traceback" not in err


def test_refresh_reports_a_tool_that_fails(tmp_path, monkeypatch):
    tool = tmp_path / "update-mime-database"
    tool.write_text("#!/bin/sh\necho 'broken database' >&2\nexit 3\n")
    tool.chmod(0o755)
    monkeypatch.setattr(desktop.shutil, "which",
                        lambda name: str(tool) if name == "update-mime-database" else None)
    report = desktop.install(tmp_path / "share", ["/x/cnn-designer"])
    assert "update-mime-database (exit 3: broken database)" in report.skipped


def test_launcher_command_is_this_environments_script():
    command = desktop.launcher_command()
    assert Path(command[0]).is_absolute()
    assert command[0].endswith("cnn-designer") or command[1:] == ["-m", "designer"]


# ------------------------------------------------------------------- the files agree

def test_desktop_entry_mime_types_are_the_ones_defined():
    e = entry((LINUX / DESKTOP_FILE).read_text(encoding="utf-8"))
    types = [t for t in e["MimeType"].split(";") if t]
    root = ET.parse(LINUX / MIME_FILE).getroot()
    defined = {m.get("type"): m for m in root.iter(f"{MIME_NS}mime-type")}
    assert set(types) == set(defined) == {DESIGN_MIME, ONNX_MIME}
    globs = {m: [g.get("pattern") for g in el.iter(f"{MIME_NS}glob")] for m, el in defined.items()}
    assert globs == {DESIGN_MIME: ["*.cnnd.json"], ONNX_MIME: ["*.onnx"]}
    # the magic matches the start of a design file as the app writes it
    start = (ROOT / "resources" / "templates" / "lenet5.json").read_bytes()[:64].decode()
    values = [m.get("value") for m in defined[DESIGN_MIME].iter(f"{MIME_NS}match")]
    assert any(v in start for v in values)


def test_metainfo_names_the_launcher_version_and_existing_screenshots():
    root = ET.parse(LINUX / METAINFO_FILE).getroot()
    assert root.findtext("id") == APP_ID
    assert root.find("launchable").text == DESKTOP_FILE
    assert root.findtext("project_license") == "MIT"
    assert root.find("releases/release").get("version") == designer.__version__
    assert {m.text for m in root.iter("mediatype")} == {DESIGN_MIME, ONNX_MIME}
    images = [i.text for i in root.iter("image")]
    assert len(images) >= 3
    prefix = "https://raw.githubusercontent.com/cnn-designer/cnn-designer/main/"
    for url in images:
        assert url.startswith(prefix) and (ROOT / url[len(prefix):]).is_file(), url


def test_xml_files_are_well_formed():
    """update-mime-database exits 0 but installs nothing for a file with '--' in a comment."""
    for path in [*LINUX.glob("*.xml"), desktop.icon_svg()]:
        ET.parse(path)
        assert "--" not in "".join(c for c in _comments(path.read_text(encoding="utf-8")))


def _comments(text: str) -> list[str]:
    out, i = [], 0
    while (start := text.find("<!--", i)) >= 0:
        end = text.index("-->", start + 4)
        out.append(text[start + 4:end])
        i = end + 3
    return out
