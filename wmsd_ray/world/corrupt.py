"""Imperfect videos on purpose: blur + noise like generated frames, and injected faults.

``world check`` uses these to show the judge is right where it matters: it must
accept degraded-but-correct videos and reject every kind of inconsistency.
"""
from __future__ import annotations

import numpy as np

from .perception import gaussian_blur
from .scene import Scene, WorldObject

FAULTS = ("delete", "duplicate", "recolour", "reshape", "teleport")


def degrade(frames: np.ndarray, noise_sigma: float, blur_sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur (sigma in px) then Gaussian pixel noise (sigma in [0, 1] units), as uint8."""
    x = frames.astype(np.float32) / 255.0
    if blur_sigma > 0:
        x = gaussian_blur(np.moveaxis(x, -1, -3), blur_sigma)
        x = np.moveaxis(x, -3, -1)
    if noise_sigma > 0:
        x = x + rng.normal(0.0, noise_sigma, x.shape)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def inject_fault(states: list[Scene], kind: str, colors: list[str], rng: np.random.Generator) -> list[Scene]:
    """Break one object from a random frame k >= 1 onwards (teleport: a jump of >= 2 cells)."""
    t = len(states)
    k = int(rng.integers(1, t))
    victim = states[0].objects[int(rng.integers(len(states[0].objects)))].name
    out = list(states[:k])
    g = states[0].grid
    # Cells nobody else uses from frame k-1 on, so an added or moved object never overlaps another.
    busy = set().union(*(s.occupied(exclude=victim) for s in states[k - 1:]))
    spare = [(r, c) for r in range(g) for c in range(g) if (r, c) not in busy]
    if kind == "teleport":
        prev = states[k - 1].get(victim).cell
        far = [cell for cell in spare if abs(cell[0] - prev[0]) + abs(cell[1] - prev[1]) >= 2]
        dest = far[int(rng.integers(len(far)))]
        return out + [s.moved(victim, dest) for s in states[k:]]
    if kind == "duplicate":
        spare = [cell for cell in spare if all(cell != s.get(victim).cell for s in states[k:])]
        copy_at = spare[int(rng.integers(len(spare)))]
    for s in states[k:]:
        objs = list(s.objects)
        i = next(j for j, o in enumerate(objs) if o.name == victim)
        o = objs[i]
        if kind == "delete":
            del objs[i]
        elif kind == "recolour":
            used = {x.color for x in objs if x.shape == o.shape}
            new = next(c for c in colors if c not in used)
            objs[i] = WorldObject(new, o.shape, o.row, o.col)
        elif kind == "reshape":
            objs[i] = WorldObject(o.color, "circle" if o.shape == "square" else "square", o.row, o.col)
        elif kind == "duplicate":
            objs.append(o.at(copy_at))
        else:
            raise ValueError(f"unknown fault {kind!r}; choose from {FAULTS}")
        out.append(Scene(s.grid, tuple(objs)))
    return out

