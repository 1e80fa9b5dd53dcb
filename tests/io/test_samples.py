"""The bundled sample images: listed, decodable at 256×256 (the pictures) or at the built-in
data's size (one validation image per class), not trivial, and reproduced pixel for pixel by
resources/samples/generate.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from designer.io import samples
from designer.io.images import read_image
from designer.io.samples import Sample, sample_images

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "resources" / "samples"
INDEX = json.loads((SAMPLES / "index.json").read_text(encoding="utf-8"))
PICTURES = [e for e in INDEX if "data" not in e]
FROM_DATA = [e for e in INDEX if "data" in e]


def pixels(file: str) -> np.ndarray:
    return read_image(SAMPLES / file)


# ------------------------------------------------------------------------------------ the list

def test_list_matches_the_index():
    listed = sample_images()
    assert [s.path for s in listed] == [SAMPLES / e["file"] for e in INDEX]
    assert [s.title for s in listed] == [e["title"] for e in INDEX]
    assert [s.description for s in listed] == [e["description"] for e in INDEX]
    assert [s.class_name for s in listed] == [e.get("class") for e in INDEX]
    assert [s.data for s in listed] == [e.get("data") for e in INDEX]
    assert listed[0].title == "Scene"


def test_every_png_is_listed():
    files = {p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*.png")}
    assert files == {e["file"] for e in INDEX}
    assert len(PICTURES) == 5


def test_one_validation_image_per_class_of_each_builtin_set():
    from designer.data import builtin
    for name, classes in (("digits", builtin.DIGIT_CLASSES), ("shapes", builtin.SHAPE_CLASSES)):
        entries = [e for e in FROM_DATA if e["data"] == f"builtin:{name}"]
        assert [e["class"] for e in entries] == classes


def test_builtin_samples_are_the_first_validation_image_of_their_class():
    from designer.data import builtin
    for name, classes in (("digits", builtin.DIGIT_CLASSES), ("shapes", builtin.SHAPE_CLASSES)):
        drawn = builtin.draw(name, 0, train_size=0)  # the validation part only
        for entry in (e for e in FROM_DATA if e["data"] == f"builtin:{name}"):
            label = classes.index(entry["class"])
            first = drawn.x_val[np.flatnonzero(drawn.y_val == label)[0]]  # (C, H, W) uint8
            image = pixels(entry["file"])  # (H, W, 3): grey images come back as R = G = B
            assert image.shape[:2] == first.shape[1:]
            assert np.array_equal(image, np.broadcast_to(first.transpose(1, 2, 0), image.shape))


def test_the_shipped_lenet5_reads_the_digit_samples():
    """The samples go through the same conversion as `run --input`, and the trained LeNet-5
    (99 % on this validation set) names nearly all of them."""
    import designer
    from designer.io.images import load_image
    from designer.io.templates import find_template
    design = find_template("lenet5").load()
    net = designer.build(design, weights="trained")
    entries = [e for e in FROM_DATA if e["data"] == "builtin:digits"]
    x = np.stack([load_image(SAMPLES / e["file"], 1, 32, 32) for e in entries])
    predicted = [design.classes[i] for i in net.predict(x).argmax(axis=1)]
    assert sum(p == e["class"] for p, e in zip(predicted, entries)) >= 9


def test_titles_are_unique_and_descriptions_are_one_line():
    titles = [s.title for s in sample_images()]
    assert all(t.strip() for t in titles)
    assert len(set(titles)) == len(titles)
    assert all(s.description.strip() and "\n" not in s.description for s in sample_images())


def test_entries_whose_file_is_missing_are_skipped(tmp_path, monkeypatch):
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "here.png").write_bytes(b"")
    entries = [{"file": "gone.png", "title": "Gone", "description": "missing"},
               {"file": "here.png", "title": "Here", "description": "present"}]
    (folder / "index.json").write_text(json.dumps(entries), encoding="utf-8")
    monkeypatch.setattr(samples, "resources_dir", lambda: tmp_path)
    assert sample_images() == [Sample("Here", "present", folder / "here.png")]


def test_no_index_means_no_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(samples, "resources_dir", lambda: tmp_path)
    assert sample_images() == []


def test_listing_loads_no_qt():
    code = ("import sys; from designer.io.samples import sample_images; "
            "assert sample_images(); "
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------- the images

@pytest.mark.parametrize("entry", PICTURES, ids=lambda e: e["file"])
def test_sample_loads_at_256_and_is_not_trivial(entry):
    image = pixels(entry["file"])
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert image.astype(float).std() > 30
    assert len(np.unique(image.reshape(-1, 3), axis=0)) >= 2
    assert (SAMPLES / entry["file"]).stat().st_size < 200_000


def test_checkerboard_is_two_greys_in_32_pixel_squares():
    image = pixels("checkerboard.png")
    assert np.array_equal(np.unique(image), [0, 255])
    assert (image == image[:, :, :1]).all()  # grey: R = G = B
    y, x = np.mgrid[0:256, 0:256]
    assert np.array_equal(image[:, :, 0], ((y // 32 + x // 32) % 2) * 255)
    # spot checks: black where (row // 32 + column // 32) is even
    assert image[0, 0, 0] == 0 and image[31, 31, 0] == 0
    assert image[0, 32, 0] == 255 and image[32, 0, 0] == 255
    assert image[40, 70, 0] == 255 and image[100, 180, 0] == 0


def test_scene_looks_like_a_photo():
    image = pixels("scene.png").astype(int)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 5000
    sky, ground = image[:20].mean(axis=(0, 1)), image[-20:].mean(axis=(0, 1))
    assert sky[2] > sky[0] + 40  # blue sky above
    assert ground[1] > ground[0] + 20 and ground[1] > ground[2] + 20  # green hills below


def test_shapes_come_in_saturated_colours():
    image = pixels("shapes.png").astype(int)
    saturation = image.max(axis=2) - image.min(axis=2)
    strong = image[saturation > 150]
    hues = {tuple(c) for c in (strong // 64)}  # coarse colour classes among saturated pixels
    assert len(hues) >= 5
    assert np.array_equal(image[0, 128], [245, 242, 234])  # the light background


def test_gradients_ramp_smoothly():
    image = pixels("gradients.png").astype(int)
    red_row, blue_column = image[64, :128, 0], image[128:, 64, 1]
    assert red_row[0] < 10 and red_row[-1] > 245
    assert (np.diff(red_row) >= 0).all() and np.abs(np.diff(red_row)).max() <= 4
    blue = image[:128, 192]
    assert (blue[:, 2] > 245).all() and blue[0, 0] > 245 and blue[-1, 0] < 10
    assert (np.diff(blue[:, 0]) <= 0).all()
    assert len(np.unique(blue_column)) > 20  # the radial quadrant varies down its middle


def test_digits_are_dark_strokes_on_white():
    image = pixels("digits.png")
    dark = image.max(axis=2) < 100
    assert 0.05 < dark.mean() < 0.3
    assert (image[0] == 255).all() and (image[:, 0] == 255).all()  # a white margin
    rows = dark.any(axis=1)
    assert rows[30] and rows[120] and rows[200]  # two rows of digits and the word


# --------------------------------------------------------------------------------- generator

def test_generate_reproduces_the_bundled_images(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    subprocess.run([sys.executable, str(SAMPLES / "generate.py"), str(tmp_path)],
                   capture_output=True, text=True, cwd=tmp_path, env=env, check=True)
    assert (tmp_path / "index.json").read_text(encoding="utf-8") == \
        (SAMPLES / "index.json").read_text(encoding="utf-8")
    for entry in INDEX:
        assert np.array_equal(read_image(tmp_path / entry["file"]), pixels(entry["file"])), \
            f"{entry['file']} differs from a fresh run of generate.py: regenerate and commit it"
