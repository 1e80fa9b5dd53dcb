"""Why this prediction (contract §5): saliency and Grad-CAM against central finite differences of
a float64 reference forward pass written here independently (eval mode, slow loops), and
occlusion sensitivity against a plain loop over occluded images through ``net.predict``."""
from __future__ import annotations

import numpy as np
import pytest

import designer
from designer.engine import explain
from designer.engine.explain import ExplainError
from designer.engine.network import Cancelled, NotEnoughMemory
from tests.helpers import chain, graph

# ------------------------------------------------------------ float64 reference, eval mode


def ref_conv(x, weight, bias, stride, padding, groups):
    n, c, h, w = x.shape
    k, cg, kh, kw = weight.shape
    ph, pw = padding
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + w] = x
    oh = (h + 2 * ph - kh) // stride[0] + 1
    ow = (w + 2 * pw - kw) // stride[1] + 1
    out = np.zeros((n, k, oh, ow))
    kg = k // groups
    for g in range(groups):
        wg = weight[g * kg:(g + 1) * kg]
        for i in range(oh):
            for j in range(ow):
                r, q = i * stride[0], j * stride[1]
                patch = xp[:, g * cg:(g + 1) * cg, r:r + kh, q:q + kw]
                out[:, g * kg:(g + 1) * kg, i, j] = np.einsum("ncij,kcij->nk", patch, wg)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def ref_pool(x, kernel, stride, padding, reduce, fill):
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * padding, w + 2 * padding), fill)
    xp[:, :, padding:padding + h, padding:padding + w] = x
    oh = (h + 2 * padding - kernel) // stride + 1
    ow = (w + 2 * padding - kernel) // stride + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel]
            out[:, :, i, j] = reduce(window, axis=(2, 3))
    return out


def ref_forward(net, weights, x, override=None):
    """Every node's output, float64, in eval mode; ``override`` = (node id, array) replaces that
    node's output (a batch as long as x's) to perturb a layer in the middle."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    acts = {}
    for node_id in net.order:
        info = net.infos[node_id]
        v, t = info.values, info.type
        srcs = [acts[s] for s in net.design.sources(node_id)]
        a = srcs[0] if srcs else None
        if override is not None and node_id == override[0]:
            out = override[1]
        elif t == "Input":
            out = x.astype(np.float64)
        elif t == "Conv2d":
            assert v["dilation"] == (1, 1) and v["padding"] != "same"
            out = ref_conv(a, w[f"{node_id}.weight"], w.get(f"{node_id}.bias"), v["stride"],
                           v["padding"], v["groups"])
        elif t == "BatchNorm2d":
            shape = (1, -1, 1, 1)
            out = ((a - w[f"{node_id}.running_mean"].reshape(shape))
                   / np.sqrt(w[f"{node_id}.running_var"].reshape(shape) + v["eps"])
                   * w[f"{node_id}.weight"].reshape(shape) + w[f"{node_id}.bias"].reshape(shape))
        elif t == "MaxPool2d":
            out = ref_pool(a, v["kernel_size"][0], v["stride"][0], v["padding"][0], np.max,
                           -np.inf)
        elif t == "AvgPool2d":  # count_include_pad (the default): zeros are averaged in
            out = ref_pool(a, v["kernel_size"][0], v["stride"][0], v["padding"][0], np.mean, 0.0)
        elif t == "AdaptiveAvgPool2d":
            assert v["output_size"] == (1, 1)
            out = a.mean(axis=(2, 3), keepdims=True)
        elif t == "ReLU":
            out = np.maximum(a, 0)
        elif t == "Tanh":
            out = np.tanh(a)
        elif t == "Dropout":
            out = a
        elif t == "Flatten":
            out = a.reshape(len(a), -1)
        elif t == "Linear":
            out = a @ w[f"{node_id}.weight"].T + w[f"{node_id}.bias"]
        elif t == "Add":
            out = sum(srcs)
        elif t == "Concat":
            out = np.concatenate(srcs, axis=1)
        elif t == "Softmax":
            e = np.exp(a - a.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        else:
            raise AssertionError(t)
        acts[node_id] = out
    return acts


def logits_of(net, acts):
    out = net.analysis.output
    return acts[net.design.sources(out)[0]] if net.infos[out].type == "Softmax" else acts[out]


def perturbations(center, eps):
    """A batch of 2·size copies of ``center``, each value moved by +eps, then by −eps."""
    size = center.size
    batch = np.repeat(center.reshape(1, -1), 2 * size, axis=0)
    batch[np.arange(size), np.arange(size)] += eps
    batch[size + np.arange(size), np.arange(size)] -= eps
    return batch.reshape((2 * size,) + center.shape)


def difference_quotients(values, shape, eps):
    size = len(values) // 2
    return ((values[:size] - values[size:]) / (2 * eps)).reshape(shape)


EPS = 1e-6  # float64 throughout: rounding error stays near 1e-10, and no step crosses a kink


def fd_saliency(net, weights, x0, c):
    batch = perturbations(x0.astype(np.float64), EPS)
    logits = logits_of(net, ref_forward(net, weights, batch))
    return difference_quotients(logits[:, c], x0.shape, EPS)


def fd_grad_cam(net, weights, x0, node_id, c):
    """Grad-CAM from its definition, each d logit / d A[k, i, j] a difference quotient of the
    reference with node_id's output perturbed there (the layers after it see the change)."""
    a = ref_forward(net, weights, x0[None])[node_id][0]
    batch = perturbations(a, EPS)
    xs = np.repeat(x0[None].astype(np.float64), len(batch), axis=0)
    logits = logits_of(net, ref_forward(net, weights, xs, (node_id, batch)))
    grad = difference_quotients(logits[:, c], a.shape, EPS)
    cam = np.zeros(a.shape[1:])
    for k in range(a.shape[0]):
        cam += grad[k].mean() * a[k]
    return np.maximum(cam, 0)


