"""Atomic file writing, shared by every saver: never leave a half-written file in place of a good one.

A save writes a temporary file beside the target, named ``.NAME.PID.RANDOM.tmp`` after the writer's
process id, flushes it to disk and renames it over the target. A writer killed mid-save leaves its
temporary file behind; the next save of the same target removes those of writers that are gone.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import BinaryIO, Callable

#: leftovers from before temporary files carried a PID (``tempfile.mkstemp``'s 8 random
#: characters) are removed once they are this old: no save takes that long
_ANONYMOUS_LEFTOVER_SECONDS = 3600.0


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (of any user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True  # unknown: never remove what might be in use
    return True


def _leftover_pattern(name: str) -> re.Pattern[str]:
    """Temporary files of saves to ``name``: ``.NAME.PID.RANDOM.tmp`` (group 1: the PID) and the
    older ``.NAME.XXXXXXXX.tmp`` (no PID)."""
    return re.compile(rf"^\.{re.escape(name)}\.(?:(\d+)\.[0-9a-f]+|[a-z0-9_]{{8}})\.tmp$")


def remove_leftovers(path: str | os.PathLike) -> list[str]:
    """Remove temporary files that writers killed mid-save left beside ``path``: those whose
    writer process is gone (and PID-less ones older than an hour). Returns the names removed;
    never raises."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    pattern = _leftover_pattern(path.name)
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if match.group(1) is not None:
                pid = int(match.group(1))
                if pid == os.getpid() or _pid_alive(pid):
                    continue
            elif now - entry.stat(follow_symlinks=False).st_mtime < _ANONYMOUS_LEFTOVER_SECONDS:
                continue
            os.unlink(entry.path)
            removed.append(entry.name)
        except (OSError, ValueError):
            continue
    return removed


