"""Loaders for user data: a WorldTasks-format folder, and a folder of unlabeled images.

WorldTasks format: ``<folder>/tasks.jsonl`` (or ``tasks.json``, a list), one object per task
with ``image`` (a path relative to the folder), ``agent``, ``task``, ``solution`` and optional
``task_id``, ``family``, ``held_out``. Unreadable images and malformed rows are skipped, counted
by reason and logged; they never stop the load.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError
from .media import read_image
from .records import TaskSpec

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


@dataclass
class Loaded:
    items: list
    skipped: Counter = field(default_factory=Counter)


def _resize(img: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or img.shape[:2] == (size, size):
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def load_image_folder(folder: str | Path, size: int | None = None) -> Loaded:
    """(name, image) pairs of every readable image; the rest counted as ``unreadable_image``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"image folder not found: {folder}")
    out = Loaded([])
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            out.items.append((path.name, _resize(read_image(path), size)))
        except InputError as e:
            out.skipped["unreadable_image"] += 1
            log.warning("skipping %s", e)
    return out


def _rows(folder: Path) -> list:
    jsonl, js = folder / "tasks.jsonl", folder / "tasks.json"
    if jsonl.is_file():
        rows = []
        for i, line in enumerate(jsonl.read_text(encoding="utf-8", errors="replace").splitlines()):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    rows.append(f"line {i + 1} is not JSON")
        return rows
    if js.is_file():
        try:
            data = json.loads(js.read_text(encoding="utf-8", errors="replace"))
        except ValueError as e:
            raise InputError(f"{js} is not JSON ({e})") from None
        if not isinstance(data, list):
            raise InputError(f"{js} must hold a list of task objects")
        return data
    raise InputError(f"{folder} has no tasks.jsonl or tasks.json")


def load_worldtasks_folder(folder: str | Path, size: int | None = None) -> Loaded:
    """TaskSpecs from a WorldTasks-format folder; bad rows and images skipped with a count."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"WorldTasks folder not found: {folder}")
    out = Loaded([])
    images: dict[str, np.ndarray | None] = {}
    for i, row in enumerate(_rows(folder)):
        if not isinstance(row, dict):
            out.skipped["malformed_row"] += 1
            log.warning("skipping task %d: %s", i, row if isinstance(row, str) else "not an object")
            continue
        fields = {k: row.get(k) for k in ("image", "agent", "task", "solution")}
        if not all(isinstance(v, str) and v.strip() for v in fields.values()):
            out.skipped["missing_field"] += 1
            log.warning("skipping task %d: needs non-empty image, agent, task and solution", i)
            continue
        name = fields["image"]
        if name not in images:
            try:
                images[name] = _resize(read_image(folder / name), size)
            except InputError as e:
                images[name] = None
                log.warning("skipping tasks on %s", e)
        if images[name] is None:
            out.skipped["unreadable_image"] += 1
            continue
        out.items.append(TaskSpec(
            task_id=str(row.get("task_id", f"task-{i:05d}")), scene_id=name, image=images[name],
            agent=fields["agent"], task=fields["task"], solution=fields["solution"],
            family=str(row.get("family", "")), phrasing=int(row.get("phrasing", 0) or 0),
            held_out=bool(row.get("held_out", False) is True), source="worldtasks",
        ))
    return out
