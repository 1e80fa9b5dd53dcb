"""`cnn-designer train --schedule/--step-size/--gamma, --clip-norm, --augment`: each gives the
weights `designer.train` gives with the same option, and not those without it; an .npz whose
images have a channel count the design's Input can't take is a design unfit for the data (exit
1, contract §4), told apart from a bad file (exit 2)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import designer
from designer.cli import _parser_for_commands, main
from designer.engine.optim import CosineAnnealingLR, StepLR
from tests.test_cli_train import design_dict
from tests.train.test_loop import stripes

EPOCHS, BATCH = 3, 64


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train-options")
    design = folder / "tiny.json"
    design.write_text(json.dumps(design_dict()))
    x, y = stripes(160, 1)
    data = folder / "stripes.npz"
    np.savez(data, x=x, y=y)
    return design, data


def cli_weights(tmp_path, files, *extra) -> dict[str, np.ndarray]:
    design, data = files
    out = tmp_path / ("out" + "".join(str(e) for e in extra).replace("-", "_"))
    assert main(["train", str(design), "--data", str(data), "--out", str(out), "--epochs",
                 str(EPOCHS), "--batch-size", str(BATCH), "--lr", "0.05", "--optimizer", "sgd",
                 *map(str, extra)]) == 0
    with np.load(out / "weights.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def api_weights(files, schedule=None, **options) -> dict[str, np.ndarray]:
    """The same run through the Python API, written independently of the command line."""
    design_path, data_path = files
    design = designer.load_design(design_path)
    net = designer.build(design, seed=0)
    data = designer.load_dataset(data_path, design, seed=0)
    optimizer = designer.SGD(lr=0.05, momentum=0.9)
    if schedule is not None:
        schedule = schedule(optimizer)
    designer.train(net, data, epochs=EPOCHS, batch_size=BATCH, optimizer=optimizer, seed=0,
                   schedule=schedule, **options)
    return net.weights


def same(a, b) -> bool:
    return set(a) == set(b) and all(np.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in a)


def test_without_options_the_cli_is_the_plain_api_run(tmp_path, files):
    assert same(cli_weights(tmp_path, files), api_weights(files))


@pytest.mark.parametrize("extra, schedule", [
    (["--schedule", "step", "--step-size", "1", "--gamma", "0.5"],
     lambda opt: StepLR(opt, step_size=1, gamma=0.5)),
    (["--schedule", "step"], lambda opt: StepLR(opt, step_size=1, gamma=0.1)),  # 3 epochs // 3
    (["--schedule", "cosine"], lambda opt: CosineAnnealingLR(opt, T_max=EPOCHS)),
], ids=["step-1-0.5", "step-defaults", "cosine"])
def test_a_schedule_gives_the_api_s_weights(tmp_path, files, extra, schedule):
    got = cli_weights(tmp_path, files, *extra)
    assert same(got, api_weights(files, schedule=schedule))
    assert not same(got, api_weights(files))  # the schedule changed something


def test_clip_norm_gives_the_api_s_weights(tmp_path, files):
    got = cli_weights(tmp_path, files, "--clip-norm", "0.05")
    assert same(got, api_weights(files, clip_norm=0.05))
    assert not same(got, api_weights(files))


def test_augment_gives_the_api_s_weights(tmp_path, files):
    got = cli_weights(tmp_path, files, "--augment")
    assert same(got, api_weights(files, augment=True))
    assert not same(got, api_weights(files))


@pytest.mark.parametrize("extra, message", [
    (["--step-size", "2"], "--step-size set(s) the step schedule; add --schedule step"),
    (["--schedule", "cosine", "--gamma", "0.5"], "--gamma set(s) the step schedule"),
    (["--schedule", "warm"], "invalid choice: 'warm'"),
    (["--clip-norm", "0"], "expected a number above 0"),
    (["--clip-norm", "nan"], "expected a number above 0"),
    (["--gamma", "-1", "--schedule", "step"], "expected a number above 0"),
    (["--step-size", "0", "--schedule", "step"], "expected a whole number, 1 or more"),
])
def test_bad_schedule_and_clipping_options_exit_2(tmp_path, files, capsys, extra, message):
    design, data = files
    code = main(["train", str(design), "--data", str(data), "--out", str(tmp_path / "o"),
                 *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "weights.npz").exists()


def test_help_describes_each_option(capsys):
    with pytest.raises(SystemExit):
        _parser_for_commands().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("--schedule {none,step,cosine}", "multiplied by --gamma every --step-size",
                   "down to 0 along a half cosine", "combined 2-norm is at most X",
                   "shift each training image by a few pixels"):
        assert phrase in text, phrase


# ------------------------------------------------------------------ channels: exit 1, not 2

@pytest.mark.parametrize("design_channels, data_channels", [(1, 2), (3, 4), (4, 1), (1, 4)])
def test_npz_images_whose_channels_the_input_cant_take_exit_1(tmp_path, capsys,
                                                               design_channels, data_channels):
    design = tmp_path / "d.json"
    design.write_text(json.dumps(design_dict(channels=design_channels)))
    x, y = stripes(40, 0)
    data = tmp_path / "d.npz"
    np.savez(data, x=np.repeat(x, data_channels, axis=1), y=y)
    assert main(["train", str(design), "--data", str(data), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    noun = "channel" if data_channels == 1 else "channels"
    assert (f"d.npz: the images have {data_channels} {noun}, but the design's Input takes "
            f"{design_channels}") in err
    assert f"set the Input's channels to {data_channels}" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("design_channels, data_channels", [(1, 3), (3, 1), (4, 4)])
def test_npz_images_whose_channels_convert_train(tmp_path, capsys, design_channels,
                                                 data_channels):
    design = tmp_path / "d.json"
    design.write_text(json.dumps(design_dict(channels=design_channels)))
    x, y = stripes(40, 0)
    data = tmp_path / "d.npz"
    np.savez(data, x=np.repeat(x, data_channels, axis=1), y=y)
    assert main(["train", str(design), "--data", str(data), "--out", str(tmp_path / "o"),
                 "--epochs", "1"]) == 0, capsys.readouterr().err


def test_a_broken_npz_is_still_a_bad_file_exit_2(tmp_path, capsys):
    """The header check leaves files it can't read, or whose x isn't images, to the loader."""
    design = tmp_path / "d.json"
    design.write_text(json.dumps(design_dict(channels=1)))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    flat = tmp_path / "flat.npz"
    np.savez(flat, x=np.zeros((4, 2, 8), np.float32), y=np.zeros(4, np.int64))
    for path in (broken, flat):
        assert main(["train", str(design), "--data", str(path), "--out",
                     str(tmp_path / "o")]) == 2
        assert capsys.readouterr().err.startswith("cnn-designer: ")