def _target(path: Path) -> Path:
    """Where a save to ``path`` lands: a symbolic link's final target (the link stays a link)."""
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def _create_temporary(target: Path, mode: int) -> tuple[int, Path]:
    folder = target.parent if str(target.parent) else Path(".")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free name for a temporary file", str(folder))


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, flush it to disk, then rename
    it over ``path``. An existing file keeps its permissions; a new one gets the permissions
    the umask allows (as any program creating a file). Saving onto a symbolic link writes the
    link's target. On any failure the temporary file is removed, the target is untouched, and
    OSError says why (a file name the file system can't encode is an OSError too)."""
    path = Path(path)
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise OSError(errno.EILSEQ, "the file name has characters that can't be written",
                      str(path)) from None
    target = _target(path)
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, "it is not a regular file (a device or pipe)", str(path))
    remove_leftovers(target)
    # a new file: created 0o666 minus the umask, by the kernel (no process-wide umask juggling);
    # an existing one: private while written, then given the old file's permissions
    fd, tmp = _create_temporary(target, 0o600 if info is not None else 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            if info is not None:
                os.fchmod(handle.fileno(), stat.S_IMODE(info.st_mode))
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _sync_folder(target.parent if str(target.parent) else Path("."))


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_kind(mode: int) -> str:
    """What a non-regular file is, with its article, from ``os.stat``'s mode."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def regular_file_problem(path: str | os.PathLike, kind: str) -> str | None:
    """Why ``path`` can't be read as ``kind`` (with its article: "a design file"), or None if it
    is a regular file. Decided by ``os.stat`` alone: a pipe or device is never opened, so
    nothing can block."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return f"{path}: no such file"
    except OSError as exc:
        return describe_read_error(exc, path, kind)
    except ValueError:  # a NUL character, or a name the file system can't encode
        return f"{path!r}: not a usable file name"
    if stat.S_ISDIR(info.st_mode):
        return f"{path}: is a folder, not {kind}"
    if not stat.S_ISREG(info.st_mode):
        return f"{path}: not a regular file ({file_kind(info.st_mode)}); give {kind}"
    return None


class NotRegularFile(OSError):
    """A path that can't be opened as a regular file; ``str()`` is the whole message."""

    def __str__(self) -> str:
        return str(self.args[0])


def open_regular(path: str | os.PathLike, kind: str) -> BinaryIO:
    """``path`` opened for binary reading if it is a regular file (see
    :func:`regular_file_problem`; ``kind`` names what it should be, with its article), checked
    again on what was opened in case the path was swapped; NotRegularFile saying why otherwise."""
    problem = regular_file_problem(path, kind)
    if problem is not None:
        raise NotRegularFile(problem)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise NotRegularFile(describe_read_error(exc, path, kind)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{path}: not a regular file ({file_kind(mode)}); give {kind}")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def describe_read_error(exc: OSError, path: str | os.PathLike, kind: str) -> str:
    """``PATH: why it can't be read`` in plain words; ``kind`` names what the file should be."""
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file"
    if isinstance(exc, IsADirectoryError):
        article = "" if kind.startswith(("a ", "an ")) else "a "
        return f"{path}: is a folder, not {article}{kind}"
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied (the file can't be read)"
    if isinstance(exc, NotADirectoryError):
        return f"{path}: no such file (a part of the path is not a folder)"
    if exc.errno == errno.ENAMETOOLONG:
        return f"{path}: the file name is too long"
    return f"{path}: can't be read ({exc.strerror or exc})"


def _folder_of(path: str | os.PathLike) -> Path:
    parent = Path(path).parent
    return parent if str(parent) else Path(".")


def _missing_part(path: Path) -> Path | None:
    """The first folder on the way to ``path`` that does not exist (None if they all do)."""
    for part in reversed([path, *path.parents]):
        if str(part) in ("", "."):
            continue
        try:
            if not part.exists():
                return part
        except OSError:
            return part
    return None


def describe_os_error(exc: OSError, path: str | os.PathLike) -> str:
    """``can't save to PATH: why`` in plain words, checking what is really wrong: a folder that
    does not exist, one that exists but can't hold files, a full disk, a read-only disk, ..."""
    folder = _folder_of(path)
    code = exc.errno
    if isinstance(exc, IsADirectoryError) or code == errno.EISDIR:
        why = "it is a folder"
    elif isinstance(exc, FileNotFoundError) or code == errno.ENOENT:
        missing = _missing_part(folder) if not folder.is_dir() else None
        if missing is not None:
            why = f"the folder {missing} does not exist"
        elif folder.is_dir():
            why = (f"the folder {folder} exists but can't hold new files (a system or virtual "
                   f"folder?); choose another folder")
        else:
            why = f"the folder {folder} does not exist"
    elif isinstance(exc, NotADirectoryError) or code == errno.ENOTDIR:
        why = f"{folder} is not a folder (a part of the path is a file)"
    elif isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM):
        if folder.is_dir() and not os.access(folder, os.W_OK):
            why = f"permission denied: you can't write in the folder {folder}"
        else:
            why = f"permission denied: the folder {folder} doesn't accept new files here"
    elif code == errno.EROFS:
        why = f"the folder {folder} is on a read-only disk"
    elif code == errno.ENOSPC:
        why = "the disk is full (no space left on the device)"
    elif code == getattr(errno, "EDQUOT", -1):
        why = "your disk quota is used up"
    elif code == errno.ENAMETOOLONG:
        why = "the file name is too long for the file system"
    elif code == errno.ELOOP:
        why = "too many symbolic links on the way (a link pointing to itself?)"
    elif code == errno.EILSEQ:
        why = "the file name has characters that can't be written"
    elif code == errno.EINVAL and "regular file" in str(exc.strerror or ""):
        why = str(exc.strerror)
    elif code == errno.EFBIG:
        why = "the file would be larger than the file system allows"
    elif code == errno.EIO:
        why = "the disk reported an input/output error"
    else:
        why = exc.strerror or str(exc)
    return f"can't save to {path}: {why}"
