"""Short descriptions of a layer in the lecture's notation, for canvas cards and listings:
``10 × 5×5, s1, p2`` for a convolution, ``max 2×2, s2`` for pooling, ``→ 10`` for Linear."""
from __future__ import annotations

from typing import Any


def _pair(p: Any) -> str:
    return f"{p[0]}×{p[1]}" if isinstance(p, tuple) else str(p)


def _one(p: Any) -> str:
    return str(p[0]) if isinstance(p, tuple) and p[0] == p[1] else _pair(p)


def layer_notation(type_name: str, values: dict[str, Any] | None) -> str:
    """The key parameters of a node; '' when there is nothing to say or the values are invalid."""
    if values is None:
        return ""
    v = values
    if type_name == "Input":
        return {1: "grey image", 3: "RGB image"}.get(v["channels"], f"{v['channels']} channels")
    if type_name == "Conv2d":
        pad = v["padding"] if isinstance(v["padding"], str) else _one(v["padding"])
        text = f"{v['out_channels']} × {_pair(v['kernel_size'])}, s{_one(v['stride'])}, p{pad}"
        if v["dilation"] != (1, 1):
            text += f", d{_one(v['dilation'])}"
        if v["groups"] != 1:
            text += f", g{v['groups']}"
        return text
    if type_name in ("MaxPool2d", "AvgPool2d"):
        kind = "max" if type_name == "MaxPool2d" else "avg"
        text = f"{kind} {_pair(v['kernel_size'])}, s{_one(v['stride'])}"
        if v["padding"] != (0, 0):
            text += f", p{_one(v['padding'])}"
        if v.get("ceil_mode"):
            text += ", ceil"
        return text
    if type_name == "AdaptiveAvgPool2d":
        return f"avg → {_pair(v['output_size'])}"
    if type_name == "Linear":
        return f"→ {v['out_features']}"
    if type_name == "LeakyReLU":
        return f"slope {v['negative_slope']:g}"
    if type_name == "Dropout":
        return f"p = {v['p']:g}"
    return ""


def shape_notation(shape: tuple[int, ...] | None) -> str:
    """``10×32×32`` (no batch), ``?`` when unknown."""
    return "?" if shape is None else "×".join(str(s) for s in shape)
