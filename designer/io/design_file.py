"""Design files (contract §2): JSON, versioned, saved atomically, loaded with one clear message
naming the place for anything that is not a design.

What is checked here is the *file's* structure. Whether the layers make sense (unknown types,
wrong parameters, cycles) is the analysis's job: such a file loads, and shows its errors.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping

from designer.core.atomic import (NotRegularFile, describe_os_error, describe_read_error,
                                  open_regular, write_atomic)
from designer.core.analysis import collector_paused
from designer.core.design import Design, GraphError, Node, classes_problem, text_problem

FORMAT = "cnn-designer"
VERSION = 2  # the newest version read and written; 2 added "classes"
FIRST_VERSION = 1  # what a design without class names is written as (it reads everywhere)
TOP_KEYS = ("format", "version", "name", "classes", "nodes", "edges")
NODE_KEYS = ("id", "type", "params", "position")
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_COORDINATE = 1e12
BYTES_PER_NODE = 60  # about the least a node takes in a file (for sizing work up front)

#: migrations from version v to v + 1, applied in turn to older files
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: lambda data: data,  # version 2 only adds the optional "classes"
}


class DesignError(ValueError):
    """A file or object that is not a design. ``str()`` is the whole message, place included."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _constant(name: str) -> float:
    return float(name)  # NaN, Infinity, -Infinity: kept, then refused with their place


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # in C; only an object with a repeated key is looked at again
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f'the key "{key}" appears twice in one object')
            seen.add(key)
    return result


def _safe_key(key: Any) -> str:
    """A key for a message path, escaped if it isn't text that can be printed or saved."""
    key = str(key)
    return key if text_problem(key) is None else key.encode("utf-8", "backslashreplace").decode()


def _bad_value(item: Any) -> bool:
    """Whether a NaN, an infinity or a string UTF-8 can't write (keys included) is anywhere in
    ``item``. The fast walk every file takes: no paths are built (see ``_check_values``)."""
    stack = [item]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            if not item.isascii() and text_problem(item) is not None:
                return True
        elif kind is dict or (kind is not list and isinstance(item, Mapping)):
            for key in item:
                if type(key) is str and not key.isascii() and text_problem(key) is not None:
                    return True
            extend(item.values())
        elif kind is list:
            extend(item)
        elif kind is float and not math.isfinite(item):
            return True
    return False


def _check_values(value: Any, where: str) -> None:
    """Reject NaN and infinities (they are not JSON) and strings that are not text UTF-8 can
    write (lone surrogates from ``\\ud800`` escapes), keys included, naming the first one's
    place. Iterative: a deeply nested value must not exhaust the stack. Paths are only built
    once something is wrong."""
    if not _bad_value(value):
        return
    stack = [(value, "")]
    while stack:
        item, path = stack.pop()
        kind = type(item)
        if kind is float and not math.isfinite(item):
            shown = "NaN" if item != item else ("Infinity" if item > 0 else "-Infinity")
            raise DesignError(f"{where}{path}: numbers must be finite, but this is {shown}")
        if kind is str:
            wrong = text_problem(item)
            if wrong is not None:
                raise DesignError(f"{where}{path}: {wrong} (ids, names and values must be "
                                  f"plain text)")
        elif isinstance(item, Mapping):
            for k, v in reversed(item.items()):
                sub = f"{path}.{_safe_key(k)}" if path else _safe_key(k)
                wrong = text_problem(k) if isinstance(k, str) else None
                if wrong is not None:
                    raise DesignError(f"{where}{sub}: the key's {wrong} (keys must be plain text)")
                stack.append((v, sub))
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))


def _show(value: Any, limit: int = 60) -> str:
    """A value for a message, whatever it is (never raises, never huge)."""
    if type(value) is int and value.bit_length() > 64:
        return "a very large number"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = _kind(value)
    return text if len(text) <= limit else text[:limit] + "…"


