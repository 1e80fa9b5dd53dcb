"""Built-in template designs, stored as design files in resources/templates/."""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from designer.core.design import Design
from designer.io.design_file import DesignError, load_design

#: where the wheel (and the one-folder bundle) put the repository's resources/ folder
PACKAGED = "_resources"
#: a source checkout or an editable install: resources/ beside the package
_CHECKOUT = Path(__file__).resolve().parent.parent.parent / "resources"


def resources_dir() -> Path:
    """The folder of templates, samples, trained weights, colour maps and icons: the package's
    ``_resources`` (found through importlib.resources) in a wheel or the bundle, or the
    repository's ``resources/`` in a source checkout."""
    return installed_folder(PACKAGED, _CHECKOUT, "resources")


def installed_folder(packaged_path: str, checkout: Path, what: str) -> Path:
    """A folder the installation carries: ``designer/<packaged_path>`` in a wheel or the bundle
    (found through importlib.resources), else ``checkout`` in a source checkout; a message
    naming ``what`` is missing when neither is there."""
    packaged = resources.files("designer") / packaged_path
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"CNN Designer's {what} are missing from this installation: "
                            f"neither {packaged} nor {checkout} is a folder; reinstall it")


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
