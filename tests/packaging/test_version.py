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
    data = tomllib.loads(_pyproject())
    project = data["project"]
    assert "readme" in project["dynamic"] and project["license"] == "MIT"
    readme = data["tool"]["hatch"]["metadata"]["hooks"]["fancy-pypi-readme"]
    assert [f["path"] for f in readme["fragments"]] == ["README.md"]
    assert project["license-files"] == ["LICENSE"] and (ROOT / "LICENSE").is_file()
    assert project["requires-python"] == ">=3.10"
    assert any(c.startswith("Topic :: ") for c in project["classifiers"])
    assert all(u.startswith("https://") for u in project["urls"].values())
    # the bundle's tools are never needed to run the app
    assert not any("pyinstaller" in d.lower() for d in project["dependencies"])


def test_readme_links_become_absolute():
    """The long description's pictures and links work on an index's page: the substitutions
    the build applies, applied here to the README."""
    if tomllib is None:
        return
    hook = tomllib.loads(_pyproject())["tool"]["hatch"]["metadata"]["hooks"]["fancy-pypi-readme"]
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/images/" in text
    for sub in hook["substitutions"]:
        text = re.sub(sub["pattern"], sub["replacement"], text)
    assert re.findall(r"\]\((?!https://|#)", text) == []
    base = "https://raw.githubusercontent.com/cnn-designer/cnn-designer/main/"
    for url in re.findall(r"!\[[^\]]*\]\((\S+)\)", text):
        assert url.startswith(base) and (ROOT / url[len(base):]).is_file(), url
