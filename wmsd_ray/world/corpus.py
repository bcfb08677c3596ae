"""The Demonstrator's pretraining corpus: random motions captioned in the caption language.

No short-task prompts appear here: the pretrained model learns to follow detailed
captions only, which is the starting point WMSD assumes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow.parquet as pq

from ..config import WorldConfig
from ..records import to_table
from .captions import write_caption
from .render import Renderer
from .scene import DIRECTIONS, Cell, Scene, in_grid, random_scene


@dataclass
class CaptionedVideo:
    scene_json: str
    agent: str  # "" when nothing moves
    caption: str
    frames: np.ndarray  # (T, H, W, 3) uint8


def random_path(scene: Scene, agent: str, world: WorldConfig, rng: np.random.Generator) -> list[Cell] | None:
    """1..max_segments straight runs in changing directions, collision-free, within T-1 moves."""
    blocked = scene.occupied(exclude=agent)
    path = [scene.get(agent).cell]
    n_segments = int(rng.integers(1, world.max_segments + 1))
    last = None
    for _ in range(n_segments):
        options = []
        for d, (dr, dc) in DIRECTIONS.items():
            if d == last:
                continue
            run = 0
            r, c = path[-1]
            while run < world.frames - len(path):
                nxt = (r + dr * (run + 1), c + dc * (run + 1))
                if not in_grid(nxt, world.grid) or nxt in blocked or nxt in path:
                    break
                run += 1
            if run:
                options.append((d, run))
        if not options:
            break
        d, longest = options[int(rng.integers(len(options)))]
        n = int(rng.integers(1, longest + 1))
        dr, dc = DIRECTIONS[d]
        for _ in range(n):
            path.append((path[-1][0] + dr, path[-1][1] + dc))
        last = d
    return path if len(path) > 1 else None


def iter_corpus(world: WorldConfig, seed: int, exclude_keys: frozenset[str] = frozenset()) -> Iterator[CaptionedVideo]:
    """An endless, reproducible stream of captioned random-motion videos."""
    rng = np.random.default_rng(seed)
    renderer = Renderer(world)
    while True:
        scene = random_scene(world, rng, exclude_keys)
        if rng.random() < world.still_fraction:
            frames = np.repeat(renderer.render(scene)[None], world.frames, axis=0)
            yield CaptionedVideo(scene.to_json(), "", "Nothing moves.", frames)
            continue
        agent = scene.objects[int(rng.integers(len(scene.objects)))].name
        path = random_path(scene, agent, world, rng)
        if path is None:
            continue
        yield CaptionedVideo(scene.to_json(), agent, write_caption(scene, agent, path),
                             renderer.render_path(scene, agent, path))


def write_corpus(path: str | os.PathLike, world: WorldConfig, n: int, seed: int,
                 exclude_keys: frozenset[str] = frozenset(), rows_per_group: int = 2048) -> None:
    """Stream ``n`` items to parquet in row groups (bounded memory), atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    stream = iter_corpus(world, seed, exclude_keys)
    writer = None
    if n < 1:
        raise ValueError("a corpus needs n >= 1 items")
    try:
        done = 0
        while done < n:
            batch = [next(stream) for _ in range(min(rows_per_group, n - done))]
            table = to_table(batch, CaptionedVideo)
            writer = writer or pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table)
            done += len(batch)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp, p)
