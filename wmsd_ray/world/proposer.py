"""The world's proposer: image -> short tasks with detailed solutions.

Same interface as the VLM proposers. It sees only the rendered image: it perceives
the objects, enumerates every task family for every object, drops tasks that are
already satisfied or cannot be done in the video's frames, plans the rest, and
writes a diverse set of ``pairs_per_image`` task/solution pairs.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..config import ProposerConfig, WorldConfig
from ..records import TaskSpec
from .captions import write_caption
from .perception import Perception
from .planner import solve
from .scene import Cell, Scene, WorldObject
from .tasks import FAMILIES, Goal, candidate_goals, is_held_out


@dataclass
class Proposal:
    specs: list[TaskSpec]
    rejected: Counter = field(default_factory=Counter)  # reason -> count (candidates or whole images)


class Proposer(Protocol):
    """What every proposer backend (world, transformers VLM, vLLM, HTTP) implements."""

    def propose(self, image: np.ndarray, scene_id: str, rng: np.random.Generator) -> Proposal: ...


def phrasings_allowed(world: WorldConfig, family: str, include_held_out: bool) -> list[int]:
    n = len(FAMILIES[family].phrasings)
    return [i for i in range(n)
            if include_held_out or not is_held_out(family, i, world.held_out_families, world.held_out_phrasings)]


def make_spec(world: WorldConfig, scene: Scene, image: np.ndarray, scene_id: str, goal: Goal,
              path: list[Cell], index: int, source: str) -> TaskSpec:
    return TaskSpec(
        task_id=f"{scene_id}-{index:02d}",
        scene_id=scene_id,
        image=image,
        agent=goal.agent,
        task=goal.text(),
        solution=write_caption(scene, goal.agent, path),
        family=goal.family,
        phrasing=goal.phrasing,
        held_out=is_held_out(goal.family, goal.phrasing, world.held_out_families, world.held_out_phrasings),
        source=source,
    )


def feasible_goals(world: WorldConfig, scene: Scene,
                   rng: np.random.Generator) -> tuple[dict[str, list[tuple[Goal, list[Cell]]]], Counter]:
    """Family -> feasible (goal, path) for every object as agent; plus rejection counts."""
    by_family: dict[str, list[tuple[Goal, list[Cell]]]] = {}
    rejected: Counter = Counter()
    names = [o.name for o in scene.objects]
    for agent in names:
        for goal in candidate_goals(agent, [n for n in names if n != agent]):
            path, why = solve(scene, goal, world.frames, world.max_segments, rng)
            if path is None:
                rejected[why] += 1
            else:
                by_family.setdefault(goal.family, []).append((goal, path))
    return by_family, rejected


def pick_diverse(by_family: dict[str, list], n: int, rng: np.random.Generator) -> list:
    """Round-robin over families in random order, so every family gets a turn."""
    pools = {f: list(v) for f, v in by_family.items() if v}
    for pool in pools.values():
        rng.shuffle(pool)
    picked: list = []
    while len(picked) < n and pools:
        for fam in list(rng.permutation(sorted(pools))):
            if len(picked) == n:
                break
            picked.append(pools[fam].pop())
            if not pools[fam]:
                del pools[fam]
    return picked


class WorldProposer:
    def __init__(self, world: WorldConfig, cfg: ProposerConfig | None = None):
        self.world = world
        self.cfg = cfg or ProposerConfig()
        self.perception = Perception(world)

    def perceive(self, image: np.ndarray) -> Scene | None:
        """The scene as seen in the image; None if it cannot be read unambiguously."""
        dets = self.perception.detect(image)[0]
        names = [d.name for d in dets]
        if len(dets) < 2 or len(set(names)) != len(names):
            return None
        return Scene(self.world.grid, tuple(WorldObject(d.color, d.shape, d.row, d.col) for d in dets))  # drop confidences

    def propose(self, image: np.ndarray, scene_id: str, rng: np.random.Generator) -> Proposal:
        scene = self.perceive(image)
        if scene is None:
            return Proposal([], Counter(unreadable_scene=1))
        by_family, rejected = feasible_goals(self.world, scene, rng)
        allowed = {f: phrasings_allowed(self.world, f, self.cfg.include_held_out) for f in by_family}
        by_family = {f: v for f, v in by_family.items() if allowed[f]}
        specs = []
        for i, (goal, path) in enumerate(pick_diverse(by_family, self.cfg.pairs_per_image, rng)):
            phrased = Goal(goal.agent, goal.family, goal.params, int(rng.choice(allowed[goal.family])))
            specs.append(make_spec(self.world, scene, image, scene_id, phrased, path, i, "world-proposer"))
        if len(specs) < self.cfg.pairs_per_image:
            rejected["short_of_pairs"] += self.cfg.pairs_per_image - len(specs)
        return Proposal(specs, rejected)