def parse_design(data: Any, where: str = "design") -> Design:
    """Build a Design from the parsed JSON object, or raise DesignError naming the place."""
    if not isinstance(data, Mapping):
        raise DesignError(f"{where}: a design file holds one JSON object, not {_kind(data)}")
    _check_values(dict(data), f"{where}: ")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise DesignError(f"{where}: unknown key {_show(str(unknown[0]))} at the top level "
                          f"(a design has only {', '.join(TOP_KEYS)})")
    if data.get("format") != FORMAT:
        if "format" not in data:
            raise DesignError(f'{where}: this is not a CNN Designer file (no "format": "{FORMAT}")')
        raise DesignError(f'{where}: "format" is {_show(data.get("format"))}; '
                          f'a CNN Designer file says "{FORMAT}"')
    version = data.get("version")
    if type(version) is not int:
        raise DesignError(f'{where}: "version" must be a whole number, got {_kind(version)}')
    if version > VERSION:
        raise DesignError(f"{where}: this design was saved by a newer CNN Designer (file version "
                          f"{_show(version)}); this one reads versions up to {VERSION}: please "
                          f"update")
    if version < 1:
        raise DesignError(f'{where}: "version" {_show(version)} is not a valid version '
                          f'(the first is 1)')
    data = dict(data)
    while version < VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    name = data.get("name")
    if "name" in data and not isinstance(name, str):
        raise DesignError(f'{where}: "name" must be a string, got {_kind(name)}')
    classes = data.get("classes")
    if "classes" in data:
        wrong = classes_problem(classes)
        if wrong is not None:
            raise DesignError(f"{where}: {wrong}")
    for key in ("nodes", "edges"):
        if key not in data:
            raise DesignError(f'{where}: "{key}" is missing (a list; [] if there are none)')
        if not isinstance(data[key], list):
            raise DesignError(f'{where}: "{key}" must be a list, got {_kind(data[key])}')

    nodes: list[Node] = []
    seen: dict[str, int] = {}
    node_keys = frozenset(NODE_KEYS)
    for i, raw in enumerate(data["nodes"]):  # places are written out only for a message
        if type(raw) is not dict and not isinstance(raw, Mapping):
            raise DesignError(f"{where}: nodes[{i}] must be an object with id, type and params, "
                              f"got {_kind(raw)}")
        node_id = raw.get("id")
        if type(node_id) is not str or not node_id:
            raise DesignError(f'{where}: nodes[{i}]: "id" must be a non-empty string, got '
                              f"{_kind(node_id) if node_id != '' else 'an empty string'}")
        if not node_keys.issuperset(raw):
            place = f'{where}: nodes[{i}] ("{node_id}")'
            extra = [k for k in raw if k not in node_keys]
            raise DesignError(f"{place}: unknown key {_show(str(extra[0]))} "
                              f"(a node has only {', '.join(NODE_KEYS)})")
        if node_id in seen:
            raise DesignError(f'{where}: nodes[{i}] ("{node_id}"): the id "{node_id}" is already '
                              f"used by nodes[{seen[node_id]}]; ids must be unique")
        seen[node_id] = i
        node_type = raw.get("type")
        if type(node_type) is not str:
            raise DesignError(f'{where}: nodes[{i}] ("{node_id}"): "type" must be a string such as '
                              f'"Conv2d", got {_kind(node_type)}')
        params = raw.get("params", {})
        if type(params) is not dict and not isinstance(params, Mapping):
            raise DesignError(f'{where}: nodes[{i}] ("{node_id}"): "params" must be an object, '
                              f"got {_kind(params)}")
        position = raw.get("position")
        if position is not None or "position" in raw:
            if (type(position) is not list or len(position) != 2
                    or not all(type(v) in (int, float) and abs(v) <= MAX_COORDINATE
                               for v in position)):
                raise DesignError(f'{where}: nodes[{i}] ("{node_id}"): "position" must be [x, y] '
                                  f"with two numbers (canvas coordinates, at most "
                                  f"{MAX_COORDINATE:g} in size)")
            position = (position[0], position[1])
        nodes.append(Node(node_id, node_type, dict(params), position,
                          params_omitted="params" not in raw))

    edges: list[tuple[str, str]] = []
    seen_edges: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(data["edges"]):
        if (type(raw) is not list or len(raw) != 2 or type(raw[0]) is not str
                or type(raw[1]) is not str):
            raise DesignError(f'{where}: edges[{i}] must be a pair ["source id", "target id"], '
                              f"got {_show(raw)}")
        edge = (raw[0], raw[1])
        for end in edge:
            if end not in seen:
                raise DesignError(f'{where}: edges[{i}]: there is no node "{end}"')
        if edge in seen_edges:
            raise DesignError(f'{where}: edges[{i}] repeats edges[{seen_edges[edge]}] '
                              f'("{edge[0]}" → "{edge[1]}")')
        seen_edges[edge] = i
        edges.append(edge)
    try:
        design = Design.from_parts(name, nodes, edges)
        if classes is not None:
            design.set_classes(classes)
    except GraphError as exc:  # already checked above; kept as a safety net with a clear message
        raise DesignError(f"{where}: {exc}") from None
    return design


