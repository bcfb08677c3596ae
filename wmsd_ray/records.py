"""Records that flow between stages: plain dataclasses of numpy arrays and strings.

They cross process boundaries as-is (numpy is zero-copy through the Ray object store),
and are stored as parquet (pyarrow).
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputError

R = TypeVar("R")
FORMAT_VERSION = "1"


@dataclass
class TaskSpec:
    """One proposed task on one scene image: short task + detailed solution."""

    task_id: str
    scene_id: str
    image: np.ndarray  # (H, W, 3) uint8: the only view of the scene anyone gets
    agent: str  # e.g. "red circle"
    task: str  # "[red circle]: go to the top-left corner"
    solution: str  # detailed step-by-step caption
    family: str
    phrasing: int
    held_out: bool
    source: str = "world"


@dataclass
class BenchmarkTask(TaskSpec):
    """A benchmark task also carries the ground-truth scene, for rendering reference videos only."""

    scene_json: str = ""


@dataclass
class VideoRecord:
    """A generated or simulated video for one task."""

    task_id: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    prompt: str  # the text the video was conditioned on
    source: str  # simulator | demonstrator | executor
    weight_version: int = -1
    seed: int = -1


def _is_array(tp: Any) -> bool:
    return tp is np.ndarray


def _fields(cls: type) -> list[tuple[str, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]


def to_table(records: Sequence[Any], cls: type | None = None, metadata: dict[str, str] | None = None) -> pa.Table:
    """Columnar form: arrays become raw bytes plus ``<name>__shape`` / ``<name>__dtype``."""
    cls = cls or type(records[0])
    cols: dict[str, list[Any]] = {}
    for name, tp in _fields(cls):
        values = [getattr(r, name) for r in records]
        if _is_array(tp):
            arrs = [np.ascontiguousarray(v) for v in values]
            cols[name] = [a.tobytes() for a in arrs]
            cols[f"{name}__shape"] = [list(a.shape) for a in arrs]
            cols[f"{name}__dtype"] = [a.dtype.str for a in arrs]
        else:
            cols[name] = values
    meta = {"wmsd_record": cls.__name__, "wmsd_format": FORMAT_VERSION, **(metadata or {})}
    return pa.table(cols).replace_schema_metadata(meta)


def from_table(cls: type[R], table: pa.Table) -> list[R]:
    data = table.to_pydict()
    n = table.num_rows
    missing = [name for name, _ in _fields(cls) if name not in data]
    if missing:
        raise InputError(f"table has no column {missing[0]!r} needed for {cls.__name__}")
    out = []
    for i in range(n):
        kwargs = {}
        for name, tp in _fields(cls):
            if _is_array(tp):
                kwargs[name] = np.frombuffer(data[name][i], dtype=np.dtype(data[f"{name}__dtype"][i])).reshape(
                    data[f"{name}__shape"][i]).copy()
            else:
                kwargs[name] = data[name][i]
        out.append(cls(**kwargs))
    return out


def write_parquet(path: str | os.PathLike, records: Sequence[Any], cls: type | None = None,
                  metadata: dict[str, str] | None = None) -> None:
    """Write atomically: readers never see a half-written file."""
    if not records and cls is None:
        raise ValueError("cannot infer the record type of an empty list; pass cls")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    table = to_table(records, cls, metadata) if records else _empty_table(cls)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, p)


def _empty_table(cls: type) -> pa.Table:
    cols: dict[str, pa.Array] = {}
    for name, tp in _fields(cls):
        if _is_array(tp):
            cols[name] = pa.array([], pa.binary())
            cols[f"{name}__shape"] = pa.array([], pa.list_(pa.int64()))
            cols[f"{name}__dtype"] = pa.array([], pa.string())
        else:
            arrow_type = {int: pa.int64(), float: pa.float64(), bool: pa.bool_(), str: pa.string()}[tp]
            cols[name] = pa.array([], arrow_type)
    return pa.table(cols)


def read_parquet(cls: type[R], path: str | os.PathLike) -> list[R]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such record file: {p}")
    try:
        table = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{p} is not a readable parquet file ({exc.__class__.__name__})") from None
    return from_table(cls, table)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata stored with a record file (record type, format, producer's settings)."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}
