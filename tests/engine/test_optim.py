"""designer.SGD, Adam and AdamW (contract §5, §6): each step against updates worked by hand in
plain Python floats, written here from torch.optim's documented algorithms and independent of
designer/engine/optim.py; BatchNorm's running statistics are never touched; bad arguments are
refused. A toy quadratic is minimised through a stand-in network (no gradients engine needed)."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import designer
from designer.engine import optim
from tests.helpers import chain


class FakeNet:
    """Anything with a ``weights`` dict is a network to an optimizer."""

    def __init__(self, **weights):
        self.weights = {k.replace("__", "."): np.asarray(v, dtype=np.float32)
                        for k, v in weights.items()}


# --------------------------------------------------------------- references, plain floats
def sgd_reference(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD's algorithm for one scalar parameter over a sequence of gradients."""
    b = None
    for g in grads:
        g = g + weight_decay * p
        if momentum != 0:
            b = g if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
    return p


def adam_reference(p, grads, lr, beta1, beta2, eps, weight_decay=0.0, amsgrad=False,
                   decoupled=False):
    """torch.optim.Adam's (decoupled: AdamW's) algorithm for one scalar over gradients."""
    m = v = v_max = 0.0
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        if amsgrad:
            v_max = max(v_max, v)
            v_hat = v_max / (1 - beta2 ** t)
        else:
            v_hat = v / (1 - beta2 ** t)
        p = p - lr * m_hat / (math.sqrt(v_hat) + eps)
    return p


# Gradients over four steps for three scalars (a weight of 3 values, a bias of... see run()):
# large then small, a sign change, and a zero, so momentum, amsgrad's maximum and decay all matter
GRADS = [[0.5, -2.0, 0.0], [0.1, 1.5, 0.25], [-0.3, 0.2, 0.0], [0.05, -0.01, 1.0]]
START = [1.0, -0.5, 2.0]


def run(opt, grads=GRADS, start=START):
    """Step ``opt`` through ``grads`` on a weight of len(start) values; the final weight."""
    net = FakeNet(fc__weight=start)
    for g in grads:
        opt.step(net, {"fc.weight": np.array(g, dtype=np.float32)})
    return net.weights["fc.weight"]


def reference(fn, **kw):
    return np.array([fn(START[i], [g[i] for g in GRADS], **kw) for i in range(len(START))])


# ------------------------------------------------------------------------------ SGD
def test_sgd_by_hand():
    # lr 0.1, momentum 0.9, p = 1, gradients 1 then 1: b = 1, p = 0.9; b = 0.9·1 + 1 = 1.9,
    # p = 0.9 − 0.19 = 0.71
    net = FakeNet(w__weight=[1.0])
    opt = designer.SGD(lr=0.1, momentum=0.9)
    opt.step(net, {"w.weight": np.array([1.0], np.float32)})
    assert net.weights["w.weight"][0] == pytest.approx(0.9, abs=1e-7)
    opt.step(net, {"w.weight": np.array([1.0], np.float32)})
    assert net.weights["w.weight"][0] == pytest.approx(0.71, abs=1e-6)
    # nesterov, same gradients: step 1 b = 1, g = 1 + 0.9 = 1.9, p = 1 − 0.19 = 0.81
    net = FakeNet(w__weight=[1.0])
    designer.SGD(lr=0.1, momentum=0.9, nesterov=True).step(net, {"w.weight": np.ones(1)})
    assert net.weights["w.weight"][0] == pytest.approx(0.81, abs=1e-6)
    # L2 weight decay 0.5 on p = 2, g = 0: g' = 1, p = 2 − 0.1 = 1.9
    net = FakeNet(w__weight=[2.0])
    designer.SGD(lr=0.1, weight_decay=0.5).step(net, {"w.weight": np.zeros(1)})
    assert net.weights["w.weight"][0] == pytest.approx(1.9, abs=1e-6)


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.5, dampening=0.1, weight_decay=0.01),
    dict(lr=0.02, momentum=0.8, nesterov=True),
    dict(lr=0.02, momentum=0.8, weight_decay=0.1, nesterov=True),
    dict(lr=0.3, weight_decay=0.2),
])
def test_sgd_matches_torch_algorithm(kw):
    np.testing.assert_allclose(run(designer.SGD(**kw)), reference(sgd_reference, **kw),
                               rtol=1e-5, atol=1e-6)


