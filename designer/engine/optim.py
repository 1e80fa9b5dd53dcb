"""Optimizers, learning-rate schedules and gradient-norm clipping (contract §5, §6), step for step
as ``torch.optim.SGD``, ``Adam`` and ``AdamW``, ``torch.optim.lr_scheduler.StepLR`` and
``CosineAnnealingLR``, and ``torch.nn.utils.clip_grad_norm_``.

``opt.step(net, grads)`` updates ``net.weights`` in place from ``grads`` (keyed and shaped as
``net.weights``). Which tensors are parameters is decided by the key's suffix: BatchNorm's
``.running_mean`` and ``.running_var`` (and a ``.num_batches_tracked`` counter, should one ever
appear) are buffers, kept by the training pass itself, and are never touched by an optimizer or
counted by clipping, whatever ``grads`` holds for them. Every other tensor is a parameter; one
without a gradient in ``grads`` is left as it is (as PyTorch skips a parameter whose ``.grad`` is
None) and its state does not advance.

Each update works through a parameter in chunks of at most ``CHUNK`` values, with two scratch
buffers of that size, so no temporary as large as a big tensor is made (VGG-16's fc6 weight is
400 MB). The arithmetic is float32, like PyTorch's on the CPU: the same gradients give the same
weights up to float32 rounding. An optimizer keeps its state per parameter key; it is meant for
one network, used from one thread at a time.

Defaults are ``torch.optim``'s own: ``SGD(lr=1e-3)`` (the contract's ``lr=0.01`` in §5 is an
example call, not a default), ``Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)``,
``AdamW`` the same with ``weight_decay=1e-2``. One refusal is stricter than PyTorch: ``eps`` must
be above 0 (PyTorch accepts 0, which divides 0 by 0 for any value whose gradient has always
been 0, e.g. the weights of a unit that never fires, and turns it into NaN).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

#: Keys ending so are buffers (running statistics), never parameters
BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")

#: Values per chunk of an update: small enough to stay in cache, large enough that the Python
#: loop costs nothing next to the arithmetic
CHUNK = 1 << 16


def is_parameter(key: str) -> bool:
    """Whether the tensor ``key`` (``"<node id>.<tensor>"``) is learned by an optimizer: every
    tensor but BatchNorm's running statistics."""
    return not key.endswith(BUFFER_SUFFIXES)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, not {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value}")
    return value


def _at_least_zero(name: str, value: Any, hint: str = "") -> float:
    value = _number(name, value)
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, not {value:g}{hint}")
    return value


def _lr(value: Any) -> float:
    return _at_least_zero("learning rate (lr)", value, " (a typical value is 0.001 to 0.1)")


