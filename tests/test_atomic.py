"""Atomic saving (designer/core/atomic.py): permissions, symbolic links, temporary files left by
killed writers, and messages that say what is really wrong."""
from __future__ import annotations

import errno
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from designer.core.atomic import describe_os_error, remove_leftovers, write_atomic

ROOT = Path(__file__).resolve().parents[1]


def save(path, data: bytes = b"new") -> None:
    write_atomic(path, lambda handle: handle.write(data))


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the umask for one test (restored after)."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda value: os.umask(value)
    os.umask(old)


def dead_pid() -> int:
    """The id of a process that has just ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# ------------------------------------------------------------------------- permissions

@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_a_new_file_follows_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    save(tmp_path / "d.json")
    assert mode(tmp_path / "d.json") == expected


@pytest.mark.parametrize("kept", [0o640, 0o604, 0o755])
def test_an_existing_file_keeps_its_permissions(tmp_path, umask, kept):
    umask(0o077)
    target = tmp_path / "d.json"
    target.write_bytes(b"old")
    os.chmod(target, kept)
    save(target)
    assert target.read_bytes() == b"new" and mode(target) == kept


# ------------------------------------------------------------------------ symbolic links

def test_saving_onto_a_symlink_writes_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "design.json"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    save(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new" and mode(real) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real"]
    assert [p.name for p in (tmp_path / "real").iterdir()] == ["design.json"]


def test_a_chain_of_links_and_a_dangling_link(tmp_path):
    real = tmp_path / "real.json"
    (tmp_path / "b.json").symlink_to("real.json")  # relative link
    (tmp_path / "a.json").symlink_to(tmp_path / "b.json")
    save(tmp_path / "a.json")  # dangling: the target is created
    assert real.read_bytes() == b"new"
    assert (tmp_path / "a.json").is_symlink() and (tmp_path / "b.json").is_symlink()


# ------------------------------------------------------------------------ temporary files

def test_the_temporary_file_names_the_writer(tmp_path):
    seen = []

    def write(handle):
        seen.extend(p.name for p in tmp_path.iterdir())
        handle.write(b"x")

    save(tmp_path / "d.json")
    write_atomic(tmp_path / "d.json", write)
    assert len(seen) == 2 and "d.json" in seen
    tmp = next(name for name in seen if name != "d.json")
    assert re.fullmatch(rf"\.d\.json\.{os.getpid()}\.[0-9a-f]+\.tmp", tmp), tmp
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]


def test_a_save_removes_what_dead_writers_left(tmp_path):
    target = tmp_path / "design.json"
    gone = dead_pid()
    dead = tmp_path / f".design.json.{gone}.0badf00d.tmp"
    ours = tmp_path / f".design.json.{os.getpid()}.0badf00d.tmp"  # maybe another thread's save
    alive = tmp_path / f".design.json.1.0badf00d.tmp"  # PID 1 is always there
    other = tmp_path / f".other.json.{gone}.0badf00d.tmp"  # another file's
    old_style = tmp_path / ".design.json.ab_cd12x.tmp"
    fresh_old_style = tmp_path / ".design.json.zz_cd12x.tmp"
    for p in (dead, ours, alive, other, old_style, fresh_old_style):
        p.write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    os.utime(old_style, (two_hours_ago, two_hours_ago))
    save(target)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["design.json", ours.name, alive.name, other.name, fresh_old_style.name])


KILLED_WRITER = """
import sys, time
from designer.core.atomic import write_atomic
def write(handle):
    handle.write(b"half")
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)
write_atomic(sys.argv[1], write)
"""


def test_a_writer_killed_mid_save_leaves_nothing_after_the_next_save(tmp_path):
    target = tmp_path / "design.json"
    target.write_bytes(b"good")
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.stdout.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and f".design.json.{writer.pid}." in names[0]
    assert target.read_bytes() == b"good"
    save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["design.json"]
    assert target.read_bytes() == b"new"


def test_remove_leftovers_never_raises(tmp_path):
    assert remove_leftovers(tmp_path / "missing-folder" / "x.json") == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "d.json"
    target.write_bytes(b"good")

    def fail(handle):
        handle.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        write_atomic(target, fail)
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"] and target.read_bytes() == b"good"


def test_special_targets_are_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        save(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        save(fifo)


# ------------------------------------------------------------------------------ messages

def message(path) -> str:
    with pytest.raises(OSError) as info:
        save(path)
    return describe_os_error(info.value, path)


def test_a_folder_that_exists_but_cant_hold_files():
    text = message("/proc/x.json")
    assert "does not exist" not in text
    assert "/proc" in text and "can't hold new files" in text


def test_a_missing_folder_is_named(tmp_path):
    text = message(tmp_path / "no" / "such" / "x.json")
    assert f"the folder {tmp_path / 'no'} does not exist" in text


def test_a_file_where_a_folder_should_be(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    assert "is not a folder" in message(tmp_path / "file" / "x.json")


def test_permission_denied_names_the_folder():
    text = message("/sys/x.json")  # refused even to root
    assert "permission denied" in text and "/sys" in text


def test_a_name_too_long(tmp_path):
    assert "too long" in message(tmp_path / ("a" * 300 + ".json"))


def test_a_name_that_cant_be_encoded(tmp_path):
    text = message(tmp_path / "in\ud800.json")
    assert "characters that can't be written" in text
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full"),
                                         (errno.EROFS, "read-only disk"),
                                         (errno.EDQUOT, "quota"),
                                         (errno.EIO, "input/output error")])
def test_other_errors_in_plain_words(tmp_path, code, words):
    text = describe_os_error(OSError(code, os.strerror(code)), tmp_path / "x.json")
    assert text.startswith(f"can't save to {tmp_path / 'x.json'}: ") and words in text
