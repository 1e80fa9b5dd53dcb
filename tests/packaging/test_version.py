"""One version, in designer/__init__.py: the wheel's metadata, --version, About, the AppStream
release and the changelog all say it."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import designer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = None

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> str:
    return (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_pyproject_reads_the_version_from_the_package():
    text = _pyproject()
    if tomllib is not None:
        data = tomllib.loads(text)
        assert "version" not in data["project"]
        assert "version" in data["project"]["dynamic"]
        assert data["tool"]["hatch"]["version"]["path"] == "designer/__init__.py"
    source = (ROOT / "designer" / "__init__.py").read_text(encoding="utf-8")
    assert re.findall(r'^__version__ = "([^"]+)"$', source, re.M) == [designer.__version__]


def test_changelog_starts_with_this_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## \[?([0-9][^\]\s]*)\]?", text, re.M)
    assert versions and versions[0] == designer.__version__


def test_metadata_has_what_an_index_shows():
    if tomllib is None:
        return
    project = tomllib.loads(_pyproject())["project"]
    assert project["readme"] == "README.md" and project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"] and (ROOT / "LICENSE").is_file()
    assert project["requires-python"] == ">=3.10"
    assert any(c.startswith("Topic :: ") for c in project["classifiers"])
    assert all(u.startswith("https://") for u in project["urls"].values())
    # the bundle's tools are never needed to run the app
    assert not any("pyinstaller" in d.lower() for d in project["dependencies"])
