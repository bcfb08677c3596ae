"""The DreamGen Bench protocol over a folder of generated videos, as upstream runs it.

Upstream is NVIDIA/GR00T-Dreams ``dreamgenbench/`` (``utils.sample_video_frames``,
``eval_sr_qwen_whole.py``, ``eval_qwen_pa.py``). What we reproduce: every ``*.mp4`` under the
folder, recursively; 49 frame indices ``np.linspace(0, n - 1, 49, dtype=int)`` (floored), or
for a video shorter than 49 frames all its frames then the last one repeated to 49; frames
resized to ``(int(w * 0.3), int(h * 0.3))`` bilinearly at pixel centres (cv2's INTER_LINEAR);
upstream's instruction-following (IF) prompt, its zero-shot variant, and its physical-alignment
(PA) prompt, word for word; success when the reply starts with '1'.

Deliberate departures, each for a reason:
- ``zero_shot`` reaches the prompt (upstream parses ``--zeroshot`` but never passes it on, and
  its ``type=bool`` turns any string, even "False", into True); it is recorded in every result.
- PA sees the same 49 frames as IF: upstream hands the whole video to ``qwen_vl_utils``, whose
  sampling belongs to that library and model; a judge behind our backends gets frames.
- Names must be ``{idx}_{Instruction_with_underscores}.mp4`` (upstream drops whatever stands
  before the first underscore, with model-specific rules for some folders): the index orders
  results; other names are counted and skipped. ``.gif`` is read too (the world exports GIFs).
- Resizing is computed in float and rounded (cv2 works in fixed point: a value can differ by 1).
- Unparseable replies and unreadable videos are counted, not scored as failures silently.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .errors import InputError
from .media import read_video, to_resolution
from .vlm.parsing import parse_dreamgen_answer
from .vlm.prompts import DREAMGEN_IF, DREAMGEN_IF_ZERO_SHOT, DREAMGEN_PA

log = logging.getLogger(__name__)
NUM_FRAMES = 49
SCALE = 0.3
VIDEO_NAME = re.compile(r"^(\d+)_(.+)\.(mp4|gif)$", re.I)
VIDEO_SUFFIXES = (".mp4", ".gif")


class DreamGenAnswerer(Protocol):
    """Answers one 0/1 question about a video. ``native`` frames are full size; ``frames`` are the protocol's."""

    def answer(self, frames: np.ndarray, native: np.ndarray, prompt: str, instruction: str, kind: str) -> str: ...


def parse_video_name(name: str) -> tuple[int, str] | None:
    """'12_pick_up_the_cup.mp4' -> (12, 'pick up the cup'); None when the name is not in the form."""
    m = VIDEO_NAME.match(name)
    if not m:
        return None
    instruction = " ".join(m.group(2).replace("_", " ").split())
    return (int(m.group(1)), instruction) if instruction else None


def frame_indices(total: int, n: int = NUM_FRAMES) -> np.ndarray:
    """Upstream's indices: floored ``linspace`` over [0, total - 1]; a video shorter than ``n``
    gives all its frames, then its last frame repeated up to ``n``."""
    if total < 1:
        raise InputError("video has no frames")
    if total < n:
        return np.concatenate([np.arange(total), np.full(n - total, total - 1)])
    return np.linspace(0, total - 1, n, dtype=int)


def protocol_size(height: int, width: int, scale: float = SCALE) -> tuple[int, int]:
    """(height, width) of the judged frames: truncated, as upstream's ``int(w * 0.3)``."""
    return max(1, int(height * scale)), max(1, int(width * scale))


def protocol_frames(video: np.ndarray, n: int = NUM_FRAMES, scale: float = SCALE) -> np.ndarray:
    """(n, int(0.3 H), int(0.3 W), 3) uint8: the frames the judge sees."""
    picked = torch.from_numpy(np.ascontiguousarray(video[frame_indices(len(video), n)])).permute(0, 3, 1, 2).float()
    size = protocol_size(*video.shape[1:3], scale)
    resized = torch.nn.functional.interpolate(picked, size=size, mode="bilinear", align_corners=False, antialias=False)
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


@dataclass
class DreamGenResult:
    file: str
    idx: int
    instruction: str
    zero_shot: bool
    if_reply: str = ""
    if_success: bool = False
    pa_reply: str = ""
    pa_success: bool = False
    error: str = ""


def if_prompt(zero_shot: bool) -> str:
    """Upstream's instruction-following prompt (``{instruction}`` to fill), or its zero-shot variant."""
    return DREAMGEN_IF_ZERO_SHOT if zero_shot else DREAMGEN_IF


def evaluate_folder(folder: str | Path, answerer: DreamGenAnswerer, zero_shot: bool = False) -> dict:
    """Score every well-named video under ``folder`` (recursively; other files are ignored, as
    upstream does); returns {"videos": [...], "aggregate": {...}}."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"DreamGen video folder not found: {folder}")
    counts: Counter = Counter()
    results: list[DreamGenResult] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES):
        parsed = parse_video_name(path.name)
        if parsed is None:
            counts["bad_name"] += 1
            log.warning("skipping %s: not named {idx}_{Instruction}.mp4", path.name)
            continue
        res = DreamGenResult(str(path.relative_to(folder)), parsed[0], parsed[1], zero_shot)
        try:
            native = read_video(path)
            frames = protocol_frames(native)
        except InputError as e:
            res.error = str(e)
            counts["unreadable_video"] += 1
            log.warning("unreadable video %s", e)
            results.append(res)
            continue
        for kind, template in (("if", if_prompt(zero_shot)), ("pa", DREAMGEN_PA)):
            reply = answerer.answer(frames, native, template.format(instruction=res.instruction), res.instruction, kind)
            verdict = parse_dreamgen_answer(reply)
            if verdict is None:
                counts[f"unparsed_{kind}"] += 1
            setattr(res, f"{kind}_reply", str(reply)[:200])
            setattr(res, f"{kind}_success", bool(verdict))
        results.append(res)
    scored = [r for r in results if not r.error]
    aggregate = {
        "n_videos": len(results), "n_scored": len(scored), "zero_shot": zero_shot,
        "instruction_following": float(np.mean([r.if_success for r in scored])) if scored else 0.0,
        "physical_alignment": float(np.mean([r.pa_success for r in scored])) if scored else 0.0,
        "counts": dict(counts),
    }
    return {"videos": [asdict(r) for r in sorted(results, key=lambda r: r.idx)], "aggregate": aggregate}


class WorldDreamGenAnswerer:
    """The world's judge behind the DreamGen questions: IF = Task verdict, PA = Consistency verdict.

    It reads native frames (its perception needs whole cells) and the instruction as a world task.
    """

    def __init__(self, judge, resolution: int):
        self.judge, self.resolution = judge, resolution

    def answer(self, frames: np.ndarray, native: np.ndarray, prompt: str, instruction: str, kind: str) -> str:
        try:
            video = to_resolution(native, self.resolution)
        except InputError as e:
            return f"unjudgeable: {e}"
        v = self.judge.judge(video, instruction)
        if v.error:
            return f"unjudgeable: {v.error}"
        return "1" if (v.task if kind == "if" else v.consistency) else "0"
