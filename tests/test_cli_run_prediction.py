"""`cnn-designer run` prints the top three classes of a design with one score per class, named
after the design's classes (contract §2), right after the line saying which weights it used,
and says when the weights are random; other outputs get no prediction line."""
from __future__ import annotations

import json

import numpy as np
import pytest

import designer
from designer.cli import _prediction_line, main
from designer.io.samples import sample_images
from designer.io.templates import find_template


def run(capsys, *args):
    code = main(["run", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def sample(title: str):
    return next(s for s in sample_images() if s.title == title)


@pytest.mark.parametrize("template, title", [("lenet5", "Digit 7"), ("lenet5", "Digit 2"),
                                             ("cifar10-convnet", "Shape: star")])
def test_the_trained_weights_name_the_sample_first(tmp_path, capsys, template, title):
    image = sample(title)
    code, out, err = run(capsys, find_template(template).path, "--input", image.path,
                         "--out", tmp_path / "o")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("weights: trained on")
    assert lines[1].startswith(f"prediction: {image.class_name} ")
    assert "untrained" not in lines[1]
    shown = lines[1].removeprefix("prediction: ").split(", ")
    assert len(shown) == 3
    # the percentages are the network's probabilities, largest first
    design = designer.load_design(find_template(template).path)
    net = designer.build(design, weights="trained")
    x = np.load(tmp_path / "o" / "activations.npz")["input"][:1]
    p = net.predict(x)[0]
    order = np.argsort(-p, kind="stable")[:3]
    names = design.classes
    expected = [f"{names[i]} " + ("< 0.1 %" if p[i] < 0.0005 else f"{p[i] * 100:.1f} %")
                for i in order]
    assert shown == expected


def test_random_weights_say_the_prediction_means_nothing(tmp_path, capsys):
    code, out, err = run(capsys, find_template("cifar10-convnet").path, "--input",
                         sample("Shape: star").path, "--out", tmp_path / "o", "--random")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("weights: random (seed 0)")
    assert lines[1].startswith("prediction: ")
    assert lines[1].endswith(" (untrained: predictions mean nothing)")
    assert lines[2].startswith("Ran 13 nodes")


def test_a_weights_file_makes_no_claim_and_classes_without_names_are_numbered(tmp_path, capsys):
    design = json.loads(find_template("lenet5").path.read_text())
    del design["classes"]
    design["version"] = 1
    path = tmp_path / "lenet.json"
    path.write_text(json.dumps(design))
    weights = tmp_path / "w.npz"
    designer.build(designer.load_design(path), seed=3).save_weights(weights)
    code, out, err = run(capsys, path, "--input", sample("Digit 7").path, "--weights", weights,
                         "--out", tmp_path / "o")
    assert code == 0, err
    line = out.splitlines()[1]
    assert line.startswith("prediction: class ")
    assert line.count("class ") == 3 and "untrained" not in line


def test_an_output_with_maps_gets_no_prediction_line(tmp_path, capsys):
    design = {"format": "cnn-designer", "version": 1, "name": "maps", "nodes": [
        {"id": "input", "type": "Input", "params": {"channels": 1, "height": 8, "width": 8}},
        {"id": "conv", "type": "Conv2d", "params": {"out_channels": 2, "kernel_size": 3}}],
        "edges": [["input", "conv"]]}
    path = tmp_path / "maps.json"
    path.write_text(json.dumps(design))
    code, out, err = run(capsys, path, "--input", sample("Digit 7").path, "--out", tmp_path / "o")
    assert code == 0, err
    assert "prediction" not in out
    assert out.splitlines()[1].startswith("Ran 2 nodes")


def test_a_batch_names_its_first_sample_and_bad_numbers_are_said():
    design = designer.load_design(find_template("lenet5").path)
    net = designer.build(design, weights="trained")
    logits = np.zeros((2, 10), np.float32)
    logits[0, 4] = 5.0
    line = _prediction_line(net, {"fc2": logits}, untrained=False)
    assert line.startswith("prediction (first sample): 4 ")
    logits[0, 1] = np.nan
    assert _prediction_line(net, {"fc2": logits[:1]}, untrained=True) == (
        "prediction: none — the output holds inf or NaN (untrained: predictions mean nothing)")
