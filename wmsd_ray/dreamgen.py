"""The DreamGen Bench protocol over a folder of generated videos.

Videos are named ``{idx}_{Instruction_with_underscores}.mp4``. For each, 49 evenly spaced
frames at 0.3x size go to a judge with two 0/1 questions: instruction following (IF) and
physical alignment (PA); a video succeeds when the reply starts with '1'. Per-video and
aggregate results are written as JSON.

Departures from the upstream script, on purpose: ``zero_shot`` is passed through to the
evaluation and recorded in every result (upstream parsed it but never used it), and flags
are real booleans (upstream's ``type=bool`` turned any string, even "False", into True).
Unparseable replies and unreadable videos are counted, not scored as failures silently.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from .errors import InputError
from .media import read_video, to_resolution
from .vlm.parsing import parse_dreamgen_answer
from .vlm.prompts import DREAMGEN_IF, DREAMGEN_PA

log = logging.getLogger(__name__)
NUM_FRAMES = 49
SCALE = 0.3
VIDEO_NAME = re.compile(r"^(\d+)_(.+)\.(mp4|gif)$", re.I)


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
    """n evenly spaced indices over [0, total - 1], first and last included (repeats when total < n)."""
    if total < 1:
        raise InputError("video has no frames")
    return np.linspace(0, total - 1, n).round().astype(int)


def protocol_frames(video: np.ndarray, n: int = NUM_FRAMES, scale: float = SCALE) -> np.ndarray:
    """(n, round(0.3 H), round(0.3 W), 3) uint8: the frames the judge sees."""
    picked = video[frame_indices(len(video), n)]
    h, w = picked.shape[1:3]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in picked])


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


def evaluate_folder(folder: str | Path, answerer: DreamGenAnswerer, zero_shot: bool = False) -> dict:
    """Score every well-named video in ``folder``; returns {"videos": [...], "aggregate": {...}}."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"DreamGen video folder not found: {folder}")
    counts: Counter = Counter()
    results: list[DreamGenResult] = []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            continue
        parsed = parse_video_name(path.name)
        if parsed is None:
            counts["bad_name"] += 1
            log.warning("skipping %s: not named {idx}_{Instruction}.mp4", path.name)
            continue
        res = DreamGenResult(path.name, parsed[0], parsed[1], zero_shot)
        try:
            native = read_video(path)
            frames = protocol_frames(native)
        except InputError as e:
            res.error = str(e)
            counts["unreadable_video"] += 1
            log.warning("unreadable video %s", e)
            results.append(res)
            continue
        for kind, template in (("if", DREAMGEN_IF), ("pa", DREAMGEN_PA)):
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