def test_defaults_are_torch_optims():
    sgd = designer.SGD()
    assert (sgd.lr, sgd.momentum, sgd.dampening, sgd.weight_decay, sgd.nesterov) == \
        (1e-3, 0.0, 0.0, 0.0, False)
    adam = designer.Adam()
    assert (adam.lr, adam.betas, adam.eps, adam.weight_decay, adam.amsgrad) == \
        (1e-3, (0.9, 0.999), 1e-8, 0.0, False)
    adamw = designer.AdamW()
    assert (adamw.lr, adamw.betas, adamw.eps, adamw.weight_decay, adamw.amsgrad) == \
        (1e-3, (0.9, 0.999), 1e-8, 1e-2, False)


# ------------------------------------------------------------------------------ Adam
def test_adam_by_hand():
    # First step: m̂ = g, v̂ = g², so p moves by lr·g/(|g| + eps): p = 1 − 0.1·2/2 = 0.9
    net = FakeNet(w__weight=[1.0, 1.0])
    opt = designer.Adam(lr=0.1)
    opt.step(net, {"w.weight": np.array([2.0, -0.001], np.float32)})
    # where |g| is small eps shows: 1 + 0.1·0.001/(0.001 + 1e-8) = 1.099999
    np.testing.assert_allclose(net.weights["w.weight"], [0.9, 1 + 0.1 * 0.001 / (0.001 + 1e-8)],
                               rtol=0, atol=1e-7)
    # Second step with gradient 0: m = 0.09·2·... m̂ = 0.9·0.2/0.19, v̂ = 0.999·0.004/0.001999
    m_hat = 0.9 * 0.1 * 2 / (1 - 0.81)
    v_hat = 0.999 * 0.001 * 4 / (1 - 0.999 ** 2)
    opt.step(net, {"w.weight": np.zeros(2, np.float32)})
    assert net.weights["w.weight"][0] == pytest.approx(0.9 - 0.1 * m_hat / math.sqrt(v_hat),
                                                       abs=1e-6)


@pytest.mark.parametrize("kw", [
    dict(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8),
    dict(lr=0.01, beta1=0.5, beta2=0.9, eps=1e-3),
    dict(lr=0.05, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1),
    dict(lr=0.05, beta1=0.8, beta2=0.9, eps=1e-8, amsgrad=True),
    dict(lr=0.05, beta1=0.0, beta2=0.5, eps=1e-6, weight_decay=0.3, amsgrad=True),
])
@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_and_adamw_match_torch_algorithm(kw, decoupled):
    kind = designer.AdamW if decoupled else designer.Adam
    args = dict(lr=kw["lr"], betas=(kw["beta1"], kw["beta2"]), eps=kw["eps"],
                weight_decay=kw.get("weight_decay", 0.0 if not decoupled else 0.2),
                amsgrad=kw.get("amsgrad", False))
    ref = dict(kw, weight_decay=args["weight_decay"], decoupled=decoupled)
    np.testing.assert_allclose(run(kind(**args)), reference(adam_reference, **ref),
                               rtol=1e-5, atol=1e-6)


def test_amsgrad_and_decay_change_the_result():
    """The parametrised cases would pass vacuously if these options did nothing."""
    plain = run(designer.Adam(lr=0.05, betas=(0.8, 0.9)))
    assert not np.allclose(plain, run(designer.Adam(lr=0.05, betas=(0.8, 0.9), amsgrad=True)))
    l2 = run(designer.Adam(lr=0.05, weight_decay=0.3))
    assert not np.allclose(l2, run(designer.AdamW(lr=0.05, weight_decay=0.3)))
    assert not np.allclose(run(designer.SGD(lr=0.05, momentum=0.9)),
                           run(designer.SGD(lr=0.05, momentum=0.9, dampening=0.5)))


# ------------------------------------------------------------------ what is updated
def bn_net():
    return FakeNet(bn__weight=[1.0, 1.0], bn__bias=[0.0, 0.0], bn__running_mean=[0.3, -0.2],
                   bn__running_var=[1.5, 0.7], fc__weight=[[1.0, 2.0]], fc__bias=[0.5])


