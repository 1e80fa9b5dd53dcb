"""The layer catalog: every layer type, its parameters with PyTorch's names and defaults, and
how raw parameter values from a design are checked and resolved.

A design stores parameters as the user wrote them (defaults may be omitted). ``resolve_params``
turns them into complete values (pairs expanded to ``(h, w)``) plus a list of problems, without
ever raising: a design file may hold anything.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from designer.core.problems import ERROR, Problem

REQUIRED = object()  # marker: the parameter has no default
MAX_INT = 2**31 - 1  # largest size or count (int32, as the kernels of deep learning frameworks)

# Parameter kinds
COUNT = "count"  # an int >= minimum
PAIR = "pair"  # an int or [h, w], each >= minimum
CONV_PADDING = "conv_padding"  # a PAIR >= 0, or "same" / "valid"
POOL_STRIDE = "pool_stride"  # a PAIR >= 1, or null (= kernel_size)
BOOL = "bool"
REAL = "real"  # a finite number within bounds
OPTIONAL_REAL = "optional_real"  # REAL or null

#: PyTorch's input-side sizes: the graph decides them
INFERRED = frozenset({"in_channels", "in_features", "num_features", "normalized_shape"})

GROUPS = ("Input", "Convolution", "Pooling", "Normalization", "Fully connected", "Activation",
          "Merge", "Other")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: str
    default: Any = REQUIRED
    minimum: float | None = None
    maximum: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class LayerType:
    name: str
    group: str
    summary: str  # one sentence for tooltips and listings
    params: tuple[ParamSpec, ...] = ()
    min_inputs: int = 1
    max_inputs: int | None = 1  # None: unbounded
    param_index: dict[str, ParamSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.param_index.update({p.name: p for p in self.params})

    def spec(self, name: str) -> ParamSpec | None:
        return self.param_index.get(name)


def _size(name: str, minimum: int, help: str, default: Any = REQUIRED) -> ParamSpec:
    return ParamSpec(name, PAIR, default, minimum=minimum, help=help)


_KERNEL = _size("kernel_size", 1, "height and width of each filter window")
_STRIDE = _size("stride", 1, "step between neighbouring windows", 1)
_PADDING = _size("padding", 0, "zeros added on every side", 0)
_DILATION = _size("dilation", 1, "spacing between kernel elements", 1)
_POOL_STRIDE = ParamSpec("stride", POOL_STRIDE, None, minimum=1,
                         help="step between windows (default: the kernel size)")
_CEIL = ParamSpec("ceil_mode", BOOL, False,
                  help="round the output size up instead of down (a last partial window)")
_EPS = ParamSpec("eps", REAL, 1e-5, minimum=0, min_inclusive=False,
                 help="added to the variance for numerical stability")

LAYER_TYPES: dict[str, LayerType] = {t.name: t for t in (
    LayerType("Input", "Input", "The image (or tensor) fed to the network: channels × height × width.",
              (ParamSpec("channels", COUNT, minimum=1, help="colour channels (3 for RGB, 1 for grey)"),
               ParamSpec("height", COUNT, minimum=1, help="image height in pixels"),
               ParamSpec("width", COUNT, minimum=1, help="image width in pixels")),
              min_inputs=0, max_inputs=0),
    LayerType("Conv2d", "Convolution",
              "Slides out_channels learned filters over the input; each gives one output map.",
              (ParamSpec("out_channels", COUNT, minimum=1, help="number of filters (output maps)"),
               _KERNEL, _STRIDE,
               ParamSpec("padding", CONV_PADDING, 0, minimum=0,
                         help='zeros added on every side, or "same" / "valid"'),
               _DILATION,
               ParamSpec("groups", COUNT, 1, minimum=1,
                         help="split channels into groups (groups = channels: depthwise)"),
               ParamSpec("bias", BOOL, True, help="add a learned bias per filter"))),
    LayerType("MaxPool2d", "Pooling", "Keeps the largest value in each window: downsamples each map.",
              (_KERNEL, _POOL_STRIDE, _PADDING, _DILATION, _CEIL)),
    LayerType("AvgPool2d", "Pooling", "Averages each window: downsamples each map.",
              (_KERNEL, _POOL_STRIDE, _PADDING, _CEIL,
               ParamSpec("count_include_pad", BOOL, True,
                         help="count padding zeros in the average"))),
    LayerType("AdaptiveAvgPool2d", "Pooling",
              "Averages into a fixed output size whatever the input size (1 = global average).",
              (_size("output_size", 1, "output height and width"),)),
    LayerType("BatchNorm2d", "Normalization",
              "Normalizes each channel with its running mean and variance, then scales and shifts.",
              (_EPS,
               ParamSpec("momentum", OPTIONAL_REAL, 0.1, minimum=0, maximum=1,
                         help="update rate of the running statistics (training only)"),
               ParamSpec("affine", BOOL, True, help="learn a scale and shift per channel"))),
    LayerType("LayerNorm", "Normalization",
              "Normalizes each sample over all of its features, then scales and shifts.",
              (_EPS,
               ParamSpec("elementwise_affine", BOOL, True,
                         help="learn a scale and shift per element"))),
    LayerType("Linear", "Fully connected",
              "Fully connected: every output is a weighted sum of every input feature.",
              (ParamSpec("out_features", COUNT, minimum=1, help="number of outputs"),
               ParamSpec("bias", BOOL, True, help="add a learned bias per output"))),
    LayerType("Flatten", "Other", "Unrolls C × H × W maps into one flat vector of features."),
    LayerType("ReLU", "Activation", "max(0, x): keeps positives, zeroes negatives."),
    LayerType("LeakyReLU", "Activation", "x for positives, negative_slope · x for negatives.",
              (ParamSpec("negative_slope", REAL, 0.01, help="slope for negative inputs"),)),
    LayerType("Sigmoid", "Activation", "1 / (1 + e^−x): squashes into (0, 1)."),
    LayerType("Tanh", "Activation", "tanh(x): squashes into (−1, 1)."),
    LayerType("GELU", "Activation", "x · Φ(x): a smooth ReLU used in transformers."),
    LayerType("ReLU6", "Activation", "min(max(0, x), 6): a ReLU capped at 6 (MobileNet)."),
    LayerType("SiLU", "Activation", "x · σ(x), also called Swish: a smooth ReLU (EfficientNet)."),
    LayerType("Hardswish", "Activation",
              "x · ReLU6(x + 3) / 6: Swish made of straight pieces (MobileNetV3)."),
    LayerType("Hardsigmoid", "Activation",
              "ReLU6(x + 3) / 6: a sigmoid made of straight pieces, from 0 to 1 (MobileNetV3)."),
    LayerType("Softmax", "Activation",
              "Turns the channels (or features) into probabilities that sum to 1."),
    LayerType("Dropout", "Other", "Zeroes random units while training; does nothing at inference.",
              (ParamSpec("p", REAL, 0.5, minimum=0, maximum=1,
                         help="probability of zeroing a unit"),)),
    LayerType("Identity", "Other",
              "Passes its input on unchanged: a placeholder, or a named point to look at."),
    LayerType("Add", "Merge", "Adds two or more inputs of equal shape (residual connections).",
              min_inputs=2, max_inputs=None),
    LayerType("Concat", "Merge", "Stacks two or more inputs along the channels (Inception blocks).",
              min_inputs=2, max_inputs=None),
)}

#: the shapes a layer type's input must have: "spatial" [C, H, W], "flat" [F] or "any"
SPATIAL_ONLY = frozenset({"Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d"})


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_number(v: Any) -> bool:
    """A finite number that fits a float (a 400-digit integer does not)."""
    if type(v) is int:
        return v.bit_length() <= 1000
    return type(v) is float and math.isfinite(v)


def _describe(value: Any, depth: int = 0) -> str:
    """How a raw JSON value is shown in a message (short, whatever the value)."""
    if isinstance(value, str):
        return f'"{value[:40]}…"' if len(value) > 40 else f'"{value}"'
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (list, tuple)):
        if depth >= 2:
            return "[…]"
        items = ", ".join(_describe(v, depth + 1) for v in value[:4])
        return "[" + items + (", …" if len(value) > 4 else "") + "]"
    if isinstance(value, dict):
        return "an object"
    if type(value) is int:
        return "a very large number" if value.bit_length() > 64 else str(value)
    if type(value) is float:
        return repr(value)  # 3.0 stays 3.0: the point may be that it isn't whole
    return type(value).__name__


def _bound_text(spec: ParamSpec) -> str:
    parts = []
    if spec.minimum is not None:
        parts.append(f"at least {spec.minimum:g}" if spec.min_inclusive else f"above {spec.minimum:g}")
    if spec.maximum is not None:
        parts.append(f"at most {spec.maximum:g}" if spec.max_inclusive else f"below {spec.maximum:g}")
    return " and ".join(parts)


def _in_range(spec: ParamSpec, v: float) -> bool:
    if spec.minimum is not None:
        if v < spec.minimum or (not spec.min_inclusive and v == spec.minimum):
            return False
    if spec.maximum is not None:
        if v > spec.maximum or (not spec.max_inclusive and v == spec.maximum):
            return False
    return True


def _parse(spec: ParamSpec, value: Any) -> tuple[Any, str | None]:
    """Check one raw value. Returns (resolved value, None) or (None, what is wrong)."""
    kind = spec.kind
    if kind == BOOL:
        if type(value) is bool:
            return value, None
        return None, f"{spec.name} must be true or false, but it is {_describe(value)}"
    if kind in (REAL, OPTIONAL_REAL):
        if value is None and kind == OPTIONAL_REAL:
            return None, None
        if not _is_number(value):
            return None, f"{spec.name} must be a number, but it is {_describe(value)}"
        value = float(value)
        if not _in_range(spec, value):
            return None, f"{spec.name} must be {_bound_text(spec)}, but it is {value:g}"
        return value, None
    if kind == COUNT:
        if not _is_int(value):
            return None, f"{spec.name} must be a whole number, but it is {_describe(value)}"
        if value < spec.minimum:
            return None, f"{spec.name} must be at least {spec.minimum:g}, but it is {_describe(value)}"
        if value > MAX_INT:
            return None, f"{spec.name} must be at most {MAX_INT:,}, but it is {_describe(value)}"
        return value, None
    # PAIR and its variants
    if kind == CONV_PADDING and isinstance(value, str):
        if value in ("same", "valid"):
            return value, None
        if value.lower() in ("same", "valid"):
            return None, f'padding must be written "{value.lower()}" (lower case), not "{value}"'
        return None, f'padding must be a number, [h, w], "same" or "valid", but it is {_describe(value)}'
    if kind == POOL_STRIDE and value is None:
        return None, None
    if _is_int(value):
        pair = (value, value)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (value[0], value[1])
    else:
        extra = ', "same" or "valid"' if kind == CONV_PADDING else ""
        return None, (f"{spec.name} must be a whole number or a pair [h, w]{extra}, "
                      f"but it is {_describe(value)}")
    if min(pair) < spec.minimum:
        return None, f"{spec.name} must be at least {spec.minimum:g}, but it is {_describe(value)}"
    if max(pair) > MAX_INT:
        return None, f"{spec.name} must be at most {MAX_INT:,}, but it is {_describe(value)}"
    return pair, None


def resolve_params(node_id: str, type_name: str, raw: Any
                   ) -> tuple[LayerType | None, dict[str, Any] | None, list[Problem]]:
    """Check a node's raw parameters against its type.

    Returns ``(layer_type, values, errors)``. ``layer_type`` is None for an unknown type;
    ``values`` (every parameter, defaults filled, pairs as ``(h, w)``) is None when any
    parameter is wrong.
    """
    layer = LAYER_TYPES.get(type_name) if isinstance(type_name, str) else None
    if layer is None:
        close = difflib.get_close_matches(str(type_name), list(LAYER_TYPES), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "known types: " + ", ".join(LAYER_TYPES)
        return None, None, [Problem(node_id, ERROR, "unknown-type",
                                    f"unknown layer type {_describe(type_name)}; {hint}")]
    errors: list[Problem] = []
    if not isinstance(raw, dict):
        return layer, None, [Problem(node_id, ERROR, "bad-params",
                                     f"params must be an object of name: value, "
                                     f"but it is {_describe(raw)}")]
    values: dict[str, Any] = {}
    for spec in layer.params:
        if spec.name in raw:
            value, wrong = _parse(spec, raw[spec.name])
            if wrong is not None:
                errors.append(Problem(node_id, ERROR, "bad-param", wrong))
                continue
            values[spec.name] = value
        elif spec.required:
            errors.append(Problem(node_id, ERROR, "missing-param",
                                  f"{layer.name} needs {spec.name} ({spec.help}), but it is missing"))
        else:
            values[spec.name] = _parse(spec, spec.default)[0]
    for name in raw:
        if name not in layer.param_index:
            if name in INFERRED:
                errors.append(Problem(node_id, ERROR, "unknown-param",
                                      f"{name} is inferred from the graph, never stored (change the "
                                      f"layers before this one instead); remove it"))
                continue
            if layer.params:
                close = difflib.get_close_matches(str(name), list(layer.param_index), n=1)
                hint = (f"did you mean {close[0]}?" if close else
                        "its parameters are " + ", ".join(p.name for p in layer.params))
            else:
                hint = "it takes no parameters"
            errors.append(Problem(node_id, ERROR, "unknown-param",
                                  f"{layer.name} has no parameter {_describe(name)}; {hint}"))
    if errors:
        return layer, None, errors
    if values.get("stride", 0) is None:  # pooling: stride defaults to the kernel size
        values["stride"] = values["kernel_size"]
    return layer, values, []


def default_params(type_name: str) -> dict[str, Any]:
    """The parameters a new node of this type starts with on the canvas: only the required ones,
    with teaching-friendly starting values."""
    starts: dict[str, dict[str, Any]] = {
        "Input": {"channels": 3, "height": 32, "width": 32},
        "Conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1},
        "MaxPool2d": {"kernel_size": 2},
        "AvgPool2d": {"kernel_size": 2},
        "AdaptiveAvgPool2d": {"output_size": 1},
        "Linear": {"out_features": 10},
    }
    return dict(starts.get(type_name, {}))

