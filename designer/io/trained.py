"""Trained weights that ship with the project (contract §6), in resources/trained/.

``resources/trained/index.json`` (written by ``resources/trained/train_models.py``) lists one
entry per trained template: its ``template`` id, its ``weights`` file (an .npz as in contract
§3), the ``classes`` it predicts, the ``data`` it was trained on, its ``val_accuracy`` and the
``fingerprint`` of the design's structure. A design finds its weights by that fingerprint, so a
template whose layers were changed no longer matches, and the same layers in any file (or under
another name, on other positions, with other class names) do.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from designer.core.design import Design
from designer.engine.weights import WeightsError
from designer.io.templates import resources_dir

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


@dataclass(frozen=True)
class TrainedModel:
    template: str
    weights: Path
    classes: tuple[str, ...]
    data: str
    val_accuracy: float
    fingerprint: str
    entry: dict[str, Any]


def trained_dir() -> Path:
    return resources_dir() / "trained"


def list_trained() -> list[TrainedModel]:
    """The shipped trained models, in index order (none if the index is missing)."""
    folder = trained_dir()
    path = folder / "index.json"
    if not path.is_file():
        return []
    index = json.loads(path.read_text(encoding="utf-8"))
    return [TrainedModel(e["template"], folder / e["weights"], tuple(e["classes"]), e["data"],
                         float(e["val_accuracy"]), e["fingerprint"], e)
            for e in index["models"]]


def find_trained(design: Design) -> TrainedModel | None:
    """The shipped model whose design has this design's structure, or None."""
    key = fingerprint(design)
    for model in list_trained():
        if model.fingerprint == key:
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
