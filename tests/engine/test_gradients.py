"""net.gradients (contract §5, §6): every weight gradient against central finite differences of
a float64 reference forward pass written here independently, as slow loops; the loss against
a direct log-softmax formula; refusals of outputs and labels that can't be trained."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import designer
from designer.engine.training import TrainingError, cross_entropy
from tests.helpers import chain, graph


# ------------------------------------------------------------ float64 reference, slow loops

def ref_conv(x, weight, bias, stride, padding, dilation, groups):
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    if padding == "same":
        th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
        pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    else:
        pads = (padding[0], padding[0], padding[1], padding[1])
    xp = np.zeros((n, c, h + pads[0] + pads[1], w + pads[2] + pads[3]))
    xp[:, :, pads[0]:pads[0] + h, pads[2]:pads[2] + w] = x
    oh = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, k, oh, ow))
    kg = k // groups
    for o in range(k):
        g = o // kg
        for i in range(oh):
            for j in range(ow):
                r, q = i * stride[0], j * stride[1]
                patch = xp[:, g * cg:(g + 1) * cg,
                           r:r + dilation[0] * (kh - 1) + 1:dilation[0],
                           q:q + dilation[1] * (kw - 1) + 1:dilation[1]]
                out[:, o, i, j] = (patch * weight[o]).sum(axis=(1, 2, 3))
        if bias is not None:
            out[:, o] += bias[o]
    return out


def ref_max_pool(x, k):
    n, c, h, w = x.shape
    out = np.zeros((n, c, h // k, w // k))
    for i in range(h // k):
        for j in range(w // k):
            out[:, :, i, j] = x[:, :, i * k:(i + 1) * k, j * k:(j + 1) * k].max(axis=(2, 3))
    return out


def ref_batch_norm_train(x, weight, bias, eps):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y * weight.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)


def ref_layer_norm(x, weight, bias, eps):
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def ref_loss(logits, y):
    """−mean log softmax(logits)[y], straight from the formula."""
    total = 0.0
    for row, label in zip(logits, y):
        m = row.max()
        total += -(row[label] - m - np.log(np.exp(row - m).sum()))
    return total / len(y)


def ref_forward(design, weights, x, masks=None):
    """The training-mode forward pass of a chain or graph, float64, node by node."""
    net = designer.build(design)
    acts = {}
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    for node_id in net.order:
        info = net.infos[node_id]
        v, t = info.values, info.type
        srcs = [acts[s] for s in design.sources(node_id)]
        a = srcs[0] if srcs else None
        if t == "Input":
            out = x.astype(np.float64)
        elif t == "Conv2d":
            out = ref_conv(a, w[f"{node_id}.weight"], w.get(f"{node_id}.bias"), v["stride"],
                           v["padding"], v["dilation"], v["groups"])
        elif t == "Linear":
            out = a @ w[f"{node_id}.weight"].T + w.get(f"{node_id}.bias", 0.0)
        elif t == "BatchNorm2d":
            out = ref_batch_norm_train(a, w[f"{node_id}.weight"], w[f"{node_id}.bias"], v["eps"])
        elif t == "LayerNorm":
            out = ref_layer_norm(a, w[f"{node_id}.weight"], w[f"{node_id}.bias"], v["eps"])
        elif t == "Tanh":
            out = np.tanh(a)
        elif t == "ReLU":
            out = np.maximum(a, 0)
        elif t == "MaxPool2d":
            out = ref_max_pool(a, v["kernel_size"][0])
        elif t == "Flatten":
            out = a.reshape(len(a), -1)
        elif t == "Add":
            out = sum(srcs)
        elif t == "Dropout":
            out = a * masks[node_id] / (1 - v["p"])
        elif t == "Softmax":
            out = a  # fused with the loss: the logits go on
        else:
            raise AssertionError(t)
        acts[node_id] = out
    return acts[net.analysis.output]


def random_weights(net, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for key, a in net.weights.items():
        if key.endswith("running_var"):
            out[key] = rng.uniform(0.5, 2, a.shape).astype(np.float32)
        else:
            out[key] = (rng.standard_normal(a.shape) * (0.5 if a.ndim > 1 else 0.3)).astype(
                np.float32)
    return out


def check_gradients(design, x, y, seed=0, per_tensor=6, masks=None, rng=None):
    """Every tensor's gradient against central differences of the reference loss at a few
    entries (all of them for small tensors)."""
    net0 = designer.build(design)
    weights = random_weights(net0, seed)
    net = designer.build(design, weights=weights)
    loss, grads = net.gradients(x, y, rng=rng)
    assert sorted(grads) == sorted(net.weights)
    w64 = {k: v.astype(np.float64) for k, v in weights.items()}
    expected_loss = ref_loss(ref_forward(design, w64, x, masks), y)
    assert loss == pytest.approx(expected_loss, rel=2e-5, abs=2e-5)
    pick = np.random.default_rng(seed + 1)
    eps = 1e-5
    for key, g in grads.items():
        assert g.shape == weights[key].shape and g.dtype == np.float32, key
        if key.endswith(("running_mean", "running_var")):
            assert not g.any(), key  # statistics, not parameters: zero gradient
            continue
        flat = [np.unravel_index(i, g.shape) for i in
                (range(g.size) if g.size <= per_tensor
                 else pick.choice(g.size, per_tensor, replace=False))]
        for idx in flat:
            plus, minus = dict(w64), dict(w64)
            plus[key], minus[key] = w64[key].copy(), w64[key].copy()
            plus[key][idx] += eps
            minus[key][idx] -= eps
            fd = (ref_loss(ref_forward(design, plus, x, masks), y)
                  - ref_loss(ref_forward(design, minus, x, masks), y)) / (2 * eps)
            assert g[idx] == pytest.approx(fd, rel=2e-4, abs=5e-6), (key, idx, g[idx], fd)
    return loss, grads


def batch(shape, n=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n,) + tuple(shape)).astype(np.float32),
            rng.integers(0, classes, n))


# ------------------------------------------------------------ convolution, all geometries

@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if stride == (1, 1) and draw(st.booleans()):
        padding = "same"
    else:
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * (0 if padding == "same" else padding[0])), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * (0 if padding == "same" else padding[1])), 7))
    bias = draw(st.booleans())
    return dict(groups=groups, cin=cin, cout=cout, kernel=[kh, kw], dilation=[dh, dw],
                stride=list(stride), padding=padding if padding == "same" else list(padding),
                h=h, w=w, bias=bias)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases(), st.integers(0, 100))
def test_conv_weight_and_input_gradients_match_finite_differences(case, seed):
    # two convolutions in a row, so the first one's input gradient is exercised as well
    design = chain((case["cin"], case["h"], case["w"]),
                   ("conv1", "Conv2d", {"out_channels": case["cin"], "kernel_size": 1}),
                   ("conv2", "Conv2d", {"out_channels": case["cout"], "kernel_size": case["kernel"],
                                        "stride": case["stride"], "padding": case["padding"],
                                        "dilation": case["dilation"], "groups": case["groups"],
                                        "bias": case["bias"]}),
                   ("tanh", "Tanh", {}), ("flat", "Flatten", {}),
                   ("fc", "Linear", {"out_features": 3}))
    x, y = batch((case["cin"], case["h"], case["w"]), seed=seed)
    check_gradients(design, x, y, seed=seed)


def test_conv_gradient_over_several_blocks_of_rows_and_samples(monkeypatch):
    """A patch budget smaller than one sample: the backward pass goes band by band."""
    import designer.engine.ops as ops
    monkeypatch.setattr(ops, "BAND_BYTES", 600)
    design = chain((2, 6, 6), ("conv1", "Conv2d", {"out_channels": 2, "kernel_size": 3,
                                                   "padding": 1}),
                   ("conv2", "Conv2d", {"out_channels": 2, "kernel_size": 3, "stride": 2}),
                   ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 3}))
    x, y = batch((2, 6, 6), n=4)
    check_gradients(design, x, y, per_tensor=10)


# ------------------------------------------------------------ normalization, pooling, graphs

def test_batch_norm_weight_bias_and_input_gradients_through_batch_statistics():
    design = chain((3, 4, 4), ("conv", "Conv2d", {"out_channels": 3, "kernel_size": 3,
                                                  "padding": 1}),
                   ("bn", "BatchNorm2d", {}), ("tanh", "Tanh", {}),
                   ("pool", "MaxPool2d", {"kernel_size": 2}),
                   ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 4}))
    x, y = batch((3, 4, 4), n=4, classes=4)
    check_gradients(design, x, y, per_tensor=12)


def test_layer_norm_and_bias_free_linear():
    design = chain((2, 3, 3), ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 2}),
                   ("ln", "LayerNorm", {}), ("tanh", "Tanh", {}), ("flat", "Flatten", {}),
                   ("fc1", "Linear", {"out_features": 5, "bias": False}),
                   ("ln2", "LayerNorm", {}), ("fc2", "Linear", {"out_features": 3}))
    x, y = batch((2, 3, 3))
    check_gradients(design, x, y, per_tensor=10)


def test_softmax_output_is_fused_with_the_loss():
    design = chain((1, 3, 3), ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 4}),
                   ("softmax", "Softmax", {}))
    x, y = batch((1, 3, 3), classes=4)
    loss, _ = check_gradients(design, x, y, per_tensor=40)
    # and with huge logits the loss stays finite (the logits, not log of a rounded softmax)
    net = designer.build(design, weights={"fc.weight": np.full((4, 9), 1e4, np.float32),
                                          "fc.bias": np.array([0, 1e4, 0, 0], np.float32)})
    loss, grads = net.gradients(np.ones((2, 1, 3, 3), np.float32), np.array([0, 1]))
    assert loss == pytest.approx(1e4 / 2)
    assert all(np.isfinite(g).all() for g in grads.values())


def test_branches_add_and_dropout_with_a_seeded_mask():
    design = graph([("input", "Input", {"channels": 2, "height": 4, "width": 4}),
                    ("a", "Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}),
                    ("b", "Conv2d", {"out_channels": 2, "kernel_size": 1}),
                    ("add", "Add", {}), ("tanh", "Tanh", {}), ("flat", "Flatten", {}),
                    ("drop", "Dropout", {"p": 0.4}), ("fc", "Linear", {"out_features": 3})],
                   [("input", "a"), ("input", "b"), ("a", "add"), ("b", "add"), ("add", "tanh"),
                    ("tanh", "flat"), ("flat", "drop"), ("drop", "fc")])
    x, y = batch((2, 4, 4))
    # the mask the engine draws: values of rng.random (float32) at or above p are kept
    mask = np.random.default_rng(7).random((3, 32), dtype=np.float32) >= np.float32(0.4)
    check_gradients(design, x, y, masks={"drop": mask}, rng=7)


# ------------------------------------------------------------ the loss itself

def test_cross_entropy_matches_the_log_softmax_formula():
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((5, 7)) * 5).astype(np.float32)
    y = rng.integers(0, 7, 5)
    loss, g = cross_entropy(logits, y)
    assert loss == pytest.approx(ref_loss(logits.astype(np.float64), y), rel=1e-12)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(5), y] -= 1
    np.testing.assert_allclose(g, p / 5, rtol=1e-5, atol=1e-8)


def test_cross_entropy_torch_figures():
    # torch.nn.functional.cross_entropy(torch.tensor([[1., 2., 3.], [1., 1., 1.]]),
    # torch.tensor([2, 0])) = 0.7200 (mean of 0.40760596 and 1.09861229)
    loss, _ = cross_entropy(np.array([[1, 2, 3], [1, 1, 1]], np.float32), np.array([2, 0]))
    assert loss == pytest.approx((0.40760596 + 1.09861229) / 2, rel=1e-7)


# ------------------------------------------------------------ refusals

def small():
    return chain((1, 4, 4), ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 3}))


@pytest.mark.parametrize("labels, words", [
    (np.array([0, 3]), "label 3 is out of range"),
    (np.array([-1, 0]), "label -1 is out of range"),
    (np.array([0.0, 1.0]), "whole numbers"),
    (np.array([0, 1, 2]), "shaped (2,)"),
    (np.array([[0], [1]]), "shaped (2,)"),
])
def test_bad_labels_are_refused_with_what_is_wrong(labels, words):
    net = designer.build(small())
    with pytest.raises(TrainingError, match=None) as caught:
        net.gradients(np.zeros((2, 1, 4, 4), np.float32), labels)
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError) and designer.TrainingError is TrainingError


def test_outputs_that_cant_be_trained_are_refused():
    maps = chain((1, 4, 4), ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 3}))
    with pytest.raises(TrainingError, match=r"conv\) has shape \[2×2×2\].*Flatten and Linear"):
        designer.build(maps).gradients(np.zeros((2, 1, 4, 4), np.float32), np.array([0, 1]))
    one = chain((1, 4, 4), ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 1}))
    with pytest.raises(TrainingError, match="at least two classes"):
        designer.build(one).gradients(np.zeros((2, 1, 4, 4), np.float32), np.array([0, 0]))
    with pytest.raises(designer.InputError):
        designer.build(small()).gradients(np.zeros((2, 1, 5, 4), np.float32), np.array([0, 1]))


def test_not_enough_memory_names_both_numbers(monkeypatch):
    import designer.engine.network as network
    # (1 MiB: the estimate of this tiny network's step is a few MiB, no longer padded to 32)
    monkeypatch.setattr(network, "available_memory", lambda: 2**20)
    net = designer.build(small(), weights={"fc.weight": np.zeros((3, 16), np.float32),
                                           "fc.bias": np.zeros(3, np.float32)})
    with pytest.raises(designer.NotEnoughMemory, match=r"needs about [\d,]+ MiB.*only 1 MiB"):
        net.gradients(np.zeros((2, 1, 4, 4), np.float32), np.array([0, 1]))


def test_estimate_grows_with_the_batch_and_covers_what_is_kept():
    net = designer.build(designer.load_design("resources/templates/cifar10-convnet.json"))
    small_batch, large = net.estimate_training_bytes(1), net.estimate_training_bytes(64)
    assert large > small_batch
    # every activation of the pass is kept for the backward pass: at least that much per image
    per_image = sum(4 * np.prod(net.infos[n].shape) for n in net.order)
    assert large - small_batch >= 63 * per_image


# ------------------------------------------------------------ predict, stale matrices

def test_predict_is_the_softmax_of_the_logits():
    net = designer.build(small())
    x = np.random.default_rng(0).standard_normal((3, 1, 4, 4)).astype(np.float32)
    logits = net.forward(x)["fc"].astype(np.float64)
    p = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(net.predict(x), p / p.sum(1, keepdims=True), rtol=1e-5)


def test_forward_sees_conv_weights_changed_in_place_after_a_pass():
    design = chain((1, 5, 5), ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 3}),
                   ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 2}))
    net = designer.build(design)
    x = np.ones((1, 1, 5, 5), np.float32)
    before = net.forward(x)["conv"].copy()
    _, grads = net.gradients(np.ones((2, 1, 5, 5), np.float32), np.array([0, 1]))
    net.weights["conv.weight"] -= 0.5 * grads["conv.weight"] + 1.0  # as an optimizer step does
    after = net.forward(x)["conv"]
    expected = ref_conv(x.astype(np.float64), net.weights["conv.weight"].astype(np.float64),
                        net.weights["conv.bias"], (1, 1), (0, 0), (1, 1), 1)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-5)
