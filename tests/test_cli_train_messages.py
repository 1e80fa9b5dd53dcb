"""`cnn-designer train`'s refusals in plain words: an invalid design can't *train*; an unreadable
image in a data folder is named once, on one line."""
from __future__ import annotations

import json

import numpy as np

from designer.io.images import save_png
from tests.test_cli_train_data import design_file, run


def test_an_invalid_design_can_t_train(tmp_path, capsys):
    path = design_file(tmp_path)
    bad = json.loads(path.read_text())
    next(n for n in bad["nodes"] if n["type"] == "Conv2d")["params"]["kernel_size"] = 20
    path.write_text(json.dumps(bad))
    assert run(path, "--data", "builtin:digits", "--out", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "the design has errors, so it can't train:" in err and "can't run" not in err


def test_an_unreadable_image_in_a_data_folder_is_named_once_on_one_line(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(3):
            save_png(np.full((8, 8, 3), 60 * i, np.uint8), tmp_path / "data" / name / f"{i}.png")
    broken = tmp_path / "data" / "b" / "x.png"
    broken.write_bytes(b"not an image at all")
    assert run(design_file(tmp_path), "--data", tmp_path / "data", "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.count("x.png") == 1 and str(broken) in err
    assert err.count("can't be read as an image") == 1 and "remove or replace it" in err
