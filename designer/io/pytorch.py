"""PyTorch code export (contract §8): one readable, self-contained ``.py`` file for a valid design.

The file holds a ``torch.nn.Module`` named after the design, its layers created in ``__init__``
with their input sizes written in, a ``forward`` that follows the graph in topological order, and
``build_model(weights_path=None)``. The module's ``state_dict()`` keys are exactly the weights
file's (§3; plus BatchNorm's ``num_batches_tracked``): a node id with dots (torchvision's
``features.0``, ``layer1.0.conv1``) becomes nested ``nn.ModuleDict`` containers, so the keys come
out as the ids say.
"""
from __future__ import annotations

import keyword
import re
from typing import Any

from designer.core.analysis import Analysis
from designer.core.catalog import LAYER_TYPES
from designer.core.design import Design
from designer.core.problems import ERROR


class CodeExportError(ValueError):
    """A design that can't be written as PyTorch code; the message says why and how to fix it."""


#: node types written as expressions in ``forward``, not as modules
NO_MODULE = frozenset({"Input", "Add", "Concat", "Flatten"})

#: attribute names ``nn.Module`` and ``nn.ModuleDict`` already have (PyTorch 2.x): a child module
#: can't take one of these names (``add_module`` refuses it)
TAKEN_NAMES = frozenset("""
T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl
_forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks
_forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name
_is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
_maybe_warn_non_full_backward_hook _modules _named_members _non_persistent_buffers_set _parameters
_register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
_save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version
_wrapped_call_impl add_module apply bfloat16 buffers call_super_init children clear compile cpu
cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
get_submodule half ipu items keys load_state_dict modules mtia named_buffers named_children
named_modules named_parameters parameters pop register_backward_hook register_buffer
register_forward_hook register_forward_pre_hook register_full_backward_hook
register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
set_submodule share_memory state_dict to to_empty train training type update values xpu
zero_grad""".split())

#: names a forward variable must not take (they are used in the generated code)
_RESERVED_VARIABLES = frozenset({"self", "torch", "nn", "np", "x"})


def _attr_name(name: str) -> bool:
    """True if ``name`` can be written as ``self.name`` (ASCII: Python normalizes other
    identifiers, which would change the key)."""
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name)


def class_name(design_name: str | None) -> str:
    """The module class's name: the design's name in CamelCase (``"VGG-16"`` → ``VGG16``)."""
    words = re.findall(r"[A-Za-z0-9]+", design_name or "")
    name = "".join(w[:1].upper() + w[1:] for w in words)
    if not name:
        return "Network"
    if name[0].isdigit():
        name = "Net" + name
    if keyword.iskeyword(name) or name in ("Tensor", "Module"):
        name += "Net"
    return name


def _size(value: Any) -> str:
    """A kernel size, stride, padding … as PyTorch takes it: one int when both sides agree."""
    if isinstance(value, (tuple, list)):
        if value[0] == value[1]:
            return repr(int(value[0]))
        return f"({int(value[0])}, {int(value[1])})"
    if isinstance(value, str):
        return f'"{value}"'  # "same" or "valid"
    return repr(value)


def _num(value: float) -> str:
    return repr(float(value))


