"""Scene state: which (colour, shape) object sits in which cell. Ground truth only.

A Scene is what the simulator knows. Proposers and judges never receive it: they see
rendered pixels and text, as a VLM would.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..config import WorldConfig

Cell = tuple[int, int]

# Unit moves on the grid, in caption words. Rows grow downwards.
DIRECTIONS: dict[str, Cell] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


@dataclass(frozen=True)
class WorldObject:
    color: str
    shape: str
    row: int
    col: int

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def cell(self) -> Cell:
        return (self.row, self.col)

    def at(self, cell: Cell) -> "WorldObject":
        return WorldObject(self.color, self.shape, cell[0], cell[1])


@dataclass(frozen=True)
class Scene:
    grid: int
    objects: tuple[WorldObject, ...]

    def positions(self) -> dict[str, Cell]:
        return {o.name: o.cell for o in self.objects}

    def get(self, name: str) -> WorldObject:
        for o in self.objects:
            if o.name == name:
                return o
        raise KeyError(name)

    def occupied(self, exclude: str | None = None) -> set[Cell]:
        return {o.cell for o in self.objects if o.name != exclude}

    def moved(self, name: str, cell: Cell) -> "Scene":
        return Scene(self.grid, tuple(o.at(cell) if o.name == name else o for o in self.objects))

    def key(self) -> str:
        """Identity of the layout, used to keep benchmark scenes out of training."""
        parts = sorted(f"{o.color}:{o.shape}:{o.row}:{o.col}" for o in self.objects)
        return f"{self.grid}|" + ",".join(parts)

    def to_json(self) -> str:
        return json.dumps({"grid": self.grid, "objects": [[o.color, o.shape, o.row, o.col] for o in self.objects]})

    @staticmethod
    def from_json(text: str) -> "Scene":
        d = json.loads(text)
        return Scene(int(d["grid"]), tuple(WorldObject(c, s, int(r), int(k)) for c, s, r, k in d["objects"]))


def in_grid(cell: Cell, grid: int) -> bool:
    return 0 <= cell[0] < grid and 0 <= cell[1] < grid


def random_scene(cfg: WorldConfig, rng: np.random.Generator, exclude_keys: frozenset[str] | set[str] = frozenset()) -> Scene:
    """A scene of ``cfg.num_objects`` distinct identities in distinct cells, not in ``exclude_keys``."""
    identities = [(c, s) for c in cfg.colors for s in cfg.shapes]
    for _ in range(1000):
        ids = rng.choice(len(identities), size=cfg.num_objects, replace=False)
        cells = rng.choice(cfg.grid * cfg.grid, size=cfg.num_objects, replace=False)
        objects = tuple(
            WorldObject(identities[i][0], identities[i][1], int(c) // cfg.grid, int(c) % cfg.grid)
            for i, c in zip(ids, cells)
        )
        scene = Scene(cfg.grid, objects)
        if scene.key() not in exclude_keys:
            return scene
    raise RuntimeError("could not draw a scene outside the excluded set in 1000 tries")


def path_states(scene: Scene, agent: str, path: list[Cell], frames: int) -> list[Scene]:
    """Per-frame scenes: the agent steps along ``path`` (start included), then holds."""
    if len(path) > frames:
        raise ValueError(f"path of {len(path) - 1} moves does not fit {frames} frames")
    return [scene.moved(agent, path[min(t, len(path) - 1)]) for t in range(frames)]
