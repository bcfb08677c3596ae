"""Image and video files: read scene images (with clear errors), write GIF / MP4 / PNG."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError


def read_image(path: str | os.PathLike, size: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB; InputError if unreadable or not ``size`` x ``size``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"image not found: {p}")
    try:
        with Image.open(p) as im:
            im.load()
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{p} is not a readable image ({exc.__class__.__name__})") from None
    if size is not None and arr.shape[:2] != (size, size):
        raise InputError(f"{p} is {arr.shape[1]}x{arr.shape[0]} px, but world.resolution is {size}x{size}")
    return arr


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement so tiny frames are visible to a person."""
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2) if factor > 1 else frames


def to_resolution(frames: np.ndarray, res: int) -> np.ndarray:
    """Undo an integer enlargement (our GIF/MP4 exports) by block means, which also averages out codec noise."""
    h, w = frames.shape[-3:-1]
    if h != w or h % res:
        raise InputError(f"video is {w}x{h} px; expected a square multiple of {res} px")
    k = h // res
    if k == 1:
        return frames
    blocks = frames.reshape(*frames.shape[:-3], res, k, res, k, 3).astype(np.float32)
    return blocks.mean(axis=(-4, -2)).round().astype(np.uint8)


def _atomic_target(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p, p.with_name(f".{p.stem}.tmp{p.suffix}")


def write_png(path: str | os.PathLike, image: np.ndarray, scale: int = 1) -> None:
    p, tmp = _atomic_target(path)
    Image.fromarray(upscale(image, scale)).save(tmp)
    os.replace(tmp, p)


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: int = 4, scale: int = 8) -> None:
    p, tmp = _atomic_target(path)
    images = [Image.fromarray(f) for f in upscale(frames, scale)]
    images[0].save(tmp, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    os.replace(tmp, p)


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int = 4, scale: int = 8) -> None:
    """H.264 via the ffmpeg binary shipped in imageio-ffmpeg (frames enlarged to a multiple of 16)."""
    import imageio.v2 as imageio

    p, tmp = _atomic_target(path)
    big = upscale(frames, scale)
    with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=16, format="FFMPEG") as w:
        for f in big:
            w.append_data(f)
    os.replace(tmp, p)


def _read_gif(p: Path) -> list[np.ndarray]:
    """GIF writers merge identical consecutive frames into one longer frame; undo that
    by repeating each frame for its duration in units of the shortest frame."""
    frames, durations = [], []
    with Image.open(p) as im:
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
            durations.append(max(1, int(im.info.get("duration", 100))))
    base = min(durations)
    return [f for f, d in zip(frames, durations) for _ in range(max(1, round(d / base)))]


def read_video(path: str | os.PathLike) -> np.ndarray:
    """(T, H, W, 3) uint8 from a GIF or MP4; InputError if unreadable."""
    import imageio.v2 as imageio

    p = Path(path)
    if not p.is_file():
        raise InputError(f"video not found: {p}")
    try:
        if p.suffix.lower() == ".gif":
            frames = _read_gif(p)
        else:
            frames = [np.asarray(f)[..., :3] for f in imageio.mimread(p, memtest=False)]
    except Exception as exc:  # decoders raise many types for bad files
        raise InputError(f"{p} is not a readable video ({exc.__class__.__name__})") from None
    if not frames:
        raise InputError(f"{p} has no frames")
    return np.stack(frames).astype(np.uint8)


def grid_of(videos: list[np.ndarray], cols: int, pad: int = 1) -> np.ndarray:
    """Tile equal-shape videos (T, H, W, 3) into one video, padded with white lines."""
    t, h, w, _ = videos[0].shape
    rows = (len(videos) + cols - 1) // cols
    out = np.full((t, rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, v in enumerate(videos):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[:, y:y + h, x:x + w] = v
    return out


def filmstrip(video: np.ndarray, pad: int = 2) -> np.ndarray:
    """All frames of a (T, H, W, 3) video side by side, white gaps between them."""
    return grid_of([f[None] for f in video], cols=len(video), pad=pad)[0]