@pytest.mark.parametrize("opt", [designer.SGD(lr=0.1, momentum=0.9, weight_decay=0.1),
                                 designer.Adam(lr=0.1, weight_decay=0.1),
                                 designer.AdamW(lr=0.1, weight_decay=0.5)])
def test_running_statistics_are_never_updated(opt):
    net = bn_net()
    before = {k: v.copy() for k, v in net.weights.items()}
    grads = {k: np.full(v.shape, 0.7, np.float32) for k, v in net.weights.items()}
    for _ in range(3):
        opt.step(net, grads)
    for key in ("bn.running_mean", "bn.running_var"):
        np.testing.assert_array_equal(net.weights[key], before[key])
        assert key not in opt.state
    for key in ("bn.weight", "bn.bias", "fc.weight", "fc.bias"):
        assert not np.allclose(net.weights[key], before[key]), key
    assert not optim.is_parameter("bn.running_mean") and optim.is_parameter("bn.weight")


def test_a_parameter_without_a_gradient_is_left_alone_and_its_state_waits():
    net = FakeNet(a__weight=[1.0], b__weight=[1.0])
    opt = designer.Adam(lr=0.1)
    opt.step(net, {"a.weight": np.ones(1)})
    opt.step(net, {"a.weight": np.ones(1)})
    assert net.weights["b.weight"][0] == 1.0 and "b.weight" not in opt.state
    opt.step(net, {"b.weight": np.array([2.0])})
    assert opt.state["b.weight"]["step"] == 1 and opt.state["a.weight"]["step"] == 2
    assert net.weights["b.weight"][0] == pytest.approx(0.9, abs=1e-6)  # a first Adam step


