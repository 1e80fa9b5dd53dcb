"""Desktop integration for the current user (freedesktop.org): the launcher, the icon at every
size, the MIME types of design files (``application/x-cnn-designer+json``: ``*.cnnd.json`` and any
JSON that starts as a design file) and ONNX models (``application/x-onnx``, ``*.onnx``), and the
AppStream metadata, installed into ``$XDG_DATA_HOME`` (default ``~/.local/share``)::

    cnn-designer --install-desktop            (or: python -m designer.io.desktop install)
    cnn-designer --uninstall-desktop          (or: python -m designer.io.desktop uninstall)

The files themselves are in the repository's ``packaging/linux/`` and ``resources/icons/``; the
wheel and the one-folder bundle carry them in the package. No Qt here.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from designer.core.atomic import write_atomic
from designer.io.templates import PACKAGED, installed_folder, resources_dir

APP_ID = "io.github.cnn_designer.CNNDesigner"
ICON_NAME = "cnn-designer"
DESKTOP_FILE = f"{APP_ID}.desktop"
METAINFO_FILE = f"{APP_ID}.metainfo.xml"
MIME_FILE = "cnn-designer.xml"
DESIGN_MIME = "application/x-cnn-designer+json"
ONNX_MIME = "application/x-onnx"
#: the PNG sizes in resources/icons (packaging/make_icons.py renders them from the SVG)
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
#: the folder the wheel and the bundle keep packaging/linux in, inside the resources
PACKAGED_DESKTOP = "desktop"
_CHECKOUT_DESKTOP = Path(__file__).resolve().parent.parent.parent / "packaging" / "linux"
#: seconds each database refresh (update-mime-database, ...) may take
TOOL_TIMEOUT = 60


def desktop_files_dir() -> Path:
    """The .desktop entry, the MIME XML and the metainfo: in the package (wheel, bundle) or the
    repository's packaging/linux (source checkout)."""
    return installed_folder(f"{PACKAGED}/{PACKAGED_DESKTOP}", _CHECKOUT_DESKTOP, "desktop files")


def icons_dir() -> Path:
    return resources_dir() / "icons"


def icon_png(size: int) -> Path:
    return icons_dir() / f"{ICON_NAME}-{size}.png"


def icon_svg() -> Path:
    return icons_dir() / f"{ICON_NAME}.svg"


def data_home(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset, empty or not absolute (as the
    XDG Base Directory specification says)."""
    environ = os.environ if environ is None else environ
    value = environ.get("XDG_DATA_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path(environ.get("HOME") or Path.home()) / ".local" / "share"


# ------------------------------------------------------------------------------ the launcher

_RESERVED = set(' \t\n"\'\\><~|&;$*?#()`')


def exec_quote(arg: str) -> str:
    """One argument of a .desktop Exec key: quoted where the specification asks for it (and
    ``%`` doubled), then escaped as a string value (backslashes doubled)."""
    text = arg.replace("%", "%%")
    if not text or any(c in _RESERVED for c in text):
        escaped = "".join("\\" + c if c in '"`$\\' else c for c in text)
        text = f'"{escaped}"'
    return text.replace("\\", "\\\\")


def launcher_command() -> list[str]:
    """The command that starts this installation of the app: the bundle's executable, the
    ``cnn-designer`` script of this Python environment (pipx's, a venv's, a --user install's),
    one on PATH, or this Python with ``-m designer``."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    name = "cnn-designer.exe" if os.name == "nt" else "cnn-designer"
    folders = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
    try:
        folders.append(Path(sysconfig.get_path("scripts", f"{os.name}_user")))
    except KeyError:
        pass
    for folder in folders:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate.absolute())]
    found = shutil.which(name)
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "designer"]


def desktop_entry(command: list[str]) -> str:
    """packaging/linux's .desktop entry, its Exec and TryExec pointing at ``command``."""
    lines = []
    for line in (desktop_files_dir() / DESKTOP_FILE).read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + " ".join(exec_quote(a) for a in command) + " %f"
        elif line.startswith("TryExec="):
            line = "TryExec=" + command[0].replace("\\", "\\\\")
        lines.append(line)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ install

