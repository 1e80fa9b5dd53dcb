"""Bundled sample images to run a design on, listed in resources/samples/index.json.

Pure standard library: listing the samples loads no Qt (reading one goes through images.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from designer.io.templates import resources_dir


@dataclass(frozen=True)
class Sample:
    """One sample image. ``class_name`` and ``data`` are set for the built-in data's validation
    images: the class the image shows and the data set it comes from (``builtin:digits``)."""

    title: str
    description: str
    path: Path
    class_name: str | None = None
    data: str | None = None


def samples_dir() -> Path:
    return resources_dir() / "samples"


def sample_images() -> list[Sample]:
    """The samples in index order, leaving out any whose image file is missing."""
    folder = samples_dir()
    index = folder / "index.json"
    if not index.is_file():
        return []
    entries = json.loads(index.read_text(encoding="utf-8"))
    samples = [Sample(e["title"], e["description"], folder / e["file"], e.get("class"),
                      e.get("data")) for e in entries]
    return [s for s in samples if s.path.is_file()]
