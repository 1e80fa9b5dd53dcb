"""`cnn-designer run` picks its weights: the trained weights that ship for a design with their
layers (contract §6), seeded random ones otherwise or when asked (--random, --seed), a file
with --weights; and says which in one line."""
from __future__ import annotations

import json

import numpy as np
import pytest

import designer
from designer.cli import main
from designer.io import trained
from designer.io.design_file import save_design
from designer.io.templates import find_template
from designer.io.trained import find_trained, list_trained
from designer.io.samples import sample_images

DIGITS = next(s.path for s in sample_images() if s.path.name == "digits.png")


def run(capsys, *args):
    code = main(["run", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def weights_used(out_dir) -> dict[str, np.ndarray]:
    with np.load(out_dir / "weights.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def shipped(template: str) -> dict[str, np.ndarray]:
    model = next(m for m in list_trained() if m.template == template)
    with np.load(model.weights, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def seeded(design, seed: int) -> dict[str, np.ndarray]:
    return designer.build(design, seed=seed).weights


@pytest.mark.parametrize("template, data", [
    ("lenet5", "builtin:digits"),
    ("cifar10-convnet", "builtin:shapes"),
])
def test_a_trained_template_runs_on_its_trained_weights_and_says_so(tmp_path, capsys, template,
                                                                    data):
    model = next(m for m in list_trained() if m.template == template)
    assert model.data == data
    accuracy = f"{100 * model.val_accuracy:.1f} %"  # the index's figure, as printed
    code, out, err = run(capsys, find_template(template).path, "--input", DIGITS,
                         "--out", tmp_path / "r")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"weights: trained on {data} (validation accuracy {accuracy})"
    assert_same(weights_used(tmp_path / "r"), shipped(template))


def test_the_trained_weights_predict_the_digit_drawn(tmp_path, capsys):
    """The shipped LeNet-5 reads a digit of the built-in data, drawn into a .npy, as that
    digit: the activations written are the trained network's."""
    from designer.data import builtin
    from designer.data.dataset import convert, input_shape

    design = find_template("lenet5").load()
    drawn = builtin.draw("digits", 0, train_size=0, val_size=20)
    x = convert(drawn.x_val[:20], input_shape(design), "digits")
    np.save(tmp_path / "x.npy", x)
    code, out, err = run(capsys, find_template("lenet5").path, "--input", tmp_path / "x.npy",
                         "--out", tmp_path / "r")
    assert code == 0, err
    with np.load(tmp_path / "r" / "activations.npz") as acts:
        predicted = np.argmax(acts["fc2"], axis=1)
    assert np.mean(predicted == drawn.y_val[:20]) >= 0.9
    # seeded weights read them no better than chance
    seeded_out = designer.build(design, seed=0).forward(x)["fc2"]
    assert np.mean(np.argmax(seeded_out, axis=1) == drawn.y_val[:20]) < 0.5


@pytest.mark.parametrize("flags, seed", [(["--random"], 0), (["--seed", "5"], 5),
                                         (["--random", "--seed", "2"], 2)])
def test_random_or_a_seed_asks_for_seeded_weights_even_where_trained_ones_ship(
        tmp_path, capsys, flags, seed):
    path = find_template("lenet5").path
    code, out, err = run(capsys, path, "--input", DIGITS, "--out", tmp_path / "r", *flags)
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith(f"weights: random (seed {seed}) — untrained; leave out --random "
                            f"and --seed to use LeNet-5's weights trained on builtin:digits")
    assert_same(weights_used(tmp_path / "r"), seeded(designer.load_design(path), seed))


def test_a_design_without_trained_weights_runs_on_seeded_ones(tmp_path, capsys):
    changed = find_template("lenet5").load()
    changed.set_param("conv1", "out_channels", 8)  # a changed LeNet-5: no trained weights fit
    assert find_trained(changed) is None
    path = tmp_path / "changed.json"
    save_design(changed, path)
    code, out, err = run(capsys, path, "--input", DIGITS, "--out", tmp_path / "r")
    assert code == 0, err
    assert out.splitlines()[0] == "weights: random (seed 0) — untrained"
    assert_same(weights_used(tmp_path / "r"), seeded(changed, 0))


def test_a_weights_file_wins_and_is_named(tmp_path, capsys):
    path = find_template("lenet5").path
    own = designer.build(designer.load_design(path), seed=11)
    own.save_weights(tmp_path / "mine.npz")
    code, out, err = run(capsys, path, "--input", DIGITS, "--out", tmp_path / "r",
                         "--weights", tmp_path / "mine.npz")
    assert code == 0, err
    assert out.splitlines()[0] == "weights: from mine.npz"
    assert_same(weights_used(tmp_path / "r"), own.weights)


def test_weights_and_random_together_are_a_usage_error(tmp_path, capsys):
    path = find_template("lenet5").path
    code, _, err = run(capsys, path, "--input", DIGITS, "--out", tmp_path / "r",
                       "--weights", tmp_path / "w.npz", "--random")
    assert code == 2
    assert "--random" in err and "not allowed with" in err
    assert not (tmp_path / "r").exists()


def test_the_same_layers_written_differently_find_the_trained_weights(tmp_path, capsys):
    """Another name, positions, defaults written out, pairs for sizes, nodes listed in
    another order: the same network, so the same trained weights."""
    data = json.loads(find_template("lenet5").path.read_text(encoding="utf-8"))
    data["name"] = "my digits"
    nodes = {n["id"]: n for n in data["nodes"]}
    nodes["conv1"]["params"].update({"stride": 1, "padding": 0, "kernel_size": [5, 5]})
    nodes["pool1"]["params"]["stride"] = 2
    for node in data["nodes"]:
        node.pop("position", None)
    data["nodes"].reverse()
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    code, out, err = run(capsys, path, "--input", DIGITS, "--out", tmp_path / "r")
    assert code == 0, err
    assert out.splitlines()[0].startswith("weights: trained on builtin:digits")
    assert_same(weights_used(tmp_path / "r"), shipped("lenet5"))


def test_missing_trained_weights_fall_back_with_a_warning(tmp_path, capsys, monkeypatch):
    """An installation without the weights file still runs, and says what happened."""
    real = list_trained()
    gone = [trained.TrainedModel(m.template, tmp_path / "gone.npz", m.classes, m.data,
                                 m.val_accuracy, m.fingerprint, m.entry) for m in real]
    monkeypatch.setattr(trained, "list_trained", lambda: gone)
    code, out, err = run(capsys, find_template("lenet5").path, "--input", DIGITS,
                         "--out", tmp_path / "r")
    assert code == 0, err
    assert "trained weights for LeNet-5 are missing" in err and "gone.npz" in err
    assert out.splitlines()[0] == "weights: random (seed 0) — untrained"


def test_help_explains_the_default_weights(capsys):
    with pytest.raises(SystemExit):
        from designer.cli import _parser_for_commands
        _parser_for_commands().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "trained weights that ship" in text
    assert "--random" in text and "asks for random weights" in text