@dataclass
class Report:
    """What an install or uninstall did: the files written or removed, and the database
    refreshes that ran or could not."""
    folder: Path
    files: list[Path] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _targets(home: Path) -> dict[Path, Path | None]:
    """Each installed file and its source (None: the .desktop entry, written from the template)."""
    desktop = desktop_files_dir()
    targets: dict[Path, Path | None] = {
        home / "applications" / DESKTOP_FILE: None,
        home / "mime" / "packages" / MIME_FILE: desktop / MIME_FILE,
        home / "metainfo" / METAINFO_FILE: desktop / METAINFO_FILE,
        home / "icons" / "hicolor" / "scalable" / "apps" / f"{ICON_NAME}.svg": icon_svg(),
    }
    for size in ICON_SIZES:
        targets[home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"] = \
            icon_png(size)
    return targets


def _refresh(home: Path, report: Report) -> None:
    """Tell the desktop about the change: the MIME database, the launchers' MIME cache, the
    icon cache (each only where its tool is installed; a missing one is no error)."""
    icons = home / "icons" / "hicolor"
    jobs = [("update-mime-database", [str(home / "mime")]),
            ("update-desktop-database", ["-q", str(home / "applications")])]
    if (icons / "index.theme").is_file():  # a cache of a folder without the theme's index misleads
        jobs.append(("gtk-update-icon-cache", ["-q", "-t", "-f", str(icons)]))
    try:
        os.utime(icons)  # desktops watch the theme folder's time
    except OSError:
        pass
    for tool, args in jobs:
        path = shutil.which(tool)
        if path is None:
            report.skipped.append(f"{tool} (not installed)")
            continue
        try:
            done = subprocess.run([path, *args], capture_output=True, text=True,
                                  timeout=TOOL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            report.skipped.append(f"{tool} ({exc})")
            continue
        if done.returncode == 0:
            report.refreshed.append(tool)
        else:
            said = (done.stderr or done.stdout).strip().splitlines()
            report.skipped.append(f"{tool} (exit {done.returncode}"
                                  + (f": {said[-1]}" if said else "") + ")")


def install(home: Path | None = None, command: list[str] | None = None) -> Report:
    """Install the launcher, icons, MIME types and metainfo into ``home`` (default
    :func:`data_home`), starting ``command`` (default :func:`launcher_command`). OSError (with
    the file's name) if a file can't be written; files written before it stay."""
    home = data_home() if home is None else Path(home)
    report = Report(home)
    entry = desktop_entry(command or launcher_command()).encode("utf-8")
    for target, source in _targets(home).items():
        data = entry if source is None else source.read_bytes()
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, lambda handle, data=data: handle.write(data))
        report.files.append(target)
    _refresh(home, report)
    return report


def uninstall(home: Path | None = None) -> Report:
    """Remove what :func:`install` wrote (nothing else); the folders stay."""
    home = data_home() if home is None else Path(home)
    report = Report(home)
    for target in _targets(home):
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        report.files.append(target)
    _refresh(home, report)
    return report


def describe(report: Report, installed: bool) -> str:
    """What to tell the user."""
    if installed:
        text = (f"installed CNN Designer's launcher, icon and file types for this user into "
                f"{report.folder} ({len(report.files)} files)")
    elif report.files:
        text = f"removed CNN Designer's {len(report.files)} desktop files from {report.folder}"
    else:
        text = f"CNN Designer's desktop files were not installed in {report.folder}; nothing to remove"
    if report.skipped:
        text += ("; not refreshed: " + ", ".join(report.skipped)
                 + " (the desktop may notice the change only after you log in again)")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m designer.io.desktop",
        description="Install (or remove) CNN Designer's launcher, icon, file types and AppStream "
                    "metadata for the current user.")
    parser.add_argument("action", choices=("install", "uninstall"))
    parser.add_argument("--data-home", metavar="DIR",
                        help="where to install (default: $XDG_DATA_HOME or ~/.local/share)")
    args = parser.parse_args(argv)
    home = Path(args.data_home).absolute() if args.data_home else None
    try:
        report = install(home) if args.action == "install" else uninstall(home)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"cnn-designer: could not {args.action} the desktop files:{where}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    print(describe(report, args.action == "install"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
