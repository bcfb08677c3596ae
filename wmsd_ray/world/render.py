"""Pixels from scenes: each object is a soft-edged square or circle centred in its cell."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..config import WorldConfig
from .scene import Cell, Scene, path_states

PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.15, 0.15),
    "green": (0.15, 0.78, 0.22),
    "blue": (0.20, 0.35, 0.95),
    "yellow": (0.95, 0.85, 0.15),
    "purple": (0.62, 0.25, 0.85),
    "cyan": (0.10, 0.80, 0.85),
    "orange": (1.00, 0.52, 0.08),
}
BACKGROUND = (0.08, 0.08, 0.10)
SQUARE_SIDE = 0.75  # fraction of the cell
CIRCLE_RADIUS = 0.30  # fraction of the cell: small enough that blur cannot make a square of it


@lru_cache(maxsize=None)
def shape_masks(cell: int) -> dict[str, np.ndarray]:
    """Fractional coverage (cell x cell, float32) of each shape, 8x supersampled."""
    ss = 8
    coords = (np.arange(cell * ss) + 0.5) / ss - cell / 2.0  # pixel-centre offsets from the cell centre
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    half = SQUARE_SIDE * cell / 2.0
    square = (np.abs(xx) <= half) & (np.abs(yy) <= half)
    circle = xx**2 + yy**2 <= (CIRCLE_RADIUS * cell) ** 2
    down = lambda m: m.reshape(cell, ss, cell, ss).mean(axis=(1, 3)).astype(np.float32)  # noqa: E731
    return {"square": down(square), "circle": down(circle)}


class Renderer:
    """Renders scenes and motions to uint8 RGB at the configured resolution."""

    def __init__(self, cfg: WorldConfig):
        self.cfg = cfg
        self.masks = shape_masks(cfg.cell)
        self.background = np.array(BACKGROUND, np.float32)

    def render_float(self, scene: Scene) -> np.ndarray:
        c = self.cfg.cell
        img = np.empty((self.cfg.resolution, self.cfg.resolution, 3), np.float32)
        img[:] = self.background
        for o in scene.objects:
            m = self.masks[o.shape][..., None]
            tile = img[o.row * c:(o.row + 1) * c, o.col * c:(o.col + 1) * c]
            tile[:] = m * np.array(PALETTE[o.color], np.float32) + (1 - m) * tile
        return img

    def render(self, scene: Scene) -> np.ndarray:
        return to_uint8(self.render_float(scene))

    def render_states(self, states: list[Scene]) -> np.ndarray:
        return np.stack([self.render(s) for s in states])

    def render_path(self, scene: Scene, agent: str, path: list[Cell]) -> np.ndarray:
        """(T, H, W, 3) uint8: the agent walks ``path`` and holds; nothing else moves."""
        return self.render_states(path_states(scene, agent, path, self.cfg.frames))


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
