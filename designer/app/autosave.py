"""Autosave and crash recovery. While a design has unsaved changes, it is written every few seconds
to the platform's app-data folder (QStandardPaths); a clean exit removes the copy, so a copy found
at start-up means the app was killed or crashed, and the user is offered the work back.

Every running instance owns its copy: it holds a lock file (``KEY.lock``, a ``QLockFile``) beside
``KEY.json`` and ``KEY.meta`` for as long as it has a copy there. Another instance offers a copy
back only when it can take that lock, i.e. when Qt finds the owner's process gone (the PID
written in the lock file no longer runs, or is another program now). While it offers the copy it
holds the lock itself, so two new instances never recover (or discard) the same work. Locks are
never considered stale by age: an instance may keep unsaved work open for days.
"""
from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer, Signal

from designer.app.document import Document
from designer.core.atomic import write_atomic
from designer.io.design_file import DesignError, design_to_json, load_design

INTERVAL_MS = 5000
#: a lock file without an owner's details (its writer was killed between creating and writing
#: it) is taken over once it is this old
UNREADABLE_LOCK_S = 60.0
#: the names of this folder's files: KEY.json, KEY.meta, KEY.lock, and the temporary files of an
#: atomic write, .KEY.json.XXXX.tmp / .KEY.meta.XXXX.tmp
_NAME = re.compile(r"^\.?(?P<key>[0-9a-f]{32})\.(?P<rest>.+)$")


APP_NAME = "CNN Designer"


def autosave_dir() -> Path:
    """``autosave`` in the app's data folder (``~/.local/share/CNN Designer/`` on Linux: the
    application name is set and the organization name is left empty, see
    ``main_window.configure_application``)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".cnn-designer") / "autosave"


def legacy_autosave_dirs() -> list[Path]:
    """Where earlier versions autosaved: they set the organization name to the application's
    too, so the data folder was ``CNN Designer/CNN Designer/``. Copies left there by instances
    that are gone are still offered back (and the emptied folders removed)."""
    return [autosave_dir().parent / APP_NAME / "autosave"]


def _paths(folder: Path, key: str) -> tuple[Path, Path, Path]:
    """The design, meta and lock file of one autosave key."""
    return folder / f"{key}.json", folder / f"{key}.meta", folder / f"{key}.lock"


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def claim(lock_path: Path) -> QLockFile | None:
    """Take the lock at ``lock_path`` if its owner is gone (or there is none); None while the
    owner runs. Staleness is Qt's: the PID (and program name) written in the file is checked;
    age alone never makes a lock stale. A lock file that names no owner (its writer was killed
    while creating it) is taken over once it is a minute old."""
    lock = QLockFile(str(lock_path))
    lock.setStaleLockTime(0)
    if lock.tryLock(0):
        return lock
    if lock.error() == QLockFile.LockError.LockFailedError and not _owner_named(lock):
        try:
            age = time.time() - lock_path.stat().st_mtime
        except OSError:
            age = 0.0
        # removeStaleLockFile refuses while an owner holds the file's native lock
        if age > UNREADABLE_LOCK_S and lock.removeStaleLockFile() and lock.tryLock(0):
            return lock
    return None


def _owner_named(lock: QLockFile) -> bool:
    info = lock.getLockInfo()  # (pid, hostname, program); pid 0 when the file names no one
    return isinstance(info, tuple) and bool(info) and isinstance(info[0], int) and info[0] > 0


@dataclass
class Recoverable:
    """An autosaved design left by an instance that is gone. The finder holds its lock until
    ``release`` or ``discard`` (so no other instance offers it meanwhile)."""

    design_path: Path  # the autosaved design
    original: Path | None  # the file it was opened from, if any
    saved_at: float
    name: str
    lock: QLockFile | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        return self.design_path.stem

    def discard(self) -> None:
        """Delete the copy, then give up its lock (which removes the lock file)."""
        for path in (self.design_path, self.design_path.with_suffix(".meta")):
            _unlink(path)
        self.release()
        if self.design_path.parent in legacy_autosave_dirs():
            _remove_if_empty(self.design_path.parent)  # the last copy an earlier version left

    def release(self) -> None:
        """Keep the copy (it is offered again next time) and give up its lock."""
        if self.lock is not None:
            self.lock.unlock()
            self.lock = None


def find_recoverable() -> list[Recoverable]:
    """Autosaved designs left behind by instances that are gone, newest first, each with its lock
    held by the caller (``release`` or ``discard`` every one). Work of running instances is never
    listed. Leftovers of gone instances without a design (temporary files of an interrupted
    write, a lone meta file, a lock file) are removed on the way. The folders of earlier
    versions (``legacy_autosave_dirs``) are looked in too."""
    found = _find_in(autosave_dir())
    for folder in legacy_autosave_dirs():
        if folder != autosave_dir():
            found += _find_in(folder)
            _remove_if_empty(folder)
    return sorted(found, key=lambda r: r.saved_at, reverse=True)


def _remove_if_empty(folder: Path) -> None:
    """An old autosave folder with nothing left in it goes, and its parent if that is empty too
    (``rmdir`` refuses folders that hold anything: a copy being offered keeps its lock file)."""
    for path in (folder, folder.parent):
        try:
            path.rmdir()
        except OSError:
            return


def _find_in(folder: Path) -> list[Recoverable]:
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return []
    keys: dict[str, list[str]] = {}
    for name in names:
        match = _NAME.match(name)
        if match and not name.endswith(".rmlock"):  # Qt's own helper lock: Qt's business
            keys.setdefault(match["key"], []).append(name)
    found = []
    for key, files in keys.items():
        design_path, meta_path, lock_path = _paths(folder, key)
        lock = claim(lock_path)
        if lock is None:
            continue  # its instance is running (this one included): its work is its own
        for name in files:
            if name.startswith(".") and name.endswith(".tmp"):
                _unlink(folder / name)  # an atomic write that never finished
        if not design_path.is_file():
            _unlink(meta_path)
            lock.unlock()
            continue
        found.append(_describe(design_path, meta_path, lock))
    return found


def _describe(design_path: Path, meta_path: Path, lock: QLockFile) -> Recoverable:
    """What the meta file says about a copy; a missing or broken meta file (the instance was
    killed between writing the two) still leaves the design recoverable."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except (OSError, ValueError):
        meta = {}
    try:
        saved_at = float(meta.get("saved_at") or design_path.stat().st_mtime)
    except (OSError, TypeError, ValueError):
        saved_at = 0.0
    original = meta.get("original")
    name = meta.get("name")
    return Recoverable(design_path,
                       Path(original) if isinstance(original, str) and original else None,
                       saved_at, name if isinstance(name, str) and name else "Untitled", lock)


