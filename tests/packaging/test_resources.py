"""Where the runtime resources are found: inside the package (wheel, bundle) through
importlib.resources, else the repository's resources/ (source checkout, editable install)."""
from __future__ import annotations

from pathlib import Path

import pytest

from designer.io import desktop, templates

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_uses_the_repository_folder():
    assert templates.resources_dir() == ROOT / "resources"
    assert desktop.desktop_files_dir() == ROOT / "packaging" / "linux"


def test_the_package_copy_comes_first(tmp_path, monkeypatch):
    package = tmp_path / "designer"
    (package / "_resources" / "desktop").mkdir(parents=True)
    monkeypatch.setattr(templates.resources, "files", lambda name: package)  # both look here
    assert templates.resources_dir() == package / "_resources"
    assert desktop.desktop_files_dir() == package / "_resources" / "desktop"


def test_missing_resources_are_explained(tmp_path, monkeypatch):
    monkeypatch.setattr(templates.resources, "files", lambda name: tmp_path)
    monkeypatch.setattr(templates, "_CHECKOUT", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="resources are missing .* reinstall it"):
        templates.resources_dir()


def test_every_resource_folder_is_there():
    folder = templates.resources_dir()
    for name in ("templates", "samples", "trained", "colormaps", "icons"):
        assert (folder / name).is_dir(), name
