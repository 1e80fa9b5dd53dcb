"""Every layer's shape, parameter and mult-add rule against hand-worked values (the lecture's
numbers among them), and the window arithmetic against a slow loop that counts windows."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from designer.core.layers import adaptive_windows
from tests.helpers import chain, graph, info


# ----------------------------------------------------------------- the lecture's examples

def test_lecture_conv_layer_32x32x3_ten_5x5_filters():
    d = chain((3, 32, 32), ("conv1", "Conv2d", {"out_channels": 10, "kernel_size": 5, "padding": 2}))
    i = info(d, "conv1")
    assert i.shape == (10, 32, 32)
    assert i.params == 10 * (5 * 5 * 3 + 1) == 760
    assert i.macs == 760 * 32 * 32
    assert i.fc_equivalent == 3072 * 10240 == 31_457_280
    derived = dict(i.derivations)
    assert derived["output height and width"] == "(32 − 5 + 2·2)/1 + 1 = 32"
    assert derived["parameters"] == "10·(5·5·3 + 1) = 760"
    assert "31,457,280" in derived["fully connected equivalent"]
    assert i.activation_bytes == 10 * 32 * 32 * 4


@pytest.mark.parametrize("stride, size", [(1, 5), (2, 3), (3, 2)])
def test_lecture_7x7_input_3x3_filter_strides(stride, size):
    d = chain((1, 7, 7), ("c", "Conv2d", {"out_channels": 1, "kernel_size": 3, "stride": stride}))
    i = info(d, "c")
    assert i.shape == (1, size, size)
    assert bool(i.warnings) == (stride == 3)


def test_lecture_1x1_convolution():
    d = chain((64, 56, 56), ("c", "Conv2d", {"out_channels": 32, "kernel_size": 1}))
    i = info(d, "c")
    assert (i.shape, i.params) == ((32, 56, 56), 32 * (64 + 1))


def test_lecture_two_3x3_convolutions_see_5x5():
    d = chain((1, 15, 15), ("a", "Conv2d", {"out_channels": 1, "kernel_size": 3}),
              ("b", "Conv2d", {"out_channels": 1, "kernel_size": 3}))
    assert info(d, "a").field.size == (3, 3)
    assert info(d, "b").field.size == (5, 5)
    assert info(d, "b").field.start == (2.0, 2.0)


# ----------------------------------------------------------------- convolution

def test_conv_no_bias_rectangular_kernel_and_stride():
    d = chain((3, 20, 30), ("c", "Conv2d", {"out_channels": 8, "kernel_size": [3, 5],
                                           "stride": [1, 2], "padding": [1, 0], "bias": False}))
    i = info(d, "c")
    # height (20 − 3 + 2)/1 + 1 = 20, width (30 − 5 + 0)/2 + 1 = 13.5 → 13
    assert i.shape == (8, 20, 13)
    assert i.params == 8 * 3 * 5 * 3
    assert i.macs == i.params * 20 * 13


def test_conv_dilation():
    d = chain((1, 32, 32), ("c", "Conv2d", {"out_channels": 4, "kernel_size": 3, "dilation": 2}))
    i = info(d, "c")
    assert i.shape == (4, 28, 28)  # effective kernel 2·(3 − 1) + 1 = 5
    assert i.field.size == (5, 5)
    assert dict(i.derivations)["output height and width"] == "(32 + 2·0 − 2·(3 − 1) − 1)/1 + 1 = 28"


def test_depthwise_and_grouped_convolution():
    d = chain((32, 14, 14), ("dw", "Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1,
                                             "groups": 32}),
              ("g", "Conv2d", {"out_channels": 64, "kernel_size": 1, "groups": 4}))
    assert info(d, "dw").params == 32 * (3 * 3 * 1 + 1)
    assert info(d, "g").params == 64 * (1 * 1 * 8 + 1)
    assert dict(info(d, "dw").derivations)["parameters"] == "32·(3·3·32/32 + 1) = 320"


@pytest.mark.parametrize("kernel, dilation, n", [(4, 1, 9), (3, 2, 10), (2, 1, 5), (5, 1, 8)])
def test_same_padding_keeps_size_and_splits_odd_padding_like_pytorch(kernel, dilation, n):
    d = chain((2, n, n), ("c", "Conv2d", {"out_channels": 3, "kernel_size": kernel,
                                         "padding": "same", "dilation": dilation}))
    i = info(d, "c")
    assert i.shape == (3, n, n)
    total = dilation * (kernel - 1)
    left = total // 2  # PyTorch puts the smaller half first
    assert i.field.start[0] == (total / 2) - left
    assert i.field.size[0] == total + 1


def test_valid_padding_means_none():
    d = chain((1, 10, 10), ("c", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": "valid"}))
    assert info(d, "c").shape == (1, 8, 8)


# ----------------------------------------------------------------- pooling

def test_maxpool_stride_defaults_to_kernel():
    d = chain((64, 224, 224), ("p", "MaxPool2d", {"kernel_size": 2}))
    i = info(d, "p")
    assert (i.shape, i.params, i.macs) == ((64, 112, 112), 0, 0)


def test_ceil_mode_rounds_up():
    d = chain((1, 5, 5), ("p", "MaxPool2d", {"kernel_size": 2, "ceil_mode": True}))
    i = info(d, "p")
    assert i.shape == (1, 3, 3)
    assert not i.warnings


def test_ceil_mode_drops_last_window_starting_in_padding():
    # (5 + 2 − 2)/2 + 1 = 3.5 → ceil 4, but the 4th window would start at 6 − 1 = 5, in the padding
    d = chain((1, 5, 5), ("p", "MaxPool2d", {"kernel_size": 2, "padding": 1, "ceil_mode": True}))
    i = info(d, "p")
    assert i.shape == (1, 3, 3)
    assert "drops a last window" in dict(i.derivations)["output height and width"]


def test_avgpool_count_include_pad_does_not_change_shape():
    for include in (True, False):
        d = chain((3, 7, 7), ("p", "AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1,
                                                "count_include_pad": include}))
        assert info(d, "p").shape == (3, 4, 4)


def test_maxpool_dilation():
    d = chain((1, 10, 10), ("p", "MaxPool2d", {"kernel_size": 2, "stride": 1, "dilation": 3}))
    assert info(d, "p").shape == (1, 7, 7)


def test_adaptive_avg_pool_windows_overlap_like_pytorch():
    assert adaptive_windows(5, 3) == [(0, 2), (1, 4), (3, 5)]
    assert adaptive_windows(7, 1) == [(0, 7)]
    assert adaptive_windows(4, 8)[:3] == [(0, 1), (0, 1), (1, 2)]
    d = chain((512, 7, 7), ("a", "AdaptiveAvgPool2d", {"output_size": 1}))
    i = info(d, "a")
    assert i.shape == (512, 1, 1)
    assert i.field.size == (7, 7)
    d = chain((8, 13, 10), ("a", "AdaptiveAvgPool2d", {"output_size": [6, 5]}))
    assert info(d, "a").shape == (8, 6, 5)


# ----------------------------------------------------------------- the rest

def test_norms_linear_flatten_and_activations():
    d = chain((64, 8, 8),
              ("bn", "BatchNorm2d", {}),
              ("bn_plain", "BatchNorm2d", {"affine": False}),
              ("ln", "LayerNorm", {}),
              ("act", "LeakyReLU", {"negative_slope": 0.2}),
              ("gelu", "GELU", {}), ("sig", "Sigmoid", {}), ("tanh", "Tanh", {}),
              ("drop", "Dropout", {"p": 0.1}), ("soft", "Softmax", {}),
              ("flat", "Flatten", {}),
              ("fc", "Linear", {"out_features": 10}),
              ("fc_nb", "Linear", {"out_features": 5, "bias": False}),
              ("ln_flat", "LayerNorm", {"elementwise_affine": False}))
    a = {n: info(d, n) for n in d.node_ids}
    assert (a["bn"].shape, a["bn"].params, a["bn"].macs) == ((64, 8, 8), 128, 128)
    assert a["bn_plain"].params == 0
    assert a["ln"].params == 2 * 64 * 8 * 8
    for n in ("act", "gelu", "sig", "tanh", "drop", "soft"):
        assert (a[n].shape, a[n].params) == ((64, 8, 8), 0)
    assert a["flat"].shape == (4096,)
    assert a["flat"].field is None
    assert (a["fc"].shape, a["fc"].params, a["fc"].macs) == ((10,), 10 * 4097, 10 * 4097)
    assert a["fc_nb"].params == 50
    assert (a["ln_flat"].shape, a["ln_flat"].params) == ((5,), 0)


def test_add_and_concat():
    d = graph([("input", "Input", {"channels": 3, "height": 8, "width": 8}),
               ("a", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
               ("b", "Conv2d", {"out_channels": 6, "kernel_size": 1}),
               ("c", "Conv2d", {"out_channels": 4, "kernel_size": 5, "padding": 2}),
               ("sum", "Add", {}), ("cat", "Concat", {})],
              [("input", "a"), ("input", "b"), ("input", "c"), ("a", "sum"), ("c", "sum"),
               ("b", "cat"), ("a", "cat"), ("c", "cat")])
    s, c = info(d, "sum"), info(d, "cat")
    assert s.shape == (4, 8, 8)
    assert s.field.size == (5, 5)  # the wider of the two paths
    assert c.shape == (6 + 4 + 4, 8, 8)
    assert dict(c.derivations)["output channels"] == "6 + 4 + 4 = 14"


def test_concat_of_flat_vectors_like_torch_cat():
    d = graph([("input", "Input", {"channels": 1, "height": 2, "width": 2}), ("f", "Flatten", {}),
               ("x", "Linear", {"out_features": 3}), ("y", "Linear", {"out_features": 5}),
               ("cat", "Concat", {})],
              [("input", "f"), ("f", "x"), ("f", "y"), ("x", "cat"), ("y", "cat")])
    assert info(d, "cat").shape == (8,)


# ----------------------------------------------------------------- against a slow reference

def count_windows(n, k, s, p, d, ceil_mode):
    """Count window positions one by one along an axis padded by p on both sides (length n + 2p).
    Floor mode: a window must lie inside the padded input. Ceil mode (PyTorch): a last partial
    window may hang over the padded end by less than a stride, but must start in the input or
    the left padding."""
    eff = d * (k - 1) + 1
    length = n + 2 * p
    count = 0
    start = 0
    while True:
        end = start + eff  # exclusive
        inside = end <= length
        partial = ceil_mode and end - length < s and start < n + p
        if not (inside or partial):
            break
        count += 1
        start += s
    return count


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 7), s=st.integers(1, 5), d=st.integers(1, 3),
       ceil_mode=st.booleans(), pool=st.booleans(), data=st.data())
def test_window_count_matches_slow_reference(n, k, s, d, ceil_mode, pool, data):
    p = data.draw(st.integers(0, k // 2 if pool else k + 1))
    if pool:
        layer = ("l", "MaxPool2d", {"kernel_size": k, "stride": s, "padding": p, "dilation": d,
                                    "ceil_mode": ceil_mode})
    else:
        ceil_mode = False
        layer = ("l", "Conv2d", {"out_channels": 2, "kernel_size": k, "stride": s, "padding": p,
                                 "dilation": d})
    expected = count_windows(n, k, s, p, d, ceil_mode)
    i = info(chain((1, n, n), layer), "l")
    if expected < 1:
        assert i.shape is None and any(e.code == "output-too-small" for e in i.errors)
    else:
        assert i.shape == (1 if pool else 2, expected, expected)


def reference_field(layers, unit):
    """Input positions (padding included, maps taken as unbounded) that reach output ``unit``,
    found by walking every kernel tap back through every layer."""
    positions = {unit}
    for k, s, p, d in reversed(layers):
        positions = {u * s - p + j * d for u in positions for j in range(k)}
    return min(positions), max(positions)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2),
                          st.integers(1, 2)), min_size=1, max_size=5))
def test_receptive_field_matches_walking_every_tap_back(layers):
    layers = [(k, s, min(p, k - 1), d) for k, s, p, d in layers]
    # large enough for at least two output units
    n = math.prod(s for _, s, _, _ in layers) * (2 + sum(d * (k - 1) + 1 for k, _, _, d in layers))
    spec = [(f"l{i}", "Conv2d", {"out_channels": 1, "kernel_size": k, "stride": s, "padding": p,
                                 "dilation": d}) for i, (k, s, p, d) in enumerate(layers)]
    f = info(chain((1, n, n), *spec), f"l{len(layers) - 1}").field
    lo0, hi0 = reference_field(layers, 0)
    lo1, _ = reference_field(layers, 1)
    assert f.size[0] == hi0 - lo0 + 1
    assert f.start[0] == (lo0 + hi0) / 2
    assert f.jump[0] == lo1 - lo0


def test_receptive_field_over_two_paths_is_the_union():
    # one path: 3×3 conv padding 1 (window −1..1); other: 5×5 conv stride 1 padding 0 then nothing
    d = graph([("input", "Input", {"channels": 1, "height": 9, "width": 9}),
               ("a", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1}),
               ("a2", "Conv2d", {"out_channels": 1, "kernel_size": 3, "padding": 1}),
               ("b", "Conv2d", {"out_channels": 1, "kernel_size": 5, "padding": 2}),
               ("sum", "Add", {})],
              [("input", "a"), ("a", "a2"), ("input", "b"), ("a2", "sum"), ("b", "sum")])
    lo_a, hi_a = reference_field([(3, 1, 1, 1), (3, 1, 1, 1)], 0)
    lo_b, hi_b = reference_field([(5, 1, 2, 1)], 0)
    f = info(d, "sum").field
    assert f.size[0] == max(hi_a, hi_b) - min(lo_a, lo_b) + 1
    assert f.start[0] == (max(hi_a, hi_b) + min(lo_a, lo_b)) / 2


def test_layer_norm_on_maps_sees_the_whole_input():
    d = chain((2, 6, 6), ("c", "Conv2d", {"out_channels": 2, "kernel_size": 3}), ("ln", "LayerNorm", {}))
    f = info(d, "ln").field
    assert f.size == (6, 6)  # every output depends on every input pixel
    assert f.jump == (0, 0)


def test_mult_adds_follow_torchinfo_convention():
    d = chain((3, 8, 8), ("c", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
              ("p", "MaxPool2d", {"kernel_size": 2}), ("f", "Flatten", {}),
              ("fc", "Linear", {"out_features": 7}))
    c, fc = info(d, "c"), info(d, "fc")
    assert c.macs == (4 * 3 * 3 * 3 + 4) * 6 * 6
    assert fc.macs == 7 * 36 + 7
    assert info(d, "p").macs == 0
    assert math.prod(info(d, "f").shape) == 36


@pytest.mark.parametrize("n, out", [(10, 3), (8, 3), (13, 6), (14, 7), (5, 4)])
def test_adaptive_pool_jump_is_the_distance_between_window_centres(n, out):
    windows = adaptive_windows(n, out)
    centres = [(b + e - 1) / 2 for b, e in windows]
    f = info(chain((1, n, n), ("a", "AdaptiveAvgPool2d", {"output_size": out})), "a").field
    assert f.jump[0] == centres[1] - centres[0]
    assert f.start[0] == centres[0]
    assert f.size[0] == max(e - b for b, e in windows)
