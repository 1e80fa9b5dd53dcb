"""Classic filters: each kernel's response on made-up images (against a slow cross-correlation
written here), shapes and scale for every kernel size, and putting them into a design's first
convolution."""
from __future__ import annotations

import numpy as np
import pytest

from designer.core.analysis import Analysis
from designer.engine.classic import apply_classic_filters, classic_kernels, first_convolution
from designer.engine.network import build
from designer.engine.weights import expected_tensors, init_weights
from tests.helpers import chain, graph

SIZES = [(1, 1), (2, 2), (3, 3), (5, 5), (7, 7), (11, 11), (2, 4), (1, 5), (5, 1)]
GREY = ["vertical edge", "horizontal edge", "diagonal edge /", "diagonal edge \\",
        "centre–surround", "blur"]
COLOUR = ["red − green", "blue − yellow", "green − magenta"]
FLAT = 1e-6


def correlate(image, kernel):
    """What a CNN computes: out[i, j] = Σ_c,u,v k[c, u, v] · image[c, i + u, j + v] (no padding,
    no flipping), one loop per term."""
    c, h, w = image.shape
    _, kh, kw = kernel.shape
    out = np.zeros((h - kh + 1, w - kw + 1))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            total = 0.0
            for ch in range(c):
                for u in range(kh):
                    for v in range(kw):
                        total += float(kernel[ch, u, v]) * float(image[ch, i + u, j + v])
            out[i, j] = total
    return out


def kernels(in_channels, kh, kw):
    return dict(classic_kernels(in_channels, kh, kw))


