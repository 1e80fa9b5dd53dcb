"""Built-in template designs, stored as design files in resources/templates/."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from designer.core.design import Design
from designer.io.design_file import DesignError, load_design

_PACKAGE = Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    """resources/ as installed in a wheel (designer/_resources) or in a source checkout."""
    for candidate in (_PACKAGE / "_resources", _PACKAGE.parent / "resources"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("CNN Designer's resources folder is missing from this installation")


@dataclass(frozen=True)
class Template:
    id: str
    title: str
    description: str
    path: Path

    def load(self) -> Design:
        return load_design(self.path)


def list_templates() -> list[Template]:
    """The templates in gallery order."""
    folder = resources_dir() / "templates"
    entries = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return [Template(e["id"], e["title"], e["description"], folder / f"{e['id']}.json")
            for e in entries]


def find_template(template_id: str) -> Template:
    """A template by id; DesignError listing the known ids if there is none."""
    templates = list_templates()
    for t in templates:
        if t.id == template_id:
            return t
    known = ", ".join(t.id for t in templates)
    raise DesignError(f'there is no template "{template_id}"; the templates are: {known}')
