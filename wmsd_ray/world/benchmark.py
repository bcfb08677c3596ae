"""WorldTasks-mini benchmark: 200 tasks on scenes kept out of training, made by seed.

The committed file ``wmsd_ray/data/worldtasks_mini_bench.parquet`` is exactly what
``make_benchmark`` produces for the default world (a test regenerates and compares).
Tasks are balanced over the families and over all phrasings, held-out ones included.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from ..config import WorldConfig
from ..records import BenchmarkTask, read_metadata, read_parquet, write_parquet
from .captions import write_caption
from .proposer import feasible_goals
from .render import Renderer
from .scene import Scene, random_scene
from .tasks import FAMILIES, FAMILY_NAMES, Goal, is_held_out

BENCHMARK_SEED = 20261121
BENCHMARK_TASKS = 200
TASKS_PER_SCENE = 2
BENCHMARK_PATH = Path(__file__).resolve().parents[1] / "data" / "worldtasks_mini_bench.parquet"
_WORLD_KEYS = ("grid", "resolution", "frames", "num_objects", "colors", "shapes", "max_segments",
               "held_out_families", "held_out_phrasings")


def world_signature(world: WorldConfig) -> str:
    """The world settings a benchmark file depends on, as stable JSON."""
    return json.dumps({k: getattr(world, k) for k in _WORLD_KEYS}, sort_keys=True)


def make_benchmark(world: WorldConfig, n_tasks: int = BENCHMARK_TASKS, seed: int = BENCHMARK_SEED) -> list[BenchmarkTask]:
    rng = np.random.default_rng(seed)
    renderer = Renderer(world)
    tasks: list[BenchmarkTask] = []
    phrasing_turn: Counter = Counter()
    seen: set[str] = set()
    scene_index = 0
    while len(tasks) < n_tasks:
        scene = random_scene(world, rng, exclude_keys=seen)
        seen.add(scene.key())
        by_family, _ = feasible_goals(world, scene, rng)
        image = renderer.render(scene)
        scene_id = f"bench-{scene_index:03d}"
        used_agents: set[str] = set()
        made = 0
        for _ in range(TASKS_PER_SCENE):
            family = FAMILY_NAMES[len(tasks) % len(FAMILY_NAMES)]
            options = [(g, p) for g, p in by_family.get(family, []) if g.agent not in used_agents]
            if not options or len(tasks) >= n_tasks:
                break
            goal, path = options[int(rng.integers(len(options)))]
            phrasing = phrasing_turn[family] % len(FAMILIES[family].phrasings)
            phrasing_turn[family] += 1
            goal = Goal(goal.agent, family, goal.params, phrasing)
            used_agents.add(goal.agent)
            tasks.append(BenchmarkTask(
                task_id=f"{scene_id}-{made}", scene_id=scene_id, image=image, agent=goal.agent,
                task=goal.text(), solution=write_caption(scene, goal.agent, path), family=family,
                phrasing=phrasing,
                held_out=is_held_out(family, phrasing, world.held_out_families, world.held_out_phrasings),
                source="worldtasks-mini", scene_json=scene.to_json(),
            ))
            made += 1
        if made:
            scene_index += 1
    return tasks


def save_benchmark(tasks: list[BenchmarkTask], world: WorldConfig, path: Path = BENCHMARK_PATH) -> None:
    write_parquet(path, tasks, BenchmarkTask, metadata={"world": world_signature(world), "seed": str(BENCHMARK_SEED)})


def load_benchmark(world: WorldConfig, path: Path = BENCHMARK_PATH) -> list[BenchmarkTask]:
    """The committed benchmark when it was made for this world, else the same recipe made now."""
    if path.is_file() and read_metadata(path).get("world") == world_signature(world):
        return read_parquet(BenchmarkTask, path)
    return make_benchmark(world)


def benchmark_scene_keys(world: WorldConfig) -> frozenset[str]:
    """Layouts that training must never use."""
    return frozenset(Scene.from_json(t.scene_json).key() for t in load_benchmark(world))
