"""The app's icon (resources/icons: an SVG drawn for the project and its PNG renderings, the same
files the desktop entry installs): the window icon, the About box's picture."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QGuiApplication, QIcon, QPixmap

from designer.io.desktop import APP_ID, ICON_SIZES, icon_png, icon_svg


def icon_files() -> list[Path]:
    """The PNG renderings, smallest first, then the SVG."""
    return [icon_png(size) for size in ICON_SIZES] + [icon_svg()]


def app_icon() -> QIcon:
    """The icon at every size it was rendered at (Qt picks the nearest; the SVG, where Qt can
    read SVG, for sizes in between)."""
    icon = QIcon()
    for path in icon_files():
        if path.suffix == ".png":
            icon.addPixmap(QPixmap(str(path)))
        elif path.is_file():
            icon.addFile(str(path))
    return icon


def set_application_icon(app: QGuiApplication | None = None) -> QIcon:
    """Give every window of ``app`` (the running application by default) the icon, and name
    the launcher that is the app's (``setDesktopFileName``: on Wayland the app id, by which
    docks and task switchers find the launcher's icon and name); returns the icon."""
    app = app or QGuiApplication.instance()
    icon = app_icon()
    if app is not None:
        app.setWindowIcon(icon)
        app.setDesktopFileName(APP_ID)
    return icon
