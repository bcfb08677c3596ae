"""Frames -> objects (colour, shape, cell, confidence), from pixels only.

Per cell: the mean of the core (pixels both shapes cover) is explained as background
plus alpha times a palette colour; the colour whose background->colour line fits best
names the object, and alpha >= 0.3 says one is there. The cell's pixels are then
unmixed against that colour, alpha = <x - bg, col - bg> / |col - bg|^2, and the
nearest (least squares) of the square and circle templates, each seen through several
blurs, names the shape. Unmixing is linear, so blur only reshapes the alpha map the way
the blurred templates expect, and Gaussian noise averages out. The background colour is
estimated from the cells' border rings (``background``), which absorbs exposure and colour
casts; the frame median it replaced was pulled away by the grey blobs that fill generated
frames (67% of short-task Demonstrator frames off by > 0.05; benchmarks/perception_background.py).
Measured (600 frames per setting): no errors at blur 1.0 px with noise 0.1-0.2, one
error at blur 1.3-1.6 with noise 0.15; none with +-15% exposure, colour casts of
20-30/255, or a 1-2 px shift along one axis (each with blur 1.0 and noise 0.1).
It fails on frames dimmed to 70% with noise, and on 2 px diagonal shifts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import WorldConfig
from .render import BACKGROUND, PALETTE, shape_masks
from .scene import Cell, WorldObject


@dataclass(frozen=True)
class Detection(WorldObject):
    """An object as seen in pixels, with how sure perception is of it (0..1)."""

    confidence: float


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the two spatial axes of (..., H, W) with edge padding."""
    radius = max(1, int(round(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    out = img
    for axis in (-2, -1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        out = sum(w * np.take(padded, np.arange(i, i + out.shape[axis]), axis=axis) for i, w in enumerate(k))
    return out


def _windowed_median(pixels: np.ndarray, centre: np.ndarray, window: float, fallback: np.ndarray,
                     least: int = 8) -> np.ndarray:
    """Per-channel median of ``pixels`` (N, P, 3) within ``window`` (L-inf) of ``centre`` (N, 3);
    ``fallback`` where fewer than ``least`` pixels qualify."""
    near = np.abs(pixels - centre[:, None, :]).max(-1) <= window
    out = np.array(fallback, np.float32, copy=True)
    count = near.sum(-1)
    enough = count >= least
    if enough.any():  # sort with the others pushed to the end, then read the middle of the rest
        vals = np.sort(np.where(near[..., None], pixels, np.inf)[enough], axis=1)  # (M, P, 3)
        k = count[enough]
        lo = np.take_along_axis(vals, ((k - 1) // 2)[:, None, None].repeat(3, -1), 1)[:, 0]
        hi = np.take_along_axis(vals, (k // 2)[:, None, None].repeat(3, -1), 1)[:, 0]
        out[enough] = (lo + hi) / 2
    return out


def _margin(best_err: float, other_err: float) -> float:
    """0 when the runner-up fits as well as the winner, 1 when it fits 3x worse or more."""
    return float(min(1.0, (other_err - best_err) / (other_err + best_err + 1e-9) * 2.0))


class Perception:
    """Detects the objects of a WorldTasks-mini frame. Stateless after construction."""

    PRESENCE_ALPHA = 0.3  # core must be at least this much of the object colour
    BG_WINDOW = 0.3  # a pixel is taken for background within this L-inf distance of the estimate
    BLUR_LEVELS = (0.0, 0.4, 0.7, 1.0, 1.3, 1.6)

    def __init__(self, cfg: WorldConfig):
        self.cfg = cfg
        c = cfg.cell
        masks = shape_masks(c)
        self.core = (np.minimum(masks["square"], masks["circle"]) >= 0.999).astype(np.float32)
        ring = np.ones((c, c), bool)
        ring[1:-1, 1:-1] = False
        self.ring = np.tile(ring, (cfg.grid, cfg.grid))  # (H, W): every cell's border pixels
        self.colors = list(cfg.colors)
        self.bg = np.array(BACKGROUND, np.float32)
        self.palette = np.array([PALETTE[n] for n in self.colors], np.float32)  # (K, 3)
        self.dirs = self.palette - self.bg  # unmixing directions
        self.dir_norm2 = (self.dirs**2).sum(-1)
        # Shape templates seen through a range of blurs (sharp renders to soft samples):
        # the template nearest (least squares) to the cell's alpha map names the shape.
        self.shape_names = ("square", "circle")
        bank, owner = [], []
        for si, name in enumerate(self.shape_names):
            for sigma in self.BLUR_LEVELS:
                t = masks[name] if sigma == 0 else gaussian_blur(np.pad(masks[name], c), sigma)[c:-c, c:-c]
                bank.append(t)
                owner.append(si)
        self.templates = np.stack(bank).astype(np.float32)  # (M, c, c)
        self.template_shape = np.array(owner)

    def _cells(self, x: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float -> (N, G, G, c, c, 3) view, one tile per cell."""
        n, g, c = x.shape[0], self.cfg.grid, self.cfg.cell
        return x.reshape(n, g, c, g, c, 3).transpose(0, 1, 3, 2, 4, 5)

    def background(self, x: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) frames in [0, 1] -> (N, 3), each frame's background colour.

        Objects sit inside their cells, so the cells' one-pixel border rings are background
        unless blur or a generated smear reaches them. The estimate is the median of the ring
        pixels within ``BG_WINDOW`` (L-inf) of the renderer's background, then of those within it
        of that first estimate: grey blobs and objects that fill a generated frame never count,
        exposure and colour casts are followed. (Per-cell estimates from each cell's 3x3
        neighbourhood were tried on the same samples on 2026-12-02: noisier under heavy pixel
        noise, and 52% of short-task frames still off.)"""
        rings = x[:, self.ring]  # (N, P, 3)
        est = np.broadcast_to(self.bg, (len(x), 3)).astype(np.float32)
        for _ in range(2):
            est = _windowed_median(rings, est, self.BG_WINDOW, est)
        return est

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        """Detections per frame for (N, H, W, 3) or a single (H, W, 3) frame batch."""
        if frames.ndim == 3:
            frames = frames[None]
        res = self.cfg.resolution
        if frames.ndim != 4 or frames.shape[1:] != (res, res, 3):
            raise ValueError(f"expected frames of shape (N, {res}, {res}, 3), got {frames.shape}")
        x = frames.astype(np.float32)
        if frames.dtype == np.uint8:
            x /= 255.0
        cells = self._cells(x)
        core_mean = (cells * self.core[..., None]).sum((3, 4)) / self.core.sum()  # (N,G,G,3)
        # Colours shift by the same offset as the background (exposure, colour casts).
        shift = (self.background(x) - self.bg)[:, None, None, :]  # (N,1,1,3)
        # Colour: which background->colour line explains the core best (blur only slides
        # a pixel along that line, towards the background).
        v = core_mean - self.bg - shift
        alpha_k = (v[..., None, :] * self.dirs).sum(-1) / self.dir_norm2  # (N,G,G,K)
        resid = ((v[..., None, :] - alpha_k[..., None] * self.dirs) ** 2).sum(-1)
        resid = np.where(alpha_k > 0, resid, (v**2).sum(-1)[..., None])
        order = np.argsort(resid, axis=-1)
        k = order[..., 0]
        alpha_core = np.take_along_axis(alpha_k, k[..., None], -1)[..., 0]
        present = alpha_core >= self.PRESENCE_ALPHA
        n_i, r_i, c_i = np.nonzero(present)
        ki = k[n_i, r_i, c_i]
        # Shape: unmix every detected cell against its colour, fit all templates at once.
        tiles = cells[n_i, r_i, c_i] - (self.bg + shift[n_i, 0, 0])[:, None, None, :]
        alpha = (tiles * self.dirs[ki][:, None, None, :]).sum(-1) / self.dir_norm2[ki][:, None, None]
        err = ((self.templates[None] - alpha[:, None]) ** 2).sum((2, 3))  # (P, M)
        shape_err = np.stack([err[:, self.template_shape == i].min(1) for i in range(2)], 1)  # (P, 2)
        col_err = np.take_along_axis(resid[n_i, r_i, c_i], order[n_i, r_i, c_i, :2], -1)  # (P, 2) best, runner-up
        a_core = alpha_core[n_i, r_i, c_i]
        out: list[list[Detection]] = [[] for _ in range(frames.shape[0])]
        for j in range(len(n_i)):
            conf_shape = _margin(shape_err[j].min(), shape_err[j].max())
            conf_color = _margin(col_err[j, 0], col_err[j, 1])
            conf_present = min(1.0, float(a_core[j] - self.PRESENCE_ALPHA) / (1 - self.PRESENCE_ALPHA) * 2)
            conf = max(0.0, min(conf_color, conf_shape, conf_present))
            out[n_i[j]].append(Detection(self.colors[ki[j]], self.shape_names[int(shape_err[j].argmin())],
                                         int(r_i[j]), int(c_i[j]), round(conf, 4)))
        return out


def positions_of(detections: list[Detection]) -> dict[str, list[Cell]]:
    """Name -> every cell where that identity was seen (more than one = duplicate)."""
    pos: dict[str, list[Cell]] = {}
    for d in detections:
        pos.setdefault(d.name, []).append(d.cell)
    return pos
