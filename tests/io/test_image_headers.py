"""Crafted image headers: reading them never crashes the process and is refused or sized."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_jpeg_frame_without_scan_read_many_times_does_not_crash(tmp_path):
    """Qt's JPEG reader leaves the pixel format of this file uninitialised; asking Qt about
    that number crashed the interpreter on the second or third file (seen by the fuzz)."""
    path = tmp_path / "frame.jpg"
    path.write_bytes(bytes.fromhex("ffd8ffc0000b08fde8fde801011100ffd9"))
    script = textwrap.dedent(f"""
        from designer.io.images import ImageError, image_info
        for _ in range(20):
            try:
                image_info({str(path)!r})
            except ImageError:
                pass
        print("done")
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "done"