def design_from_json(text: str, where: str = "design") -> Design:
    """Parse JSON text into a Design (DesignError for anything wrong, never another exception)."""
    # a large file makes hundreds of thousands of objects and no reference cycles: the cyclic
    # collector's repeated scans of them would cost a third of the load
    with collector_paused(len(text) // BYTES_PER_NODE):
        try:
            data = json.loads(text, parse_constant=_constant, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise DesignError(f"{where}: not valid JSON at line {exc.lineno}, column {exc.colno}: "
                              f"{exc.msg}") from None
        except RecursionError:
            raise DesignError(f"{where}: the JSON is nested too deeply to be a design") from None
        except ValueError as exc:
            raise DesignError(f"{where}: {exc}") from None
        return parse_design(data, where)


def load_design(source: str | os.PathLike | Mapping[str, Any]) -> Design:
    """A design from a file path or from an already-parsed dict (contract §5)."""
    if isinstance(source, Mapping):
        return parse_design(source)
    if not isinstance(source, (str, os.PathLike)):
        raise DesignError(f"load_design takes a file path or a dict, not {type(source).__name__}")
    path = Path(source)
    where = str(path)
    try:
        with open_regular(path, "a design file") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except NotRegularFile as exc:
        raise DesignError(str(exc)) from None
    except OSError as exc:
        raise DesignError(describe_read_error(exc, path, "a design file")) from None
    if len(raw) > MAX_FILE_BYTES:
        raise DesignError(f"{where}: the file is larger than {MAX_FILE_BYTES // 2**20} MiB; "
                          f"a design file is never that large, so this is not one")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DesignError(f"{where}: not a text (UTF-8) file: byte {exc.start} can't be decoded; "
                          f"is this really a design file?") from None
    if not text.strip():
        raise DesignError(f"{where}: the file is empty")
    return design_from_json(text, where)


def design_to_dict(design: Design) -> dict[str, Any]:
    """The design as the contract's JSON object (defaults the user omitted stay omitted)."""
    out: dict[str, Any] = {"format": FORMAT,
                           "version": VERSION if design.classes is not None else FIRST_VERSION}
    if design.name is not None:
        out["name"] = design.name
    if design.classes is not None:
        out["classes"] = list(design.classes)
    nodes = []
    for node in design.nodes:
        item: dict[str, Any] = {"id": node.id, "type": node.type}
        if node.params or not node.params_omitted:
            item["params"] = node.params
        if node.position is not None:
            item["position"] = list(node.position)
        nodes.append(item)
    out["nodes"] = nodes
    out["edges"] = [list(e) for e in design.edges]
    return out


def design_to_json(design: Design) -> str:
    """Readable, diff-friendly JSON: one node and one edge per line."""
    data = design_to_dict(design)

    def dump(value: Any) -> str:
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise DesignError(f"can't save: a value is not valid in JSON ({exc})") from None
        except RecursionError:
            raise DesignError("can't save: a parameter value is nested too deeply") from None

    lines = ["{"]
    for key in ("format", "version", "name", "classes"):
        if key in data:
            lines.append(f'  "{key}": {dump(data[key])},')
    for key in ("nodes", "edges"):
        items = data[key]
        close = "]," if key == "nodes" else "]"
        if not items:
            lines.append(f'  "{key}": []{"," if key == "nodes" else ""}')
            continue
        lines.append(f'  "{key}": [')
        lines += [f"    {dump(item)}{',' if i < len(items) - 1 else ''}" for i, item in enumerate(items)]
        lines.append(f"  {close}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (see ``write_atomic``); DesignError on failure."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DesignError(f"can't save to {path}: the text holds a character that can't be "
                          f"written as UTF-8 (U+{ord(text[exc.start]):04X}, half of a character "
                          f"pair); rename the layer or design that holds it") from None
    try:
        write_atomic(path, lambda handle: handle.write(data))
    except OSError as exc:
        raise DesignError(describe_os_error(exc, path)) from None


def save_design(design: Design, path: str | os.PathLike) -> None:
    """Save atomically (contract §2). Raises DesignError with a clear message on failure; the
    previous file, if any, is then untouched."""
    write_text_atomic(path, design_to_json(design))