def test_updates_in_place_in_float32_through_chunks_and_strides():
    rng = np.random.default_rng(0)
    n = 2 * optim.CHUNK + 5
    big = rng.standard_normal(n).astype(np.float32)
    strided = np.asfortranarray(rng.standard_normal((7, 9)).astype(np.float32))
    net = FakeNet()
    net.weights = {"big.weight": big, "t.weight": strided}
    ids = {k: id(v) for k, v in net.weights.items()}
    g = {"big.weight": rng.standard_normal(n), "t.weight": rng.standard_normal((7, 9))}
    want = {k: v.astype(np.float64).copy() for k, v in net.weights.items()}
    opt = designer.SGD(lr=0.1, momentum=0.9, weight_decay=0.01)
    for step in range(2):
        opt.step(net, g)
    for k in want:  # two momentum steps with the same gradient, in float64
        g1 = g[k] + 0.01 * want[k]
        p1 = want[k] - 0.1 * g1
        b2 = 0.9 * g1 + (g[k] + 0.01 * p1)
        want[k] = p1 - 0.1 * b2
        assert id(net.weights[k]) == ids[k] and net.weights[k].dtype == np.float32
        np.testing.assert_allclose(net.weights[k], want[k], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(big, want["big.weight"], rtol=1e-5, atol=1e-6)  # same array
    np.testing.assert_allclose(strided, want["t.weight"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: designer.SGD(lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda: designer.Adam(weight_decay=0.1, amsgrad=True),
                                  lambda: designer.AdamW()])
def test_no_temporary_as_big_as_a_tensor(make):
    size = 4 * 2**20  # 16 MB of float32
    net = FakeNet()
    net.weights = {"fc.weight": np.ones(size, np.float32)}
    grads = {"fc.weight": np.full(size, 0.5, np.float32)}
    opt = make()
    opt.step(net, grads)  # the first step allocates the state (momentum, moments)
    tracemalloc.start()
    try:
        opt.step(net, grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * size / 8, f"a step allocated {peak / 2**20:.1f} MiB at its peak"


def test_a_built_network_runs_with_the_updated_weights():
    """A Network caches its convolution weights rearranged: an update must reach the next pass."""
    design = chain((2, 6, 6), ("conv", "Conv2d", {"out_channels": 3, "kernel_size": 3}),
                   ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 2}))
    net = designer.build(design, seed=1)
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6)).astype(np.float32)
    net.forward(x)  # fills the cache
    grads = {k: np.ones_like(v) for k, v in net.weights.items()}
    designer.SGD(lr=0.5).step(net, grads)
    fresh = designer.build(design, weights={k: v.copy() for k, v in net.weights.items()})
    np.testing.assert_allclose(net.forward(x)["fc"], fresh.forward(x)["fc"], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("make, words", [
    (lambda: designer.SGD(lr=-0.1), "learning rate (lr) must be 0 or more"),
    (lambda: designer.SGD(lr=float("nan")), "lr) must be a finite number"),
    (lambda: designer.SGD(lr="fast"), "must be a number"),
    (lambda: designer.SGD(momentum=-0.5), "momentum must be 0 or more"),
    (lambda: designer.SGD(weight_decay=-1), "weight_decay must be 0 or more"),
    (lambda: designer.SGD(nesterov=True), "Nesterov momentum needs a momentum above 0"),
    (lambda: designer.SGD(momentum=0.9, dampening=0.1, nesterov=True), "no dampening"),
    (lambda: designer.Adam(lr=-1e-3), "learning rate (lr) must be 0 or more"),
    (lambda: designer.Adam(betas=(1.0, 0.999)), "betas[0] must be at least 0 and below 1"),
    (lambda: designer.Adam(betas=(0.9, -0.1)), "betas[1] must be at least 0 and below 1"),
    (lambda: designer.AdamW(betas=0.9), "betas must be a pair"),
    (lambda: designer.Adam(eps=0), "eps must be above 0"),
    (lambda: designer.AdamW(weight_decay=-0.01), "weight_decay must be 0 or more"),
    (lambda: designer.Adam(amsgrad="yes"), "amsgrad must be True or False"),
])
def test_bad_arguments_are_refused(make, words):
    with pytest.raises(ValueError, match=None) as err:
        make()
    assert words in str(err.value)


def test_setting_a_bad_lr_later_is_refused():
    opt = designer.Adam()
    with pytest.raises(ValueError, match="0 or more"):
        opt.lr = -1
    assert opt.lr == 1e-3


def test_bad_gradients_are_refused_before_anything_changes():
    net = bn_net()
    before = {k: v.copy() for k, v in net.weights.items()}
    opt = designer.SGD(lr=0.1)
    with pytest.raises(ValueError) as err:
        opt.step(net, {"bn.weight": np.ones(2), "fc.weight": np.ones((2, 1))})
    assert "fc.weight" in str(err.value) and "(2, 1)" in str(err.value) \
        and "(1, 2)" in str(err.value)
    with pytest.raises(ValueError, match="no tensor of that name"):
        opt.step(net, {"bn.weight": np.ones(2), "conv9.weight": np.ones(2)})
    for key in before:
        np.testing.assert_array_equal(net.weights[key], before[key])


# ------------------------------------------------------------------------ schedules
def test_step_schedule_closed_form():
    opt = designer.SGD(lr=0.4)
    sched = designer.StepLR(opt, step_size=3, gamma=0.5)
    want = [0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05]
    assert [sched.lr(e) for e in range(10)] == pytest.approx(want)
    seen = [opt.lr] + [sched.step() for _ in range(9)]
    assert seen == pytest.approx(want) and opt.lr == pytest.approx(0.05)


def test_cosine_schedule_closed_form_and_torch_recursion():
    opt = designer.Adam(lr=0.1)
    sched = designer.CosineAnnealingLR(opt, T_max=8, eta_min=0.01)
    assert sched.lr(0) == pytest.approx(0.1)
    assert sched.lr(4) == pytest.approx(0.055)  # halfway: the mean of 0.1 and 0.01
    assert sched.lr(8) == pytest.approx(0.01)
    assert sched.lr(12) == pytest.approx(0.055)  # periodic past T_max, as PyTorch's
    # PyTorch's recursive form: eta_{t+1} = eta_min + (eta_t − eta_min)·(1 + cos(π(t+1)/T)) /
    # (1 + cos(πt/T)) for t + 1 < T_max
    eta = 0.1
    for t in range(7):
        eta = 0.01 + (eta - 0.01) * (1 + math.cos(math.pi * (t + 1) / 8)) / \
            (1 + math.cos(math.pi * t / 8))
        assert sched.step() == pytest.approx(eta) and opt.lr == pytest.approx(eta)


def test_schedule_refusals():
    with pytest.raises(ValueError, match="step_size must be a whole number"):
        designer.StepLR(designer.SGD(), step_size=0)
    with pytest.raises(ValueError, match="T_max must be a whole number"):
        designer.CosineAnnealingLR(designer.SGD(), T_max=2.5)
    with pytest.raises(ValueError, match="needs an optimizer"):
        designer.StepLR(object(), step_size=1)


# ------------------------------------------------------------------------- clipping
def test_clip_grad_norm_against_a_direct_computation():
    rng = np.random.default_rng(3)
    grads = {"a.weight": rng.standard_normal((4, 5)).astype(np.float32),
             "a.bias": rng.standard_normal(4).astype(np.float32),
             "bn.running_mean": np.full(4, 100.0, np.float32)}  # not a parameter: not counted
    before = {k: v.astype(np.float64) for k, v in grads.items()}
    total = math.sqrt(sum(float((v ** 2).sum()) for k, v in before.items() if "running" not in k))
    assert designer.clip_grad_norm(grads, 1.0) == pytest.approx(total, rel=1e-6)
    for key in ("a.weight", "a.bias"):
        np.testing.assert_allclose(grads[key], before[key] * 1.0 / (total + 1e-6), rtol=1e-6)
    np.testing.assert_array_equal(grads["bn.running_mean"], before["bn.running_mean"])
    clipped = math.sqrt(sum(float((grads[k].astype(np.float64) ** 2).sum())
                            for k in ("a.weight", "a.bias")))
    assert clipped == pytest.approx(1.0, abs=1e-5)
    # under the limit: returned, untouched
    kept = {k: v.copy() for k, v in grads.items()}
    assert designer.clip_grad_norm(grads, 10.0) == pytest.approx(clipped, rel=1e-6)
    for key in kept:
        np.testing.assert_array_equal(grads[key], kept[key])
    with pytest.raises(ValueError, match="max_norm must be above 0"):
        designer.clip_grad_norm(grads, 0)


# ---------------------------------------------------------------------- end to end
@pytest.mark.parametrize("make, steps", [
    (lambda: designer.SGD(lr=0.05, momentum=0.9, nesterov=True), 300),
    (lambda: designer.Adam(lr=0.05), 600),
    (lambda: designer.AdamW(lr=0.05, weight_decay=1e-4), 600),
])
def test_minimises_a_least_squares_problem(make, steps):
    """f(w, c) = ½‖A·w + c − t‖² / n; its minimiser comes from lstsq."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((40, 3))
    t = a @ np.array([1.5, -2.0, 0.5]) + 0.7 + 0.01 * rng.standard_normal(40)
    net = FakeNet(fit__weight=np.zeros(3), fit__bias=np.zeros(1), bn__running_var=np.ones(1))
    opt = make()
    for _ in range(steps):
        w, c = net.weights["fit.weight"].astype(np.float64), net.weights["fit.bias"][0]
        r = (a @ w + c - t) / len(t)
        opt.step(net, {"fit.weight": a.T @ r, "fit.bias": np.array([r.sum()]),
                       "bn.running_var": np.ones(1)})
    solution = np.linalg.lstsq(np.c_[a, np.ones(40)], t, rcond=None)[0]
    got = np.r_[net.weights["fit.weight"], net.weights["fit.bias"]]
    np.testing.assert_allclose(got, solution, atol=2e-2)
    assert net.weights["bn.running_var"][0] == 1.0


def test_a_step_tells_the_network_its_weights_changed(monkeypatch):
    """A Network caches its convolution matrices: an in-place step clears them through the
    public hook (no reaching into the network's private tables)."""
    from designer.engine.network import build

    net = build(chain((1, 5, 5), ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 3})))
    x = np.random.default_rng(0).standard_normal((1, 1, 5, 5)).astype(np.float32)
    before = net.forward(x)["conv"].copy()
    told = []
    monkeypatch.setattr(net, "weights_changed", lambda: told.append(True))
    grads = {k: np.ones_like(v) for k, v in net.weights.items()}
    optim.SGD(lr=0.1).step(net, grads)
    assert told == [True]
    after = net.forward(x)["conv"]
    assert not np.allclose(before, after)  # the pass used the stepped weights