class Autosaver(QObject):
    """Writes the document's design to the autosave folder while it has unsaved changes, holding
    its key's lock while a copy exists. ``problem`` says (once per run of failures) why a copy
    couldn't be written, and "" once it works again: autosave never interrupts the user, but
    the fact isn't lost."""

    problem = Signal(str)

    def __init__(self, document: Document, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(document)
        self.document = document
        self.key = uuid.uuid4().hex
        self._last_index: int | None = None
        self._lock: QLockFile | None = None
        self._failing: str | None = None  # the problem last reported, until a write succeeds
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()
        document.undo_stack.cleanChanged.connect(self._clean_changed)

    @property
    def design_path(self) -> Path:
        return autosave_dir() / f"{self.key}.json"

    @property
    def up_to_date(self) -> bool:
        """The copy holds the document as it is now (nothing unsaved is only in memory)."""
        return (not self.document.modified
                or self._last_index == self.document.undo_stack.index())

    @property
    def locked(self) -> bool:
        return self._lock is not None and self._lock.isLocked()

    def save_now(self) -> bool:
        """Write the copy if there is unsaved work that isn't in it yet; True if written."""
        stack = self.document.undo_stack
        if not self.document.modified or stack.index() == self._last_index:
            return False
        folder = autosave_dir()
        design_path, meta_path, lock_path = _paths(folder, self.key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not self.locked:
                self._lock = claim(lock_path)
                if self._lock is None:
                    raise OSError(f"its lock file {lock_path} can't be created")
            text = design_to_json(self.document.design).encode("utf-8")
            write_atomic(design_path, lambda h: h.write(text))
            meta = {"original": str(self.document.path) if self.document.path else None,
                    "name": self.document.title, "saved_at": time.time(), "pid": os.getpid()}
            data = json.dumps(meta).encode("utf-8")
            write_atomic(meta_path, lambda h: h.write(data))
        except (OSError, DesignError, UnicodeError, ValueError) as exc:
            self._report(exc, folder)
            return False
        self._last_index = stack.index()
        if self._failing is not None:
            self._failing = None
            self.problem.emit("")  # working again
        return True

    def _report(self, exc: Exception, folder: Path) -> None:
        if isinstance(exc, UnicodeError):
            why = ("the design holds text that can't be written as UTF-8 (a lone half of a "
                   "character pair): rename the layer that holds it")
        elif isinstance(exc, OSError) and exc.strerror:
            why = f"{exc.strerror}" + (f" ({exc.filename})" if exc.filename else "")
        else:
            why = str(exc) or type(exc).__name__
        text = f"Autosave failed: {why}. Your unsaved work is not backed up to {folder}."
        if text != self._failing:
            self._failing = text
            self.problem.emit(text)

    def _clean_changed(self, clean: bool) -> None:
        if clean:  # saved (or undone back to the saved state): the copy is no longer needed
            self.discard()

    def discard(self) -> None:
        """Remove the copy, then give up the lock (a clean exit or a save)."""
        design_path, meta_path, _ = _paths(autosave_dir(), self.key)
        for path in (design_path, meta_path):
            _unlink(path)
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None
        self._last_index = None


def recover(document: Document, item: Recoverable, autosaver: Autosaver | None = None) -> None:
    """Load an autosaved design as unsaved work (its original file, if any, stays as it was).
    With ``autosaver``, the work is written to this instance's own copy before the old copy is
    deleted, so it is never only in memory; if that write fails, the old copy is kept."""
    design = load_design(item.design_path)
    document.replace(design, item.original)
    document.mark_modified()
    if autosaver is None or autosaver.save_now():
        item.discard()
    else:
        item.release()