def random_weights(design, seed):
    """Seeded weights with BatchNorm's running statistics, scale and shift made non-trivial."""
    net = designer.build(design, seed=seed)
    rng = np.random.default_rng(seed + 100)
    weights = {}
    for key, value in net.weights.items():
        if key.endswith("running_var"):
            value = rng.uniform(0.5, 2.0, value.shape)
        elif key.endswith(("running_mean", "bias")):
            value = rng.normal(0, 0.3, value.shape)
        elif value.ndim == 1:  # BatchNorm2d's weight
            value = rng.uniform(0.5, 1.5, value.shape)
        weights[key] = np.asarray(value, dtype=np.float32)
    return designer.build(design, weights=weights), weights


def cnn():
    return chain((3, 8, 8),
                 ("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
                 ("bn1", "BatchNorm2d", {}), ("relu1", "ReLU", {}),
                 ("pool1", "MaxPool2d", {"kernel_size": 2}),
                 ("conv2", "Conv2d", {"out_channels": 6, "kernel_size": 3, "stride": 2,
                                      "padding": 1}),
                 ("relu2", "ReLU", {}), ("flatten", "Flatten", {}), ("drop", "Dropout", {}),
                 ("fc", "Linear", {"out_features": 5}), ("softmax", "Softmax", {}))


def residual():
    """A residual block whose shortcut skips conv_b, a Concat of two paths, and a side branch
    the output doesn't depend on."""
    return graph(
        [("input", "Input", {"channels": 2, "height": 6, "width": 6}),
         ("conv_a", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
         ("bn_a", "BatchNorm2d", {}), ("relu_a", "ReLU", {}),
         ("conv_b", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1,
                               "bias": False}),
         ("bn_b", "BatchNorm2d", {}), ("add", "Add", {}), ("relu_b", "ReLU", {}),
         ("conv_c", "Conv2d", {"out_channels": 3, "kernel_size": 1}),
         ("cat", "Concat", {}), ("pool", "MaxPool2d", {"kernel_size": 3, "stride": 2,
                                                        "padding": 1}),
         ("gap", "AdaptiveAvgPool2d", {"output_size": 1}), ("flatten", "Flatten", {}),
         ("fc", "Linear", {"out_features": 4}),
         ("side", "Conv2d", {"out_channels": 2, "kernel_size": 3})],
        [("input", "conv_a"), ("conv_a", "bn_a"), ("bn_a", "relu_a"), ("relu_a", "conv_b"),
         ("conv_b", "bn_b"), ("bn_b", "add"), ("relu_a", "add"), ("add", "relu_b"),
         ("relu_b", "conv_c"), ("relu_b", "cat"), ("conv_c", "cat"), ("cat", "pool"),
         ("pool", "gap"), ("gap", "flatten"), ("flatten", "fc"), ("relu_a", "side")])


def grouped():
    return chain((4, 7, 7),
                 ("conv", "Conv2d", {"out_channels": 6, "kernel_size": 3, "groups": 2}),
                 ("tanh", "Tanh", {}),
                 ("avg", "AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
                 ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": 3}),
                 ("softmax", "Softmax", {}))


DESIGNS = {"cnn": cnn, "residual": residual, "grouped": grouped}


def sample(net, seed, n=2):
    c, h, w = net.input_shape
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)


def close(got, expected, rel=2e-5):
    """Equal to float32 rounding of the engine's forward pass, relative to the largest value."""
    scale = np.abs(expected).max()
    assert scale > 1e-3  # not vacuous
    assert np.abs(got - expected).max() <= rel * scale, np.abs(got - expected).max() / scale


# ------------------------------------------------------------ saliency


@pytest.mark.parametrize("name", list(DESIGNS))
def test_reference_forward_is_the_engine_forward(name):
    net, weights = random_weights(DESIGNS[name](), 1)
    x = sample(net, 1)
    ref = ref_forward(net, weights, x)
    acts = net.forward(x)
    for node_id in net.order:
        close(acts[node_id], ref[node_id])


@pytest.mark.parametrize("name", list(DESIGNS))
@pytest.mark.parametrize("c", [0, 2])
def test_saliency_is_the_gradient_of_the_logit(name, c):
    net, weights = random_weights(DESIGNS[name](), 2 + c)
    x = sample(net, 3 + c)
    sal = explain.saliency(net, x, c)
    assert sal.shape == x.shape[1:] and sal.dtype == np.float32
    close(sal, fd_saliency(net, weights, x[0], c))
    # first sample only: the second gives another gradient, and the same one on its own
    assert np.array_equal(explain.saliency(net, x[:1], c), sal)
    assert not np.allclose(explain.saliency(net, x[1], c), sal)


def test_saliency_of_a_softmax_output_is_that_of_its_input_not_of_the_probability():
    net, weights = random_weights(cnn(), 5)
    x = sample(net, 5)
    sal = explain.saliency(net, x, 1)
    probability = ref_forward(net, weights, perturbations(x[0].astype(np.float64), EPS))
    of_probability = difference_quotients(probability["softmax"][:, 1], x[0].shape, EPS)
    assert np.abs(sal - of_probability).max() > 0.1 * np.abs(sal).max()
    close(sal, net.input_gradient(x, "fc", (1,)), rel=1e-5)  # the logit's own gradient


# ------------------------------------------------------------ Grad-CAM


@pytest.mark.parametrize("name,node_id,c", [
    ("cnn", "bn1", 3), ("cnn", "pool1", 0), ("cnn", "conv2", 3),
    ("residual", "relu_b", 1), ("residual", "bn_b", 2),  # inside the block, beside the shortcut
    ("residual", "relu_a", 0),  # feeds both the block and its shortcut: the paths add up
    ("residual", "cat", 3), ("grouped", "conv", 2), ("grouped", "avg", 0)])
def test_grad_cam_matches_its_definition(name, node_id, c):
    net, weights = random_weights(DESIGNS[name](), 7)
    x = sample(net, 8)
    cam = explain.grad_cam(net, x, node_id, c)
    assert cam.shape == net.infos[node_id].shape[1:] and cam.dtype == np.float32
    expected = fd_grad_cam(net, weights, x[0].astype(np.float64), node_id, c)
    close(cam, expected, rel=5e-5)
    assert np.array_equal(explain.grad_cam(net, x[:1], node_id, c), cam)


def test_grad_cam_at_the_input_is_the_mean_saliency_times_the_image():
    net, _ = random_weights(residual(), 9)
    x = sample(net, 9)
    sal = explain.saliency(net, x, 1).astype(np.float64)
    expected = np.maximum(np.einsum("k,kij->ij", sal.mean(axis=(1, 2)), x[0]), 0)
    close(explain.grad_cam(net, x, "input", 1), expected, rel=1e-6)


def test_default_cam_layer_is_the_last_with_maps_larger_than_one_position():
    assert explain.default_cam_layer(designer.build(cnn())) == "relu2"
    # gap (1×1) is skipped, and so is the side branch that comes later in the design's order
    assert explain.default_cam_layer(designer.build(residual())) == "pool"
    assert explain.default_cam_layer(designer.build(grouped())) == "avg"
    only_ones = chain((2, 4, 4), ("gap", "AdaptiveAvgPool2d", {"output_size": 1}),
                      ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": 2}))
    assert explain.default_cam_layer(designer.build(only_ones)) == "gap"
    mlp = chain((1, 4, 4), ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": 2}))
    assert explain.default_cam_layer(designer.build(mlp)) == "input"
    net, _ = random_weights(residual(), 3)
    x = sample(net, 3)
    assert np.array_equal(explain.grad_cam(net, x, None, 2), explain.grad_cam(net, x, "pool", 2))


def test_grad_cam_goes_back_only_to_the_layer_asked_about(monkeypatch):
    net = designer.build(residual())
    x = sample(net, 0)
    seen = []
    original = explain._backward
    monkeypatch.setattr(explain, "_backward",
                        lambda net, n, *a: seen.append(n) or original(net, n, *a))
    explain.grad_cam(net, x, "relu_b", 0)
    assert seen == ["fc", "flatten", "gap", "pool", "cat", "conv_c"]
    seen.clear()
    explain.saliency(net, x, 0)  # everything the logits depend on, but not the side branch
    assert seen == [n for n in reversed(net.order) if n not in ("side", "input")]


CONVS = [  # (input shape, out_channels, kernel, stride, padding, dilation, groups)
    ((2, 3, 9, 8), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((1, 2, 11, 10), 3, (3, 2), (2, 3), (0, 1), (2, 1), 1),
    ((1, 4, 7, 7), 6, (3, 3), (2, 2), (2, 0), (1, 1), 2),
    ((3, 6, 6, 5), 3, (4, 3), (1, 1), "same", (1, 2), 3),
    ((1, 3, 12, 12), 5, (7, 7), (2, 2), (3, 3), (1, 1), 1),
    ((1, 2, 5, 5), 2, (1, 1), (2, 2), (0, 0), (1, 1), 1),
]


@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("block", [explain.BLOCK_VALUES, 1, 50])
def test_conv_input_gradient_is_backward_conv2d(case, block, monkeypatch):
    """The float32 matrix-product backward against the engine's float64 one, a tap at a time
    (itself checked against finite differences in test_input_gradient), in one block and in
    bands of one or a few output rows."""
    from designer.engine import backward, ops
    shape, k, kernel, stride, padding, dilation, groups = case
    rng = np.random.default_rng(len(shape) + k)
    weight = rng.standard_normal((k, shape[1] // groups) + kernel).astype(np.float32)
    pads = ops.pad_amounts(padding, kernel, dilation)
    oh = (shape[2] + sum(pads[0]) - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (shape[3] + sum(pads[1]) - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    gy = rng.standard_normal((shape[0], k, oh, ow))
    monkeypatch.setattr(explain, "BLOCK_VALUES", block)
    got = explain.conv2d_input_gradient(gy, shape, ops.conv_matrix(weight, groups), kernel,
                                        stride, padding, dilation, groups)
    expected = backward.conv2d(gy, shape, weight, stride, padding, dilation, groups)
    assert got.shape == shape and got.dtype == np.float32
    close(got, expected, rel=1e-6)


def test_bad_requests_are_explained():
    net = designer.build(residual())
    x = sample(net, 0)
    with pytest.raises(ExplainError, match="there is no node 'nope' in this design.*such as pool"):
        explain.grad_cam(net, x, "nope", 0)
    with pytest.raises(ExplainError, match=r"flatten's output is flat \(7 values\), not maps"):
        explain.grad_cam(net, x, "flatten", 0)
    with pytest.raises(ExplainError, match=r"the output \(fc\) doesn't depend on side"):
        explain.grad_cam(net, x, "side", 0)
    for call in (lambda c: explain.saliency(net, x, c),
                 lambda c: explain.grad_cam(net, x, "add", c),
                 lambda c: explain.occlusion(net, x, c)):
        with pytest.raises(ExplainError, match=r"class 4 is out of range: the output \(fc\) "
                                               r"scores 4 classes, numbered 0 to 3"):
            call(4)
        with pytest.raises(ExplainError, match="class -1 is out of range"):
            call(-1)
        with pytest.raises(ExplainError, match=r"must be a whole number \(0 to 3\), not 'cat'"):
            call("cat")
        with pytest.raises(ExplainError, match="whole number"):
            call(True)
    assert explain.saliency(net, x, np.int64(3)).shape == x.shape[1:]
    maps_out = chain((1, 6, 6), ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 3}))
    net = designer.build(maps_out)
    with pytest.raises(ExplainError, match=r"output \(conv\) has shape \[2×4×4\], not one score"):
        explain.saliency(net, np.zeros((1, 1, 6, 6)), 0)
    assert issubclass(ExplainError, ValueError)


@pytest.mark.parametrize("which", ["saliency", "grad_cam"])
def test_progress_rises_to_one_and_false_cancels(which):
    net = designer.build(cnn())
    x = sample(net, 0)
    call = {"saliency": lambda p: explain.saliency(net, x, 1, progress=p),
            "grad_cam": lambda p: explain.grad_cam(net, x, "relu1", 1, progress=p)}[which]
    seen = []
    result = call(lambda f, at: seen.append((f, at)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) >= 10
    assert {at for _, at in seen} >= {"conv1", "fc"}
    assert 0.3 < fractions[len(fractions) // 2] < 0.9
    with pytest.raises(Cancelled):
        call(lambda f, at: f < 0.6)  # in the backward pass
    with pytest.raises(Cancelled):
        call(lambda f, at: at != "pool1")  # in the forward pass
    assert np.array_equal(call(None), result)


def test_not_enough_memory_is_refused_before_the_pass(monkeypatch):
    net = designer.build(cnn())
    x = sample(net, 0)
    monkeypatch.setattr("designer.engine.network.available_memory", lambda: 1000)
    for call in (lambda: explain.saliency(net, x, 0), lambda: explain.grad_cam(net, x, None, 0),
                 lambda: explain.occlusion(net, x, 0)):
        with pytest.raises(NotEnoughMemory, match=r"needs about [\d,]+ MiB.*only 0 MiB is free"):
            call()


# ------------------------------------------------------------ occlusion


def occlusion_loop(net, x0, c, patch, stride, fill):
    """Every occluded image through net.predict on its own, and each pixel's mean drop."""
    _, h, w = x0.shape
    base = net.predict(x0[None])[0, c]
    ph, pw = patch
    rows = sorted(set(range(0, h - ph + 1, stride[0])) | {h - ph})
    cols = sorted(set(range(0, w - pw + 1, stride[1])) | {w - pw})
    drops = {}
    for r in rows:
        for q in cols:
            image = x0.copy()
            image[:, r:r + ph, q:q + pw] = np.asarray(fill, dtype=np.float32).reshape(-1, 1, 1)
            drops[r, q] = float(base) - float(net.predict(image[None])[0, c])
    heat = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            covering = [d for (r, q), d in drops.items() if r <= i < r + ph and q <= j < q + pw]
            heat[i, j] = np.mean(covering)
    return heat


@pytest.mark.parametrize("name,patch,stride,fill", [
    ("cnn", (3, 3), (2, 2), 0.5), ("cnn", (3, 4), (3, 1), (0.1, 0.5, 0.9)),
    ("residual", (6, 2), (1, 2), 0.0), ("grouped", (4, 4), (4, 4), -1.0)])
def test_occlusion_matches_a_loop_over_occluded_images(name, patch, stride, fill, monkeypatch):
    net, _ = random_weights(DESIGNS[name](), 4)
    x = sample(net, 4)
    expected = occlusion_loop(net, x[0], 1, patch, stride, fill)
    assert np.abs(expected).max() > 1e-4
    monkeypatch.setattr(explain, "MAX_BATCH", 4)  # several batches, the last one short
    heat = explain.occlusion(net, x, 1, patch=patch, stride=stride, fill=fill)
    assert heat.shape == x.shape[2:] and heat.dtype == np.float32
    assert np.abs(heat - expected).max() <= 1e-6
    monkeypatch.setattr(explain, "MAX_BATCH", 64)  # all in one batch
    assert np.abs(explain.occlusion(net, x, 1, patch, stride, fill) - heat).max() <= 1e-6


def test_occlusion_of_a_softmax_output_and_a_pixel_that_matters():
    # the logit is the sum of the pixels of a 2×2 corner: occluding elsewhere changes nothing
    design = chain((1, 6, 6), ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": 2}),
                   ("softmax", "Softmax", {}))
    weight = np.zeros((2, 36), dtype=np.float32)
    weight[0, [0, 1, 6, 7]] = 1.0
    net = designer.build(design, weights={"fc.weight": weight,
                                          "fc.bias": np.zeros(2, dtype=np.float32)})
    x = np.ones((1, 1, 6, 6), dtype=np.float32)
    heat = explain.occlusion(net, x, 0, patch=2, stride=2, fill=0.0)
    p = 1 / (1 + np.exp(-4.0))
    expected = np.zeros((6, 6))
    expected[:2, :2] = p - 0.5
    assert np.allclose(heat, expected, atol=1e-6)
    assert np.allclose(explain.occlusion(net, x, 1, patch=2, stride=2, fill=0.0), -expected,
                       atol=1e-6)


def test_occlusion_geometry_defaults_and_edges():
    def geometry(shape, patch=None, stride=None):
        net = designer.build(chain(shape, ("flatten", "Flatten", {}),
                                   ("fc", "Linear", {"out_features": 2})))
        return explain.occlusion_geometry(net, patch, stride)

    # about a seventh of the side, stride half of it: 13 × 13 positions
    assert geometry((3, 224, 224))[:2] == ((32, 32), (16, 16))
    assert len(geometry((3, 224, 224))[2]) == 13
    assert geometry((1, 28, 28))[:2] == ((4, 4), (2, 2)) and len(geometry((1, 28, 28))[2]) == 13
    assert geometry((3, 32, 32))[:2] == ((5, 5), (3, 3))
    assert geometry((1, 3, 5))[:2] == ((1, 1), (1, 1))
    assert geometry((1, 10, 11), 4, 3)[2:] == ([0, 3, 6], [0, 3, 6, 7])  # 7: up to the edge
    assert geometry((1, 10, 11), (10, 1), (5, 1))[2:] == ([0], list(range(11)))
    for patch, stride, words in [((11, 1), 1, r"patch is 11×1, but the input is 10×11"),
                                 (0, 1, "patch is 0×0"), (2, (0, 1), r"stride is 0×1"),
                                 ("big", 1, "patch must be a whole number or a pair"),
                                 (2, (1, 2, 3), "stride must be"), (2.5, 1, "patch must be"),
                                 ((4, 2), (2, 3), r"stride 2×3 is larger than the patch 4×2")]:
        with pytest.raises(ExplainError, match=words):
            geometry((1, 10, 11), patch, stride)


def test_occlusion_fill_and_outputs_it_refuses():
    net = designer.build(cnn())
    x = sample(net, 0)
    for fill in [(0.5, 0.5), "grey", np.nan, [[0.5]] * 3]:
        with pytest.raises(ExplainError, match=r"fill must be one finite number or one per "
                                               r"channel \(3\)"):
            explain.occlusion(net, x, 0, fill=fill)
    maps_out = chain((1, 6, 6), ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 3}))
    with pytest.raises(ExplainError, match="not one score per class"):
        explain.occlusion(designer.build(maps_out), np.zeros((1, 1, 6, 6)), 0)


def test_occlusion_batches_fit_in_memory_and_progress_cancels(monkeypatch):
    net = designer.build(cnn())
    x = sample(net, 0)
    per = net.estimate_bytes(2) - net.estimate_bytes(1)
    assert explain.occlusion_batch(net, 10) == 10
    assert explain.occlusion_batch(net, 1000) == explain.MAX_BATCH
    monkeypatch.setattr(explain, "BATCH_BUDGET", net.estimate_bytes(1) + 3 * per)
    assert explain.occlusion_batch(net, 1000) == 4
    monkeypatch.setattr("designer.engine.network.available_memory",
                        lambda: 2 * net.estimate_bytes(1))
    assert explain.occlusion_batch(net, 1000) == 1  # half the free memory: one copy at a time
    monkeypatch.undo()

    monkeypatch.setattr(explain, "MAX_BATCH", 7)
    seen = []
    sizes = []
    original = net._forward
    monkeypatch.setattr(net, "_forward", lambda xb, *a: sizes.append(len(xb)) or original(xb, *a))
    heat = explain.occlusion(net, x, 2, patch=4, stride=2, progress=lambda f, at: seen.append(f))
    assert sizes == [7, 3]  # 9 positions and the image itself
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert any(0.1 < f < 0.6 for f in seen) and any(0.75 < f < 1 for f in seen)
    with pytest.raises(Cancelled):  # 5 of 10 images done at 5/7 of the first batch
        explain.occlusion(net, x, 2, patch=4, stride=2, progress=lambda f, at: f < 0.5)
    assert sizes == [7, 3, 7]
    assert np.array_equal(explain.occlusion(net, x, 2, patch=4, stride=2), heat)


def test_conv_input_gradient_works_a_band_of_rows_at_a_time(monkeypatch):
    import tracemalloc

    from designer.engine import ops
    weight = np.ones((8, 8, 3, 3), dtype=np.float32)
    matrix = ops.conv_matrix(weight, 1)
    gy = np.ones((1, 8, 64, 64), dtype=np.float32)
    patches = 64 * 64 * 8 * 9 * 4  # bytes of every patch's gradient at once: 1.2 MB

    def peak(block):
        monkeypatch.setattr(explain, "BLOCK_VALUES", block)
        tracemalloc.start()
        try:
            explain.conv2d_input_gradient(gy, (1, 8, 64, 64), matrix, (3, 3), (1, 1), (1, 1),
                                          (1, 1), 1)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(2**30) > patches
    assert peak(64 * 8 * 9 * 2) < patches / 2  # two rows of patches at a time


def test_weights_changed_in_place_between_calls_are_seen():
    net, weights = random_weights(residual(), 6)
    x = sample(net, 6)
    before = explain.saliency(net, x, 1)
    net.weights["conv_b.weight"] *= -2  # as an optimizer step does, in place
    net.weights["conv_a.weight"][0] += 1
    changed = {k: v.copy() for k, v in net.weights.items()}
    fresh = designer.build(residual(), weights=changed)
    after = explain.saliency(net, x, 1)
    assert not np.allclose(after, before)
    assert np.array_equal(after, explain.saliency(fresh, x, 1))
    assert np.array_equal(explain.grad_cam(net, x, "relu_a", 1),
                          explain.grad_cam(fresh, x, "relu_a", 1))


def test_network_methods_are_the_module_functions():
    net, _ = random_weights(cnn(), 1)
    x = sample(net, 1)
    assert np.array_equal(net.saliency(x, 2), explain.saliency(net, x, 2))
    assert np.array_equal(net.grad_cam(x, "conv2", 0), explain.grad_cam(net, x, "conv2", 0))
    assert np.array_equal(net.grad_cam(x, None, 0), explain.grad_cam(net, x, None, 0))
    assert np.array_equal(net.occlusion(x, 1, 3, 2), explain.occlusion(net, x, 1, 3, 2))
    assert issubclass(designer.ExplainError, ValueError)