def step(size, rows=False, channels=1):
    """0 on the left (top) half, 1 on the right (bottom) half."""
    image = np.zeros((channels, size, size))
    if rows:
        image[:, size // 2:, :] = 1
    else:
        image[:, :, size // 2:] = 1
    return image


def test_correlate_reference_does_not_flip():
    image = np.arange(9.0).reshape(1, 3, 3)
    kernel = np.zeros((1, 2, 2))
    kernel[0, 0, 1] = 1  # picks the top-right pixel of each window
    np.testing.assert_array_equal(correlate(image, kernel), [[1, 2], [4, 5]])


# ---------------------------------------------------------------------- responses


@pytest.mark.parametrize("size", [2, 3, 5, 7])
@pytest.mark.parametrize("channels", [1, 3])
def test_vertical_edge_finds_vertical_steps_only(size, channels):
    k = kernels(channels, size, size)["vertical edge"]
    image = step(16, channels=channels)
    r = correlate(image, k)
    on_step = list(range(8 - size + 1, 8))  # windows holding both sides of column 7 | 8
    flat = [j for j in range(r.shape[1]) if j not in on_step]
    assert r.max() == pytest.approx(0.5, abs=1e-5)  # all the positive weights on the bright side
    assert r[:, on_step].min() > 0.05
    assert np.abs(r[:, flat]).max() < FLAT
    np.testing.assert_allclose(correlate(1 - image, k), -r, atol=FLAT)  # bright to dark: negative
    assert np.abs(correlate(step(16, rows=True, channels=channels), k)).max() < FLAT


@pytest.mark.parametrize("size", [2, 3, 5, 7])
def test_horizontal_edge_finds_horizontal_steps_only(size):
    k = kernels(1, size, size)["horizontal edge"]
    r = correlate(step(16, rows=True), k)
    assert r.max() == pytest.approx(0.5, abs=1e-5)
    assert r.min() > -FLAT
    assert np.abs(r[:8 - size + 1]).max() < FLAT and np.abs(r[8:]).max() < FLAT
    assert np.abs(correlate(step(16), k)).max() < FLAT


@pytest.mark.parametrize("size", [2, 3, 5])
def test_diagonal_edges_tell_the_two_diagonals_apart(size):
    i, j = np.mgrid[0:14, 0:14]
    towards_bottom_right = (i + j > 13).astype(float)[None]  # a boundary running along /
    towards_top_right = (j - i > 0).astype(float)[None]  # a boundary running along \
    k = kernels(1, size, size)
    rising, falling = k["diagonal edge /"], k["diagonal edge \\"]
    assert correlate(towards_bottom_right, rising).max() > 0.3
    assert np.abs(correlate(towards_bottom_right, falling)).max() < FLAT
    assert correlate(towards_top_right, falling).max() > 0.3
    assert np.abs(correlate(towards_top_right, rising)).max() < FLAT


@pytest.mark.parametrize("size", [3, 5, 7])
def test_centre_surround_answers_a_bright_spot(size):
    image = np.zeros((1, 15, 15))
    image[0, 7, 7] = 1
    r = correlate(image, kernels(1, size, size)["centre–surround"])
    centre = 7 - size // 2
    assert r.argmax() == np.ravel_multi_index((centre, centre), r.shape)
    assert r[centre, centre] > 0.1
    edge = size // 2  # the spot at the window's rim: in the surround
    assert min(r[centre, centre + edge], r[centre - edge, centre]) < -0.01


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("kh, kw", [(1, 1), (3, 3), (5, 5), (2, 4), (1, 5)])
def test_constant_images_blur_to_themselves_and_vanish_under_every_other_kernel(channels, kh, kw):
    image = np.full((channels, 8, 8), 0.7)
    for name, k in classic_kernels(channels, kh, kw):
        r = correlate(image, k)
        if name in ("blur", "brightness"):
            assert float(k.sum()) == pytest.approx(1, abs=1e-6)
            np.testing.assert_allclose(r, 0.7, atol=1e-6)
        else:
            assert abs(float(k.sum())) < 1e-6
            assert np.abs(r).max() < FLAT, name


@pytest.mark.parametrize("kh, kw", [(1, 1), (3, 3), (5, 5)])
def test_colour_opponents_answer_their_colours_and_ignore_grey(kh, kw):
    k = kernels(3, kh, kw)

    def response(name, rgb):
        return correlate(np.ones((3, 6, 6)) * np.asarray(rgb, float)[:, None, None], k[name])

    for name, positive, negative in [("red − green", (1, 0, 0), (0, 1, 0)),
                                     ("blue − yellow", (0, 0, 1), (1, 1, 0)),
                                     ("green − magenta", (0, 1, 0), (1, 0, 1))]:
        assert response(name, positive).min() > 0.2, name
        assert response(name, negative).max() < -0.2, name
        for grey in (0.0, 0.4, 1.0):
            assert np.abs(response(name, (grey, grey, grey))).max() < FLAT, name


@pytest.mark.parametrize("channels", [1, 2, 4, 16])
def test_no_colour_kernels_without_three_channels(channels):
    assert not set(kernels(channels, 3, 3)) & set(COLOUR)
    assert not set(kernels(channels, 1, 1)) & set(COLOUR)


def test_grey_kernels_are_spread_equally_over_rgb():
    grey, rgb = kernels(1, 5, 5), kernels(3, 5, 5)
    for name in GREY:
        for channel in range(3):
            np.testing.assert_allclose(rgb[name][channel], grey[name][0] / 3, atol=1e-7)


# ---------------------------------------------------------------------- shapes and scale


@pytest.mark.parametrize("channels", [1, 3, 2])
@pytest.mark.parametrize("kh, kw", SIZES)
def test_shapes_scale_and_distinct_kernels(channels, kh, kw):
    named = classic_kernels(channels, kh, kw)
    names = [n for n, _ in named]
    assert len(names) == len(set(names)) and named
    flat = []
    for name, k in named:
        assert k.shape == (channels, kh, kw) and k.dtype == np.float32
        assert np.isfinite(k).all()
        assert float(np.abs(k).sum()) == pytest.approx(1, abs=1e-5), name
        flat.append(k.ravel() / np.linalg.norm(k))
    similarity = np.abs(np.array(flat) @ np.array(flat).T) - np.eye(len(flat))
    assert similarity.max() < 0.99, "two kernels are the same up to scale"
    assert bool(set(names) & set(COLOUR)) == (channels == 3)


@pytest.mark.parametrize("channels", [1, 3])
def test_one_by_one_keeps_only_what_needs_no_space(channels):
    names = [n for n, _ in classic_kernels(channels, 1, 1)]
    assert names == ["brightness"] + (COLOUR if channels == 3 else [])


def test_what_each_size_can_hold():
    assert [n for n, _ in classic_kernels(1, 3, 3)] == GREY
    assert ([n for n, _ in classic_kernels(3, 3, 3)]
            == GREY[:2] + COLOUR[:2] + GREY[2:] + COLOUR[2:])
    assert [n for n, _ in classic_kernels(1, 1, 5)] == ["vertical edge", "centre–surround", "blur"]
    assert [n for n, _ in classic_kernels(1, 5, 1)] == ["horizontal edge", "centre–surround",
                                                       "blur"]
    # every pixel of a 2×2 kernel is as far from its middle: no centre, no surround
    assert "centre–surround" not in kernels(1, 2, 2)
    assert [n for n, _ in classic_kernels(1, 2, 4)] == GREY


def test_even_and_odd_sizes_are_centred():
    for kh, kw in [(4, 4), (5, 5), (2, 6)]:
        k = kernels(1, kh, kw)
        np.testing.assert_allclose(k["blur"], k["blur"][:, ::-1, ::-1], atol=1e-7)
        np.testing.assert_allclose(k["vertical edge"], -k["vertical edge"][:, :, ::-1], atol=1e-7)


def test_impossible_sizes_are_refused():
    with pytest.raises(ValueError):
        classic_kernels(0, 3, 3)
    with pytest.raises(ValueError):
        classic_kernels(1, 0, 3)


# ---------------------------------------------------------------------- into a design


def net_design(filters=16, kernel=3, channels=3, groups=1):
    return chain((channels, 12, 12),
                 ("conv", "Conv2d", {"out_channels": filters, "kernel_size": kernel,
                                     "groups": groups}),
                 ("relu", "ReLU", {}),
                 ("conv2", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
                 ("flat", "Flatten", {}),
                 ("fc", "Linear", {"out_features": 3}))


def start_weights(design):
    weights = init_weights(expected_tensors(Analysis(design)), seed=5)
    weights["conv.bias"] = np.linspace(1, 2, weights["conv.bias"].size).astype(np.float32)
    return weights


def start_weights_without_bias(design):
    return init_weights(expected_tensors(Analysis(design)), seed=1)


@pytest.mark.parametrize("filters", [16, 4])
def test_apply_replaces_the_first_filters_only(filters):
    design = net_design(filters)
    weights = start_weights(design)
    before = {k: v.copy() for k, v in weights.items()}
    new, node, names = apply_classic_filters(weights, Analysis(design))
    expected = classic_kernels(3, 3, 3)
    n = min(filters, len(expected))
    assert node == "conv"
    assert names == [name for name, _ in expected][:n]
    assert new is not weights and set(new) == set(weights)
    for index, (_, kernel) in enumerate(expected[:n]):
        np.testing.assert_array_equal(new["conv.weight"][index], kernel)
    np.testing.assert_array_equal(new["conv.weight"][n:], before["conv.weight"][n:])
    np.testing.assert_array_equal(new["conv.bias"][:n], 0)
    np.testing.assert_array_equal(new["conv.bias"][n:], before["conv.bias"][n:])
    for key in set(weights) - {"conv.weight", "conv.bias"}:
        np.testing.assert_array_equal(new[key], before[key])
    for key, value in weights.items():  # the given mapping is untouched
        np.testing.assert_array_equal(value, before[key])


def test_the_network_runs_with_classic_filters_and_shows_the_step():
    design = net_design(12)
    new, _, names = apply_classic_filters(start_weights(design), Analysis(design))
    image = step(12, channels=3)[None].astype(np.float32)
    maps = build(design, weights=new).forward(image)["conv"][0]
    vertical = maps[names.index("vertical edge")]  # columns j..j+2 of the image: step at 6
    assert np.abs(vertical[:, [0, 1, 2, 3, 6, 7, 8, 9]]).max() < FLAT
    assert vertical[:, [4, 5]].min() > 0.1
    assert np.abs(maps[names.index("horizontal edge")]).max() < FLAT
    np.testing.assert_allclose(maps[names.index("blur")][:, :4], 0, atol=FLAT)
    np.testing.assert_allclose(maps[names.index("blur")][:, 6:], 1, atol=1e-5)
    assert np.abs(maps[names.index("red − green")]).max() < FLAT  # grey image: no colour


def test_groups_give_kernels_for_the_channels_each_filter_sees():
    design = net_design(6, kernel=5, channels=4, groups=2)
    weights = start_weights(design)
    assert weights["conv.weight"].shape == (6, 2, 5, 5)
    new, node, names = apply_classic_filters(weights, Analysis(design))
    assert node == "conv" and names == GREY
    for index, (_, kernel) in enumerate(classic_kernels(2, 5, 5)):
        np.testing.assert_array_equal(new["conv.weight"][index], kernel)
    build(design, weights=new)


def test_one_by_one_convolution_and_no_bias():
    design = chain((3, 6, 6), ("mix", "Conv2d", {"out_channels": 8, "kernel_size": 1,
                                                "bias": False}))
    weights = start_weights_without_bias(design)
    new, node, names = apply_classic_filters(weights, Analysis(design))
    assert node == "mix" and names == ["brightness"] + COLOUR
    assert "mix.bias" not in new
    red = np.zeros((1, 3, 6, 6), np.float32)
    red[:, 0] = 1
    maps = build(design, weights=new).forward(red)["mix"][0]
    assert maps[0].min() == pytest.approx(1 / 3, abs=1e-6)  # brightness: the channels' average
    assert maps[1].min() > 0.2  # red − green


def test_without_a_convolution_nothing_changes():
    design = chain((3, 6, 6), ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 2}))
    weights = start_weights_without_bias(design)
    new, node, names = apply_classic_filters(weights, Analysis(design))
    assert node is None and names == []
    assert new is not weights and new.keys() == weights.keys()
    assert all(new[k] is weights[k] for k in weights)
    assert first_convolution(Analysis(design)) is None


def test_first_convolution_is_the_one_nearest_the_input():
    assert first_convolution(Analysis(net_design())) == "conv"
    d = chain((3, 8, 8), ("pool", "MaxPool2d", {"kernel_size": 2}),
              ("c1", "Conv2d", {"out_channels": 2, "kernel_size": 3}),
              ("c2", "Conv2d", {"out_channels": 2, "kernel_size": 3}))
    assert first_convolution(Analysis(d)) == "c1"
    # "far" comes first in the topological order (node order breaks ties), "near" reads the image
    d = graph([("input", "Input", {"channels": 3, "height": 8, "width": 8}),
               ("pool", "MaxPool2d", {"kernel_size": 2}),
               ("far", "Conv2d", {"out_channels": 2, "kernel_size": 1}),
               ("near", "Conv2d", {"out_channels": 2, "kernel_size": 1})],
              [("input", "pool"), ("pool", "far"), ("input", "near")])
    analysis = Analysis(d)
    assert analysis.order.index("far") < analysis.order.index("near")
    assert first_convolution(analysis) == "near"
