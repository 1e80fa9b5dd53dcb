"""Trained weights that ship with the project (contract §6), in resources/trained/.

``resources/trained/index.json`` (written by ``resources/trained/train_models.py``) lists one
entry per trained template: its ``template`` id, its ``weights`` file (an .npz as in contract
§3), the ``classes`` it predicts, the ``data`` it was trained on, its ``val_accuracy`` and the
``fingerprint`` of the design's structure. A design finds its weights by that fingerprint, so a
template whose layers were changed no longer matches, and the same layers in any file (or under
another name, on other positions, with other class names) do. A design that differs from a
trained template only in how its parameters are written (a default written out, ``3`` for
``[3, 3]``, its nodes or edges listed in another order, with each node's inputs in the same
order) is the same network, and finds the same weights.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from designer.core.catalog import resolve_params
from designer.core.design import Design
from designer.engine.weights import WeightsError
from designer.io.design_file import DesignError
from designer.io.templates import find_template, resources_dir

#: the format name index.json carries
FORMAT = "cnn-designer-trained"


def fingerprint(design: Design) -> str:
    """A hash of what the weights depend on: every node's id, type and parameters, and the edges
    in order. Names, positions and class names don't count."""
    structure = {
        "nodes": [[n.id, n.type, n.params] for n in design.nodes],
        "edges": [list(e) for e in design.edges],
    }
    text = json.dumps(structure, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def structure(design: Design) -> dict[str, tuple[str, Any, tuple[str, ...]]]:
    """The network a design computes, however it is written: for every node id, its type, its
    parameters with every default filled in (as the layer catalog reads them; as written when
    they don't read) and the nodes feeding it, in order. Two designs with equal structures
    compute the same function of the same weights."""
    result = {}
    for node in design.nodes:
        _, values, errors = resolve_params(node.id, node.type, node.params)
        params = values if values is not None and not errors else node.params
        key = json.dumps(params, sort_keys=True, default=repr)  # tuples and lists alike
        result[node.id] = (node.type, key, tuple(design.sources(node.id)))
    return result


@dataclass(frozen=True)
class TrainedModel:
    template: str
    weights: Path
    classes: tuple[str, ...]
    data: str
    val_accuracy: float
    fingerprint: str
    entry: dict[str, Any]

    @property
    def title(self) -> str:
        """The template's title ("LeNet-5"), or its id if the template can't be found."""
        info = _template_info(self)
        return info.title if info is not None else self.template

    def accuracy_text(self) -> str:
        """The validation accuracy as people read it: "99.1 %"."""
        return f"{100 * self.val_accuracy:.1f} %"

    def describe(self) -> str:
        """One line for a user: "trained on builtin:digits (validation accuracy 99.1 %)"."""
        return f"trained on {self.data} (validation accuracy {self.accuracy_text()})"


def trained_dir() -> Path:
    return resources_dir() / "trained"


_lock = threading.Lock()
_index_cache: dict[Path, tuple[tuple[int, int], list[TrainedModel]]] = {}


def list_trained() -> list[TrainedModel]:
    """The shipped trained models, in index order (none if the index is missing). The index is
    read again only when its file changes."""
    folder = trained_dir()
    path = folder / "index.json"
    try:
        info = path.stat()
    except OSError:
        return []
    stamp = (info.st_mtime_ns, info.st_size)
    with _lock:
        cached = _index_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return list(cached[1])
    index = json.loads(path.read_text(encoding="utf-8"))
    models = [TrainedModel(e["template"], folder / e["weights"], tuple(e["classes"]), e["data"],
                           float(e["val_accuracy"]), e["fingerprint"], e)
              for e in index["models"]]
    with _lock:
        _index_cache[path] = (stamp, models)
    return list(models)


@dataclass(frozen=True)
class _TemplateInfo:
    title: str
    nodes: int  # how many nodes the trained template has
    structure: dict[str, tuple[str, Any, tuple[str, ...]]] | None  # None: the file changed


_template_cache: dict[tuple[str, str], _TemplateInfo | None] = {}


def _template_info(model: TrainedModel) -> _TemplateInfo | None:
    """The template a model was trained for, read once: its title, its node count and its
    structure (None when the template file no longer has the fingerprint the weights were
    trained for). None if the template can't be read."""
    key = (model.template, model.fingerprint)
    with _lock:
        if key in _template_cache:
            return _template_cache[key]
    try:
        template = find_template(model.template)
        design = template.load()
    except (DesignError, OSError, ValueError):
        info = None
    else:
        same = fingerprint(design) == model.fingerprint
        info = _TemplateInfo(template.title, len(design.nodes),
                             structure(design) if same else None)
    with _lock:
        _template_cache[key] = info
    return info


def find_trained(design: Design) -> TrainedModel | None:
    """The shipped model whose design has this design's structure, or None. Cheap for a design
    of another size (its nodes are only counted), so it can be asked after every edit."""
    candidates = []
    for model in list_trained():
        info = _template_info(model)
        if info is None or info.nodes == len(design.nodes):
            candidates.append((model, info))
    if not candidates:
        return None
    key = fingerprint(design)
    for model, _ in candidates:
        if model.fingerprint == key:
            return model
    mine = None
    for model, info in candidates:
        if info is None or info.structure is None:
            continue
        if mine is None:
            mine = structure(design)
        if mine == info.structure:
            return model
    return None


def trained_for(design: Design) -> TrainedModel:
    """Like :func:`find_trained`, but a WeightsError saying which designs have trained weights
    when this one has none."""
    model = find_trained(design)
    if model is not None:
        return model
    names = ", ".join(m.template for m in list_trained()) or "none"
    what = f'the design "{design.name}"' if design.name else "this design"
    raise WeightsError(
        f"there are no trained weights for {what}: shipped weights fit only the unchanged "
        f"templates they were trained for ({names}), and a changed layer, parameter, node id or "
        f"connection makes them not fit; use weights=None for seeded weights, or train the "
        f"design (cnn-designer train) and give its weights.npz")
