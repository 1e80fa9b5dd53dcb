"""The app's icon: PNGs rendered from the SVG at the sizes their names say, up to date with it,
and used by the window and the About box."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QWidget

from designer.app import help as app_help
from designer.app.icon import app_icon, icon_files, set_application_icon
from designer.io import desktop

ROOT = Path(__file__).resolve().parents[2]


def test_every_size_is_there_and_drawn():
    for size in desktop.ICON_SIZES:
        image = QImage(str(desktop.icon_png(size)))
        assert (image.width(), image.height()) == (size, size)
        assert image.hasAlphaChannel()
        corner = image.pixelColor(0, 0).alpha()
        centre = image.pixelColor(size // 2, size // 2).alpha()
        assert corner < 40 and centre == 255  # a rounded square on a transparent ground


def test_pngs_are_up_to_date_with_the_svg():
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "make_icons.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_app_icon_has_every_size():
    icon = app_icon()
    assert not icon.isNull()
    sizes = {(s.width(), s.height()) for s in icon.availableSizes()}
    assert {(s, s) for s in desktop.ICON_SIZES} <= sizes
    assert all(p.is_file() for p in icon_files())


def test_the_application_gets_the_icon():
    app = QGuiApplication.instance()
    before, before_name = app.windowIcon(), app.desktopFileName()
    try:
        icon = set_application_icon()
        assert app.windowIcon().cacheKey() == icon.cacheKey()
        assert QWidget().windowIcon().availableSizes() == icon.availableSizes()
        # the launcher's name without .desktop: Wayland's app id
        assert app.desktopFileName() + ".desktop" == desktop.DESKTOP_FILE
    finally:
        app.setWindowIcon(before)
        app.setDesktopFileName(before_name)


def test_about_box_shows_the_icon_and_version(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    box = app_help.show_about(parent)
    try:
        pixmap = box.iconPixmap()
        assert not pixmap.isNull()
        side = round(pixmap.width() / pixmap.devicePixelRatio())
        assert side == app_help.ABOUT_ICON
        assert f"CNN Designer {app_help.designer.__version__}" in box.text()
        # it is the app's icon: its centre is the icon's colour there
        expected = QImage(str(desktop.icon_png(128))).scaled(pixmap.width(), pixmap.height())
        got = pixmap.toImage()
        c = pixmap.width() // 2
        a, b = got.pixelColor(c, c), expected.pixelColor(c, c)
        assert max(abs(a.red() - b.red()), abs(a.green() - b.green()), abs(a.blue() - b.blue())) < 40
    finally:
        box.close()


def test_launcher_matches_the_windows_class():
    """X11 desktops match a window to its launcher by WM_CLASS, whose class Qt takes from the
    application name."""
    from designer.app.main_window import APP_NAME

    text = (ROOT / "packaging" / "linux" / desktop.DESKTOP_FILE).read_text(encoding="utf-8")
    assert f"\nStartupWMClass={APP_NAME}\n" in text
