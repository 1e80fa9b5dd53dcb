"""The wheel and sdist (slow): built with `python -m build` (the wheel from the sdist), they
carry every resource; installed into a fresh virtual environment outside the repository, the
command line and the app work from them alone."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import designer
from designer.io.desktop import DESKTOP_FILE, ICON_SIZES, METAINFO_FILE, MIME_FILE

from .outside import OPEN_AND_QUIT, ROOT, clean_env, constraints, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_wheel_carries_the_resources_and_metadata(dist):
    version = designer.__version__
    wheel = _one(dist, f"cnn_designer-{version}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = Parser().parsestr(z.read(f"cnn_designer-{version}.dist-info/METADATA").decode())
        entry_points = z.read(f"cnn_designer-{version}.dist-info/entry_points.txt").decode()
    res = "designer/_resources/"
    for folder in ("templates", "samples", "trained", "colormaps"):
        repo = {p.relative_to(ROOT / "resources").as_posix()
                for p in (ROOT / "resources" / folder).rglob("*") if p.is_file()
                and "__pycache__" not in p.parts}
        assert repo and {res + n for n in repo} <= names, folder
    assert {f"{res}icons/cnn-designer-{s}.png" for s in ICON_SIZES} <= names
    assert {res + f"desktop/{n}" for n in (DESKTOP_FILE, METAINFO_FILE, MIME_FILE)} <= names
    assert f"cnn_designer-{version}.dist-info/licenses/LICENSE" in names
    assert not any(n.startswith(("tests/", "resources/", "packaging/")) for n in names)
    assert meta["Name"] == "cnn-designer" and meta["Version"] == version
    assert meta["Requires-Python"] == ">=3.10" and meta["License-Expression"] == "MIT"
    assert meta["Description-Content-Type"] == "text/markdown"
    description = meta.get_payload()
    assert description.startswith("# CNN Designer")
    assert "(https://raw.githubusercontent.com/cnn-designer/cnn-designer/main/docs/images/" \
        in description and "](docs/" not in description
    assert any(u.startswith("Source, https://") for u in meta.get_all("Project-URL"))
    assert "cnn-designer = designer.cli:console_main" in entry_points
    assert (wheel.stat().st_size < 5 * 2**20), wheel.stat().st_size


def test_sdist_has_what_a_rebuild_needs(dist):
    sdist = _one(dist, f"cnn_designer-{designer.__version__}.tar.gz")
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for need in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "designer/cli.py",
                 "resources/templates/index.json", "packaging/linux/" + DESKTOP_FILE,
                 "resources/icons/cnn-designer.svg", "tests/packaging/test_wheel.py"):
        assert need in names, need
    assert not any(".venv" in n or "__pycache__" in n for n in names)


def test_installed_wheel_runs_outside_the_repository(dist, tmp_path):
    wheel = _one(dist, "cnn_designer-*.whl")
    env_dir, work = tmp_path / "env", tmp_path / "work"
    work.mkdir()
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bin_dir = env_dir / "bin"
    python, cli = bin_dir / "python", bin_dir / "cnn-designer"
    env = clean_env(tmp_path / "home")
    run([python, "-m", "pip", "install", "--quiet", "-c", constraints(tmp_path / "c.txt"), wheel],
        work, env)

    # the package and its resources come from the environment, not the repository
    where = run([python, "-c", "import designer, designer.io.templates as t; "
                 "print(designer.__file__); print(t.resources_dir())"], work, env).stdout.split()
    site = env_dir.resolve()
    assert all(Path(p).resolve().is_relative_to(site) for p in where), where
    resources = Path(where[1])
    assert resources.name == "_resources"

    assert run([cli, "--version"], work, env).stdout.strip() == \
        f"cnn-designer {designer.__version__}"
    listed = run([cli, "templates"], work, env).stdout
    assert "lenet5" in listed and "resnet18" in listed
    run([cli, "new", "lenet5", "-o", "lenet5.json"], work, env)
    summary = run([cli, "summary", "lenet5.json"], work, env).stdout
    assert "61,706" in summary  # LeNet-5's parameters

    # run on a sample image shipped in the wheel: the shipped trained weights recognise it
    sample = resources / "samples" / "builtin" / "digit-3.png"
    ran = run([cli, "run", "lenet5.json", "--input", sample, "--out", "run"], work, env)
    assert (work / "run" / "activations.npz").is_file()
    assert "prediction: 3 " in ran.stdout, ran.stdout

    trained = run([cli, "train", "lenet5.json", "--data", "builtin:digits", "--epochs", "1",
                   "--out", "trained"], work, env, timeout=300)
    assert "Trained 1 epoch" in trained.stdout
    with open(work / "trained" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and float(rows[0]["val_accuracy"]) > 0.3

    # the app opens offscreen on the bundled example and quits when told
    example = resources / "templates" / "cifar10-convnet.json"
    opened = run([python, "-c", OPEN_AND_QUIT, example, "3000"], work, env, timeout=120)
    assert "WINDOW 13 cs231n: CIFAR-10 ConvNet" in opened.stdout, opened.stdout + opened.stderr
    # ... and started as a user starts it, it keeps running until stopped
    app = subprocess.Popen([str(cli), str(example)], cwd=work, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            app.wait(timeout=6)
    finally:
        app.terminate()
        out, err = app.communicate(timeout=30)
    assert "Traceback" not in out + err and "Error" not in err, err

    # desktop integration from the installed wheel's own files
    share = tmp_path / "share"
    said = run([cli, "--install-desktop"], work, dict(env, XDG_DATA_HOME=str(share)))
    assert str(share) in said.stdout
    entry = (share / "applications" / DESKTOP_FILE).read_text()
    assert f"Exec={cli} %f" in entry
    if shutil.which("update-mime-database"):
        assert "application/x-cnn-designer+json" in (share / "mime" / "types").read_text()
    said = run([python, "-m", "designer.io.desktop", "uninstall", "--data-home", share], work, env)
    assert not (share / "applications" / DESKTOP_FILE).exists()


def test_desktop_files_validate(tmp_path):
    """desktop-file-validate (desktop-file-utils) and appstreamcli (appstream), as Debian ships
    them, on the files as installed."""
    missing = [t for t in ("desktop-file-validate", "appstreamcli") if not shutil.which(t)]
    assert not missing, (f"{', '.join(missing)} not found: apt-get install desktop-file-utils "
                         f"appstream")
    from designer.io import desktop
    share = tmp_path / "share"
    desktop.install(share, ["/usr/bin/cnn-designer"])
    checked = subprocess.run(["desktop-file-validate", str(share / "applications" / DESKTOP_FILE)],
                             capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stdout.strip() == "", checked.stdout + checked.stderr
    checked = subprocess.run(["appstreamcli", "validate", "--no-net", "--no-color",
                              str(share / "metainfo" / METAINFO_FILE)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not any(line.startswith(("E:", "W:")) for line in checked.stdout.splitlines())
