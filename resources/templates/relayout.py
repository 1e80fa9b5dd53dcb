"""Give the built-in templates the automatic layout's positions (``designer.layout``, contract
§7): every node's "position" is set to where the layout puts its card, and nothing else in the
files changes (each is written with the project's ``design_to_json``, and refused if that would
change anything but positions). The layout is deterministic, so running this again changes
nothing.

    .venv/bin/python resources/templates/relayout.py           # rewrite the templates
    .venv/bin/python resources/templates/relayout.py --check   # exit 1 if one is out of date
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from designer.core.layout import layout  # noqa: E402
from designer.io.design_file import design_from_json, design_to_json, write_text_atomic  # noqa: E402


def without_positions(text: str) -> str:
    design = design_from_json(text)
    for node_id in design.node_ids:
        design.move_node(node_id, None)
    return design_to_json(design)


def relaid(text: str, where: str) -> str:
    """The file's text with the layout's positions."""
    design = design_from_json(text, where)
    if design_to_json(design) != text:
        raise SystemExit(f"{where}: the file is not as design_to_json writes it; rewriting it "
                         f"would change more than positions")
    for node_id, position in layout(design).positions().items():
        design.move_node(node_id, position)
    new = design_to_json(design)
    if without_positions(new) != without_positions(text):
        raise SystemExit(f"{where}: laying it out would change more than positions")
    return new


def main(argv: list[str]) -> int:
    check = "--check" in argv
    entries = json.loads((HERE / "index.json").read_text(encoding="utf-8"))
    stale = []
    for entry in entries:
        path = HERE / f"{entry['id']}.json"
        text = path.read_text(encoding="utf-8")
        new = relaid(text, path.name)
        if new == text:
            continue
        stale.append(path.name)
        if not check:
            write_text_atomic(path, new)
    if check:
        print("out of date: " + ", ".join(stale) if stale else "every template is laid out")
        return 1 if stale else 0
    print("laid out: " + ", ".join(stale) if stale else "nothing to change")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
