"""Design files (contract §2): JSON, versioned, saved atomically, loaded with one clear message
naming the place for anything that is not a design.

What is checked here is the *file's* structure. Whether the layers make sense (unknown types,
wrong parameters, cycles) is the analysis's job: such a file loads, and shows its errors.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from designer.core.design import Design, GraphError, Node

FORMAT = "cnn-designer"
VERSION = 1
TOP_KEYS = ("format", "version", "name", "nodes", "edges")
NODE_KEYS = ("id", "type", "params", "position")
MAX_FILE_BYTES = 64 * 1024 * 1024

#: migrations from version v to v + 1, applied in turn to older files
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


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


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a design file (numbers must be finite)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f'the key "{key}" appears twice in one object')
        result[key] = value
    return result


def _check_finite(value: Any, where: str) -> None:
    """Reject NaN and infinities anywhere (they are not JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise DesignError(f"{where}: numbers must be finite, got {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


def parse_design(data: Any, where: str = "design") -> Design:
    """Build a Design from the parsed JSON object, or raise DesignError naming the place."""
    if not isinstance(data, Mapping):
        raise DesignError(f"{where}: a design file holds one JSON object, not {_kind(data)}")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise DesignError(f"{where}: unknown key {json.dumps(str(unknown[0]))} at the top level "
                          f"(a design has only {', '.join(TOP_KEYS)})")
    if data.get("format") != FORMAT:
        if "format" not in data:
            raise DesignError(f'{where}: this is not a CNN Designer file (no "format": "{FORMAT}")')
        raise DesignError(f'{where}: "format" is {json.dumps(data.get("format"))[:60]}; '
                          f'a CNN Designer file says "{FORMAT}"')
    version = data.get("version")
    if type(version) is not int:
        raise DesignError(f'{where}: "version" must be a whole number, got {_kind(version)}')
    if version > VERSION:
        raise DesignError(f"{where}: this design was saved by a newer CNN Designer (file version "
                          f"{version}); this one reads versions up to {VERSION}: please update")
    if version < 1:
        raise DesignError(f'{where}: "version" {version} is not a valid version (the first is 1)')
    data = dict(data)
    while version < VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    name = data.get("name")
    if "name" in data and not isinstance(name, str):
        raise DesignError(f'{where}: "name" must be a string, got {_kind(name)}')
    for key in ("nodes", "edges"):
        if key not in data:
            raise DesignError(f'{where}: "{key}" is missing (a list; [] if there are none)')
        if not isinstance(data[key], list):
            raise DesignError(f'{where}: "{key}" must be a list, got {_kind(data[key])}')

    nodes: list[Node] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(data["nodes"]):
        place = f"{where}: nodes[{i}]"
        if not isinstance(raw, Mapping):
            raise DesignError(f"{place} must be an object with id, type and params, got {_kind(raw)}")
        node_id = raw.get("id")
        if not isinstance(node_id, str) or not node_id:
            raise DesignError(f'{place}: "id" must be a non-empty string, got '
                              f"{_kind(node_id) if node_id != '' else 'an empty string'}")
        place = f'{place} ("{node_id}")'
        extra = [k for k in raw if k not in NODE_KEYS]
        if extra:
            raise DesignError(f"{place}: unknown key {json.dumps(str(extra[0]))} "
                              f"(a node has only {', '.join(NODE_KEYS)})")
        if node_id in seen:
            raise DesignError(f'{place}: the id "{node_id}" is already used by nodes[{seen[node_id]}]; '
                              f"ids must be unique")
        seen[node_id] = i
        node_type = raw.get("type")
        if not isinstance(node_type, str):
            raise DesignError(f'{place}: "type" must be a string such as "Conv2d", got {_kind(node_type)}')
        params = raw.get("params", {})
        if not isinstance(params, Mapping):
            raise DesignError(f'{place}: "params" must be an object, got {_kind(params)}')
        _check_finite(dict(params), f"{place}.params")
        position = raw.get("position")
        if position is not None or "position" in raw:
            if (not isinstance(position, list) or len(position) != 2
                    or not all(type(v) in (int, float) and math.isfinite(v) for v in position)):
                raise DesignError(f'{place}: "position" must be [x, y] with two numbers')
            position = (position[0], position[1])
        nodes.append(Node(node_id, node_type, dict(params), position,
                          params_omitted="params" not in raw))

    edges: list[tuple[str, str]] = []
    seen_edges: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(data["edges"]):
        place = f"{where}: edges[{i}]"
        if not isinstance(raw, list) or len(raw) != 2 or not all(isinstance(v, str) for v in raw):
            raise DesignError(f'{place} must be a pair ["source id", "target id"], got '
                              f"{json.dumps(raw)[:60] if _jsonable(raw) else _kind(raw)}")
        for end in raw:
            if end not in seen:
                raise DesignError(f'{place}: there is no node "{end}"')
        edge = (raw[0], raw[1])
        if edge in seen_edges:
            raise DesignError(f'{place} repeats edges[{seen_edges[edge]}] ("{edge[0]}" → "{edge[1]}")')
        seen_edges[edge] = i
        edges.append(edge)
    try:
        design = Design.from_parts(name, nodes, edges)
    except GraphError as exc:  # already checked above; kept as a safety net with a clear message
        raise DesignError(f"{where}: {exc}") from None
    return design


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def design_from_json(text: str, where: str = "design") -> Design:
    """Parse JSON text into a Design (DesignError for anything wrong, never another exception)."""
    try:
        data = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
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
    where = path.name or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DesignError(f"{where}: the file is {size / 2**20:,.0f} MiB; a design file is at most "
                              f"{MAX_FILE_BYTES // 2**20} MiB, so this is not one")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DesignError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DesignError(f"{path}: is a folder, not a design file") from None
    except PermissionError:
        raise DesignError(f"{path}: permission denied (the file can't be read)") from None
    except OSError as exc:
        raise DesignError(f"{path}: can't be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DesignError(f"{where}: not a text (UTF-8) file: byte {exc.start} can't be decoded; "
                          f"is this really a design file?") from None
    return design_from_json(text, where)


def design_to_dict(design: Design) -> dict[str, Any]:
    """The design as the contract's JSON object (defaults the user omitted stay omitted)."""
    out: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    if design.name is not None:
        out["name"] = design.name
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

    lines = ["{"]
    for key in ("format", "version", "name"):
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
    """Write a file so that a crash never leaves a half-written one in place of a good one:
    write a temporary file beside it, flush it to disk, then rename it over the target."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    data = text.encode("utf-8")
    try:
        mode = path.stat().st_mode & 0o777 if path.exists() else None
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except FileNotFoundError:
        raise DesignError(f"can't save to {path}: the folder {folder} does not exist") from None
    except PermissionError:
        raise DesignError(f"can't save to {path}: permission denied") from None
    except OSError as exc:
        raise DesignError(f"can't save to {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, IsADirectoryError):
            raise DesignError(f"can't save to {path}: it is a folder") from None
        raise DesignError(f"can't save to {path}: {exc.strerror or exc}") from None


def save_design(design: Design, path: str | os.PathLike) -> None:
    """Save atomically (contract §2). Raises DesignError with a clear message on failure; the
    previous file, if any, is then untouched."""
    write_text_atomic(path, design_to_json(design))