def _pairs(net: Any, grads: Mapping[str, Any]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(key, parameter, gradient) for every parameter with a gradient, all checked before any is
    changed: a gradient for a tensor the network doesn't have, a shape that differs or a
    parameter that can't be written is refused (ValueError) with the key and both shapes."""
    if not isinstance(grads, Mapping):
        raise ValueError(f"grads must be a mapping of tensor name to array (as net.gradients "
                         f"returns), not {type(grads).__name__}")
    weights = net.weights
    pairs = []
    for key, grad in grads.items():
        if key not in weights:
            raise ValueError(f"grads has a gradient for {key!r}, but the network has no tensor "
                             f"of that name: pass the gradients of this network")
        if not is_parameter(key):
            continue
        param = weights[key]
        grad = np.asarray(grad)
        if grad.shape != param.shape:
            raise ValueError(f"the gradient for {key} is shaped {tuple(grad.shape)}, but the "
                             f"tensor is {tuple(param.shape)}")
        if grad.dtype.kind not in "fiu":
            raise ValueError(f"the gradient for {key} holds {grad.dtype} values, not numbers")
        if not isinstance(param, np.ndarray) or param.dtype.kind != "f":
            raise ValueError(f"{key} must be a floating-point numpy array to be updated in "
                             f"place")
        if not param.flags.writeable:
            raise ValueError(f"{key} is read-only and can't be updated in place: build the "
                             f"network with its own copy of the weights")
        pairs.append((key, param, grad))
    return pairs


def _flat(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A 1-D view of ``array`` in ``dtype``: no copy when it is contiguous and of that type."""
    return np.ascontiguousarray(array, dtype=dtype).reshape(-1)


def weights_changed(net: Any) -> None:
    """Tell ``net`` its weights were changed in place, so that nothing derived from them (the
    convolution matrices a Network caches) outlives the change (a stand-in network without the
    hook needs no telling)."""
    notify = getattr(net, "weights_changed", None)
    if callable(notify):
        notify()


class Optimizer:
    """What SGD, Adam and AdamW share: the learning rate, the state per parameter key and the
    chunked walk through each parameter."""

    def __init__(self, lr: float) -> None:
        self.lr = lr
        self.state: dict[str, dict[str, Any]] = {}

    @property
    def lr(self) -> float:
        """The learning rate (a schedule sets it between epochs)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _lr(value)

    def step(self, net: Any, grads: Mapping[str, Any]) -> None:
        """One update of every parameter of ``net.weights`` that has a gradient in ``grads``,
        in place. Nothing is changed if ``grads`` is refused."""
        pairs = _pairs(net, grads)
        if not pairs:
            return
        size = min(CHUNK, max(param.size for _, param, _ in pairs))
        scratch = (np.empty(size, dtype=np.float32), np.empty(size, dtype=np.float32))
        for key, param, grad in pairs:
            state = self.state.setdefault(key, {})
            contiguous = param.flags.c_contiguous
            p = param.reshape(-1) if contiguous else np.ascontiguousarray(param).reshape(-1)
            g = _flat(grad, param.dtype)
            buffers = self._begin(state, p)
            for start in range(0, p.size, CHUNK):
                end = min(start + CHUNK, p.size)
                n = end - start
                self._update(p[start:end], g[start:end],
                             [b[start:end] for b in buffers], scratch[0][:n], scratch[1][:n],
                             state)
            if not contiguous:
                param[...] = p.reshape(param.shape)
        weights_changed(net)

    def _begin(self, state: dict[str, Any], p: np.ndarray) -> list[np.ndarray]:
        """Advance this parameter's state by one step; the flat state buffers to walk with it."""
        raise NotImplementedError

    def _update(self, p: np.ndarray, g: np.ndarray, buffers: list[np.ndarray], t: np.ndarray,
                u: np.ndarray, state: dict[str, Any]) -> None:
        """Update one chunk ``p`` from its gradient ``g``; ``t`` and ``u`` are scratch."""
        raise NotImplementedError

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The hyper-parameters and a copy of the state per parameter key."""
        return {"hyper": self._hyper(),
                "state": {key: {name: (value.copy() if isinstance(value, np.ndarray) else value)
                                for name, value in entry.items()}
                          for key, entry in self.state.items()}}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Take back what ``state_dict`` gave (the hyper-parameters and per-key state)."""
        for name, value in state_dict["hyper"].items():
            setattr(self, name, value)
        self._check()
        self.state = {key: {name: (np.array(value, dtype=np.float32)
                                   if isinstance(value, np.ndarray) else value)
                            for name, value in entry.items()}
                      for key, entry in state_dict["state"].items()}

    def _hyper(self) -> dict[str, Any]:
        raise NotImplementedError

    def _check(self) -> None:
        """Validate the hyper-parameters (ValueError with a plain message)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyper().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """``torch.optim.SGD``: with ``g`` the gradient plus ``weight_decay``·``p`` (L2 penalty),
    the momentum buffer ``b`` is ``g`` on the first step and ``momentum``·``b`` +
    (1 − ``dampening``)·``g`` after; the step is ``b`` (or ``g`` + ``momentum``·``b`` with
    ``nesterov``, or ``g`` without momentum), and ``p`` ← ``p`` − ``lr``·step."""

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(lr)
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self._check()

    def _check(self) -> None:
        self.momentum = _at_least_zero("momentum", self.momentum, " (a typical value is 0.9)")
        self.dampening = _number("dampening", self.dampening)
        self.weight_decay = _at_least_zero("weight_decay", self.weight_decay)
        if not isinstance(self.nesterov, (bool, np.bool_)):
            raise ValueError(f"nesterov must be True or False, not {self.nesterov!r}")
        self.nesterov = bool(self.nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"Nesterov momentum needs a momentum above 0 and no dampening "
                             f"(momentum {self.momentum:g}, dampening {self.dampening:g}): "
                             f"set momentum (e.g. 0.9) and dampening 0, or nesterov False")

    def _hyper(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov}

    def _begin(self, state: dict[str, Any], p: np.ndarray) -> list[np.ndarray]:
        if self.momentum == 0:
            return []
        state["first"] = "momentum_buffer" not in state
        if state["first"]:
            state["momentum_buffer"] = np.empty(p.size, dtype=p.dtype)
        return [state["momentum_buffer"].reshape(-1)]

    def _update(self, p, g, buffers, t, u, state) -> None:
        d = g
        if self.weight_decay != 0:  # d = g + wd·p
            np.multiply(p, self.weight_decay, out=t)
            np.add(t, g, out=t)
            d = t
        if self.momentum != 0:
            (b,) = buffers
            if state["first"]:
                b[...] = d
            else:  # b = momentum·b + (1 − dampening)·d
                np.multiply(b, self.momentum, out=b)
                np.multiply(d, 1.0 - self.dampening, out=u)
                np.add(b, u, out=b)
            if self.nesterov:  # d = d + momentum·b
                np.multiply(b, self.momentum, out=u)
                np.add(d, u, out=t)
                d = t
            else:
                d = b
        np.multiply(d, self.lr, out=u)
        np.subtract(p, u, out=p)


class Adam(Optimizer):
    """``torch.optim.Adam``: with ``g`` the gradient plus ``weight_decay``·``p`` (L2 penalty,
    added to the gradient), ``m`` ← β1·``m`` + (1 − β1)·``g``, ``v`` ← β2·``v`` + (1 − β2)·``g``²
    (both starting at 0; with ``amsgrad`` the running maximum of ``v`` takes its place below),
    and at step ``t`` ``p`` ← ``p`` − lr/(1 − β1^t) · ``m`` / (√``v`` / √(1 − β2^t) + ``eps``)."""

    decoupled = False

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(lr)
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.amsgrad = amsgrad
        self._check()

    def _check(self) -> None:
        betas = self.betas
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair of numbers such as (0.9, 0.999), not "
                             f"{betas!r}")
        checked = []
        for i, beta in enumerate(betas):
            beta = _number(f"betas[{i}]", beta)
            if not 0 <= beta < 1:
                raise ValueError(f"betas[{i}] must be at least 0 and below 1, not {beta:g} "
                                 f"(the defaults are 0.9 and 0.999)")
            checked.append(beta)
        self.betas = (checked[0], checked[1])
        self.eps = _number("eps", self.eps)
        if self.eps <= 0:
            raise ValueError(f"eps must be above 0, not {self.eps:g}: it keeps the update "
                             f"finite where a gradient has always been 0 (the default is 1e-8)")
        self.weight_decay = _at_least_zero("weight_decay", self.weight_decay)
        if not isinstance(self.amsgrad, (bool, np.bool_)):
            raise ValueError(f"amsgrad must be True or False, not {self.amsgrad!r}")
        self.amsgrad = bool(self.amsgrad)

    def _hyper(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay, "amsgrad": self.amsgrad}

    def _begin(self, state: dict[str, Any], p: np.ndarray) -> list[np.ndarray]:
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = np.zeros(p.size, dtype=p.dtype)
            state["exp_avg_sq"] = np.zeros(p.size, dtype=p.dtype)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros(p.size, dtype=p.dtype)
        elif self.amsgrad and "max_exp_avg_sq" not in state:  # amsgrad switched on later
            state["max_exp_avg_sq"] = np.zeros(p.size, dtype=p.dtype)
        state["step"] += 1
        step = state["step"]
        beta1, beta2 = self.betas
        state["step_size"] = self.lr / (1.0 - beta1 ** step)
        state["correction2_sqrt"] = math.sqrt(1.0 - beta2 ** step)
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if self.amsgrad else [])
        return [state[name].reshape(-1) for name in names]

    def _update(self, p, g, buffers, t, u, state) -> None:
        beta1, beta2 = self.betas
        m, v = buffers[0], buffers[1]
        d = g
        if self.weight_decay != 0:
            if self.decoupled:  # AdamW: p = p·(1 − lr·wd), before the step
                np.multiply(p, 1.0 - self.lr * self.weight_decay, out=p)
            else:  # Adam: d = g + wd·p
                np.multiply(p, self.weight_decay, out=u)
                np.add(u, g, out=u)
                d = u
        # m = m + (1 − β1)·(d − m), i.e. β1·m + (1 − β1)·d (torch's lerp)
        np.subtract(d, m, out=t)
        np.multiply(t, 1.0 - beta1, out=t)
        np.add(m, t, out=m)
        # v = β2·v + (1 − β2)·d²
        np.multiply(d, d, out=t)
        np.multiply(t, 1.0 - beta2, out=t)
        np.multiply(v, beta2, out=v)
        np.add(v, t, out=v)
        if self.amsgrad:
            np.maximum(buffers[2], v, out=buffers[2])
            v = buffers[2]
        # denominator √v / √(1 − β2^t) + eps, then p = p − step_size · m / denominator
        np.sqrt(v, out=t)
        np.divide(t, state["correction2_sqrt"], out=t)
        np.add(t, self.eps, out=t)
        np.divide(m, t, out=t)
        np.multiply(t, state["step_size"], out=t)
        np.subtract(p, t, out=p)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay, ``p`` ← ``p``·(1 − lr·
    ``weight_decay``) before each step instead of an L2 term in the gradient (default 1e-2)."""

    decoupled = True

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad)


# ---------------------------------------------------------------------- schedules
class _Schedule:
    """A learning-rate schedule per epoch. ``lr(epoch)`` is the learning rate of epoch
    ``epoch`` (0 the first); ``step()``, called at the end of each epoch as PyTorch's
    ``scheduler.step()``, moves to the next epoch and sets the optimizer's ``lr``. The base rate
    is the optimizer's ``lr`` when the schedule is made."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(getattr(optimizer, "lr", None), (int, float)):
            raise ValueError(f"a schedule needs an optimizer (designer.SGD, Adam or AdamW), not "
                             f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0

    def lr(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        """Advance one epoch; the new learning rate, also set on the optimizer."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr(self.last_epoch)
        return self.optimizer.lr


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number of epochs, 1 or more, not {value!r}")
    return int(value)


class StepLR(_Schedule):
    """``torch.optim.lr_scheduler.StepLR``: ``base_lr`` · ``gamma`` ^ ⌊epoch / ``step_size``⌋."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = _at_least_zero("gamma", gamma, " (e.g. 0.1 divides the rate by 10)")

    def lr(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (int(epoch) // self.step_size)


class CosineAnnealingLR(_Schedule):
    """``torch.optim.lr_scheduler.CosineAnnealingLR`` in its closed form: ``eta_min`` +
    (``base_lr`` − ``eta_min``)·(1 + cos(π·epoch / ``T_max``)) / 2 (periodic past ``T_max``,
    as PyTorch's)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803
        super().__init__(optimizer)
        self.T_max = _positive_int("T_max", T_max)
        self.eta_min = _at_least_zero("eta_min", eta_min)

    def lr(self, epoch: int) -> float:
        cosine = math.cos(math.pi * int(epoch) / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + cosine) / 2.0


# ---------------------------------------------------------------------- clipping
def clip_grad_norm(grads: Mapping[str, Any], max_norm: float) -> float:
    """``torch.nn.utils.clip_grad_norm_``: the 2-norm of all parameter gradients together
    (running statistics' entries left out, as ``is_parameter`` says); if it is above
    ``max_norm``, every gradient is scaled in place by ``max_norm`` / (norm + 1e-6). Returns the
    norm before clipping (NaN or infinite if a gradient is, as PyTorch's: check it)."""
    max_norm = _number("max_norm", max_norm)
    if max_norm <= 0:
        raise ValueError(f"max_norm must be above 0, not {max_norm:g}")
    arrays = [g for key, g in grads.items() if is_parameter(key)]
    total = 0.0
    for g in arrays:
        flat = np.asarray(g).reshape(-1)
        for start in range(0, flat.size, CHUNK):  # float64 sum of float32 chunk dot products
            chunk = flat[start:start + CHUNK]
            total += float(np.dot(chunk, chunk))
    norm = math.sqrt(total)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0 or not math.isfinite(norm):
        for key, g in grads.items():
            if is_parameter(key) and (not isinstance(g, np.ndarray) or not g.flags.writeable):
                raise ValueError(f"clip_grad_norm scales the gradients in place, but the one "
                                 f"for {key} is not a writable numpy array")
        for g in arrays:
            np.multiply(g, coef, out=g)
    return norm
