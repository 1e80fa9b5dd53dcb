"""Plain-words messages for failures the app reports, shared by its panels."""
from __future__ import annotations

import os

from designer.core.atomic import describe_os_error
from designer.core.design import text_problem

#: what writing a file can raise besides the project's own errors: the disk, the folder or the
#: permissions (OSError), text no encoding can write (UnicodeError), an argument a library
#: refuses (ValueError), and a copy that doesn't fit in memory
WRITE_ERRORS = (OSError, UnicodeError, ValueError, MemoryError)


def write_failure(exc: BaseException, path: str | os.PathLike) -> str:
    """``can't save to PATH: why`` for any failure of writing a file."""
    if isinstance(exc, OSError):
        return describe_os_error(exc, path)
    if isinstance(exc, UnicodeError):
        return (f"can't save to {path}: it would hold text that can't be written as UTF-8 "
                f"(half of a character pair, e.g. in a layer's id); rename that layer")
    if isinstance(exc, MemoryError):
        return f"can't save to {path}: not enough memory to write it"
    text = str(exc)
    return text if text.startswith("can't save") else f"can't save to {path}: {text}"


def id_problem(node_id: str) -> str | None:
    """Why ``node_id`` can't be a layer's id, or None."""
    if not isinstance(node_id, str) or not node_id.strip():
        return "an id can't be empty"
    wrong = text_problem(node_id)
    if wrong is not None:
        return f"the id {node_id.encode('utf-8', 'backslashreplace').decode()!r} can't be saved: {wrong}"
    return None
