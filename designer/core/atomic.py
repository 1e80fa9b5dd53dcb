"""Atomic file writing, shared by every saver: never leave a half-written file in place of a good one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, flush it to disk, then rename
    it over ``path`` (keeping an existing file's permissions). On any failure the temporary file
    is removed, the target is untouched, and OSError says why."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise IsADirectoryError(21, "it is a folder", str(path))
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def describe_read_error(exc: OSError, path: str | os.PathLike, kind: str) -> str:
    """``PATH: why it can't be read`` in plain words; ``kind`` names what the file should be."""
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file"
    if isinstance(exc, IsADirectoryError):
        return f"{path}: is a folder, not a {kind}"
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied (the file can't be read)"
    return f"{path}: can't be read ({exc.strerror or exc})"


def describe_os_error(exc: OSError, path: str | os.PathLike) -> str:
    """``can't save to PATH: why`` in plain words."""
    if isinstance(exc, FileNotFoundError):
        why = f"the folder {Path(path).parent} does not exist"
    elif isinstance(exc, PermissionError):
        why = "permission denied"
    elif isinstance(exc, IsADirectoryError):
        why = "it is a folder"
    else:
        why = exc.strerror or str(exc)
    return f"can't save to {path}: {why}"