def module_call(layer: str, v: dict[str, Any], in_shape: tuple[int, ...]) -> str:
    """The constructor of one node's module, e.g. ``nn.Conv2d(3, 64, kernel_size=3, padding=1)``:
    input sizes written in, other parameters only where they differ from PyTorch's defaults."""
    args: list[str] = []
    if layer == "Conv2d":
        args = [str(in_shape[0]), str(v["out_channels"]), f"kernel_size={_size(v['kernel_size'])}"]
        if v["stride"] != (1, 1):
            args.append(f"stride={_size(v['stride'])}")
        if v["padding"] != (0, 0):
            args.append(f"padding={_size(v['padding'])}")
        if v["dilation"] != (1, 1):
            args.append(f"dilation={_size(v['dilation'])}")
        if v["groups"] != 1:
            args.append(f"groups={v['groups']}")
        if not v["bias"]:
            args.append("bias=False")
    elif layer in ("MaxPool2d", "AvgPool2d"):
        args = [f"kernel_size={_size(v['kernel_size'])}"]
        if v["stride"] != v["kernel_size"]:
            args.append(f"stride={_size(v['stride'])}")
        if v["padding"] != (0, 0):
            args.append(f"padding={_size(v['padding'])}")
        if layer == "MaxPool2d" and v["dilation"] != (1, 1):
            args.append(f"dilation={_size(v['dilation'])}")
        if v["ceil_mode"]:
            args.append("ceil_mode=True")
        if layer == "AvgPool2d" and not v["count_include_pad"]:
            args.append("count_include_pad=False")
    elif layer == "AdaptiveAvgPool2d":
        args = [_size(v["output_size"])]
    elif layer == "BatchNorm2d":
        args = [str(in_shape[0])]
        if v["eps"] != 1e-5:
            args.append(f"eps={_num(v['eps'])}")
        if v["momentum"] is None or v["momentum"] != 0.1:
            args.append("momentum=None" if v["momentum"] is None else f"momentum={_num(v['momentum'])}")
        if not v["affine"]:
            args.append("affine=False")
    elif layer == "LayerNorm":
        args = ["[" + ", ".join(str(s) for s in in_shape) + "]"]
        if v["eps"] != 1e-5:
            args.append(f"eps={_num(v['eps'])}")
        if not v["elementwise_affine"]:
            args.append("elementwise_affine=False")
    elif layer == "Linear":
        args = [str(in_shape[0]), str(v["out_features"])]
        if not v["bias"]:
            args.append("bias=False")
    elif layer == "LeakyReLU":
        args = [f"negative_slope={_num(v['negative_slope'])}"] if v["negative_slope"] != 0.01 else []
    elif layer == "Softmax":
        args = ["dim=1"]
    elif layer == "Dropout":
        args = [f"p={_num(v['p'])}"] if v["p"] != 0.5 else []
    elif LAYER_TYPES.get(layer) is not None and not LAYER_TYPES[layer].params:
        args = []  # ReLU, Sigmoid, Tanh, GELU and any other parameterless namesake
    else:
        raise CodeExportError(f"there is no PyTorch code for layer type {layer} yet")
    return f"nn.{layer}(" + ", ".join(args) + ")"


