"""The Demonstrator's pretraining corpus: motions captioned at every level of detail.

Each item is drawn in one register (shares in ``pretrain.registers``): ``motion`` (random
straight runs, step by step), ``outcome`` (a goal-directed motion, said only by where the
agent ends) or ``both`` (the same motion step by step, stopping at its outcome); see
``outcomes.py``. Goal-directed motions are the planner's paths to a sampled goal of any
family, relational families weighted by ``pretrain.relational_weight``. No short-task prompt
appears here: the short tasks stay unseen, as WMSD assumes.
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
from .outcomes import outcome_caption, state_phrase
from .planner import solve
from .render import Renderer
from .scene import DIRECTIONS, Cell, Scene, in_grid, random_scene
from .tasks import FAMILIES, Goal

REGISTERS = ("motion", "outcome", "both")


@dataclass
class CaptionedVideo:
    scene_json: str
    agent: str  # "" when nothing moves
    caption: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    register: str = "motion"


def random_goal(scene: Scene, agent: str, rng: np.random.Generator, relational_weight: float) -> Goal:
    """A goal of any family for ``agent``; relational families weigh ``relational_weight`` each."""
    names = list(FAMILIES)
    weights = np.array([relational_weight if FAMILIES[f].relational else 1.0 for f in names])
    family = FAMILIES[names[int(rng.choice(len(names), p=weights / weights.sum()))]]
    others = [o.name for o in scene.objects if o.name != agent]
    params = {}
    for slot, values in family.slots.items():
        options = others if slot == "target" else list(values)
        params[slot] = options[int(rng.integers(len(options)))]
    return Goal(agent, family.name, tuple(sorted(params.items())))


def goal_directed(scene: Scene, agent: str, world: WorldConfig, rng: np.random.Generator,
                  relational_weight: float) -> tuple[Goal, list[Cell]] | None:
    """A goal the agent can reach in this scene and the planner's path to it (None after a few misses)."""
    for _ in range(8):
        goal = random_goal(scene, agent, rng, relational_weight)
        path, _why = solve(scene, goal, world.frames, world.max_segments, rng)
        if path is not None:
            return goal, path
    return None


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


def iter_corpus(world: WorldConfig, seed, exclude_keys: frozenset[str] = frozenset(),
                registers: dict[str, float] | None = None, relational_weight: float = 1.0) -> Iterator[CaptionedVideo]:
    """An endless, reproducible stream of captioned videos (motion captions only by default)."""
    rng = np.random.default_rng(seed)
    renderer = Renderer(world)
    shares = registers or {"motion": 1.0}
    names = [r for r in REGISTERS if shares.get(r, 0) > 0]
    probs = np.array([shares[r] for r in names], dtype=float)
    probs /= probs.sum()
    while True:
        scene = random_scene(world, rng, exclude_keys)
        if rng.random() < world.still_fraction:
            frames = np.repeat(renderer.render(scene)[None], world.frames, axis=0)
            yield CaptionedVideo(scene.to_json(), "", "Nothing moves.", frames)
            continue
        agent = scene.objects[int(rng.integers(len(scene.objects)))].name
        register = names[int(rng.choice(len(names), p=probs))] if len(names) > 1 else names[0]
        if register == "motion":
            path = random_path(scene, agent, world, rng)
            if path is None:
                continue
            yield CaptionedVideo(scene.to_json(), agent, write_caption(scene, agent, path),
                                 renderer.render_path(scene, agent, path))
            continue
        found = goal_directed(scene, agent, world, rng, relational_weight)
        if found is None:
            continue
        goal, path = found
        caption = (outcome_caption(goal, int(rng.integers(2))) if register == "outcome"
                   else write_caption(scene, agent, path, where=state_phrase(goal)))
        yield CaptionedVideo(scene.to_json(), agent, caption, renderer.render_path(scene, agent, path), register)


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