def _invalid_message(analysis: Analysis) -> str | None:
    if not analysis.infos():
        return "the design is empty: add an Input node to start"
    errors = [p for p in analysis.problems() if p.severity == ERROR]
    if not errors:
        return None
    shown = "; ".join(str(p) for p in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return (f"the design has {len(errors)} error{'s' if len(errors) != 1 else ''}, so it can't be "
            f"exported as code: {shown}{more}; fix {'them' if len(errors) != 1 else 'it'} first")


class _Tree:
    """Where each module-holding node sits among nested containers."""

    def __init__(self) -> None:
        self.children: dict[str, _Tree | str] = {}  # segment -> subtree or a node id (a layer)


def _place(tree: _Tree, node_id: str, ids_by_prefix: dict[str, str]) -> None:
    parts = node_id.split(".")
    if any(p == "" for p in parts):
        raise CodeExportError(
            f'node "{node_id}": an id with an empty part between dots can\'t be a PyTorch module '
            f"name (its weights would need the key {node_id}.weight); rename the node")
    for p in parts:
        if p in TAKEN_NAMES:
            raise CodeExportError(
                f'node "{node_id}": "{p}" can\'t be a PyTorch module name (nn.Module already has '
                f"an attribute {p}); rename the node")
    here = tree
    for depth, p in enumerate(parts[:-1]):
        child = here.children.get(p)
        if isinstance(child, str):
            raise CodeExportError(
                f'node "{node_id}": its id puts it inside node "{child}", which is a layer, not a '
                f"group of layers; rename one of the two")
        if child is None:
            child = here.children[p] = _Tree()
        here = child
    last = parts[-1]
    if isinstance(here.children.get(last), _Tree):
        inside = next(k for k in ids_by_prefix if k.startswith(node_id + "."))
        raise CodeExportError(
            f'node "{node_id}" is a layer, but node "{inside}" is named as if inside it; '
            f"rename one of the two")
    here.children[last] = node_id


def _quote(text: str) -> str:
    """A string literal, in double quotes where that needs no escapes."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return repr(text)


def _access(parts: list[str]) -> str:
    """How code reaches the module (or container) at this path from ``self``."""
    first = parts[0]
    text = f"self.{first}" if _attr_name(first) else f"getattr(self, {_quote(first)})"
    for p in parts[1:]:
        text += f"[{_quote(p)}]"
    return text


def _variable_names(ids: list[str]) -> dict[str, str]:
    used = set(_RESERVED_VARIABLES)
    names: dict[str, str] = {}
    for node_id in ids:
        base = re.sub(r"\W", "_", node_id, flags=re.ASCII).strip("_") or "out"
        if base[0].isdigit():
            base = "out_" + base
        if keyword.iskeyword(base):
            base += "_"
        if base in used:
            n = 2
            while f"{base}_{n}" in used:
                n += 1
            base = f"{base}_{n}"
        used.add(base)
        names[node_id] = base
    return names


def _shape_text(shape: tuple[int, ...] | None) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]" if shape is not None else "[?]"


def pytorch_code(design: Design, analysis: Analysis | None = None) -> str:
    """The PyTorch code of a valid design (contract §8). Raises CodeExportError for an invalid
    design, or for node ids that can't be PyTorch module names (the message names the node)."""
    analysis = analysis or Analysis(design)
    wrong = _invalid_message(analysis)
    if wrong is not None:
        raise CodeExportError(wrong)
    infos = analysis.infos()
    totals = analysis.totals()
    order = [i.id for i in infos]

    def in_shape(node_id: str) -> tuple[int, ...]:
        return analysis.info(design.sources(node_id)[0]).shape

    module_ids = [i.id for i in infos if i.type not in NO_MODULE]
    tree = _Tree()
    for node_id in module_ids:
        _place(tree, node_id, {k: k for k in module_ids})
    calls = {i.id: module_call(i.type, i.values, in_shape(i.id)) for i in infos
             if i.type not in NO_MODULE}
    name = class_name(design.name)

    lines: list[str] = []
    title = design.name or "Untitled design"
    lines += [f'"""{_docstring_text(title)}: PyTorch code written by CNN Designer.', ""]
    lines += [f"Totals: {totals['params']:,} parameters, {totals['macs']:,} mult-adds "
              f"(batch 1), input {_shape_text(infos[0].shape)}.",
              "State-dict keys are the design's weights-file keys; build_model(path) loads",
              "CNN Designer's weights file (.npz).", '"""']
    lines += ["import numpy as np", "import torch", "from torch import nn", "", ""]
    lines += [f"class {name}(nn.Module):", f'    """{_docstring_text(title)}"""', "",
              "    def __init__(self):", "        super().__init__()"]

    def emit(here: _Tree, path: list[str]) -> None:
        for seg, child in here.children.items():
            parts = path + [seg]
            if isinstance(child, _Tree):
                value = "nn.ModuleDict()"
            else:
                value = calls[child]
            if not path:
                if _attr_name(seg):
                    lines.append(f"        self.{seg} = {value}")
                else:
                    lines.append(f"        self.add_module({_quote(seg)}, {value})")
            else:
                lines.append(f"        {_access(path)}[{_quote(seg)}] = {value}")
            if isinstance(child, _Tree):
                emit(child, parts)

    emit(tree, [])
    if not module_ids:
        lines.append("        # no layers with modules: the network is built in forward")

    variables = _variable_names(order)
    input_id = next(i.id for i in infos if i.type == "Input")
    variables[input_id] = "x"
    lines += ["", "    def forward(self, x):", f"        # {input_id}: {_shape_text(infos[0].shape)}"]
    for info in infos:
        if info.type == "Input":
            continue
        sources = [variables[s] for s in design.sources(info.id)]
        if info.type == "Add":
            expr = " + ".join(sources)
        elif info.type == "Concat":
            expr = "torch.cat([" + ", ".join(sources) + "], dim=1)"
        elif info.type == "Flatten":
            expr = f"torch.flatten({sources[0]}, 1)"
        else:
            expr = f"{_access(info.id.split('.'))}({sources[0]})"
        lines.append(f"        {variables[info.id]} = {expr}  # {_shape_text(info.shape)}")
    outputs = [i for i in order if not design.targets(i)]
    if len(outputs) == 1:
        lines.append(f"        return {variables[outputs[0]]}")
    else:
        lines.append("        return " + ", ".join(variables[o] for o in outputs))
    lines += ["", "",
              "def build_model(weights_path=None):",
              '    """The network in eval mode, with CNN Designer\'s weights file (.npz) loaded when',
              '    a path is given."""',
              f"    model = {name}()",
              "    if weights_path is not None:",
              "        with np.load(weights_path, allow_pickle=False) as archive:",
              "            state = {key: torch.from_numpy(np.asarray(archive[key], dtype=np.float32))",
              "                     for key in archive.files}",
              "        for key, value in model.state_dict().items():",
              "            if key.endswith(\".num_batches_tracked\") and key not in state:",
              "                state[key] = value  # BatchNorm's step counter: not used at inference",
              "        model.load_state_dict(state, strict=True)",
              "    return model.eval()", ""]
    return "\n".join(lines)


def _docstring_text(text: str) -> str:
    """Text safe inside a triple-quoted docstring."""
    return text.replace("\\", "/").replace('"""', "'''").replace("\n", " ")


def write_pytorch_code(design: Design, path: Any, analysis: Analysis | None = None) -> None:
    """Write :func:`pytorch_code` to ``path`` atomically (OSError on failure; the file is then
    left as it was)."""
    from designer.core.atomic import write_atomic
    text = pytorch_code(design, analysis).encode("utf-8")
    write_atomic(path, lambda handle: handle.write(text))
