"""The world's judge: scores a video against a short task from pixels and text only.

Same interface as the VLM judges: ``judge(frames, task) -> Verdict`` with the paper's
three axes and a continuous task reward shaped like log p(yes) - log p(no).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..config import JudgeConfig, WorldConfig
from ..errors import InputError
from .perception import Perception, positions_of
from .scene import Cell
from .tasks import Goal, TaskParseError, parse_task


@dataclass
class Verdict:
    task: bool  # the goal holds in the last frame
    agent: bool  # the named agent moved and nothing else did
    consistency: bool  # no object appears, vanishes, changes, or jumps more than one cell
    task_reward: float  # log p(yes) - log p(no) for "is the task done?"
    p_yes: float
    error: str = ""  # why the task could not be judged (all axes False then)
    source: str = "world"  # which judge; VLM judges add how the reward was read (":logits" or ":text")

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def accepted(self) -> bool:
        """Every axis holds: the video judge filtering keeps."""
        return self.task and self.agent and self.consistency


class Judge(Protocol):
    """What every judge backend (world, transformers VLM, vLLM, HTTP) implements."""

    def judge(self, frames: np.ndarray, task: str) -> Verdict: ...

    def judge_batch(self, videos: Sequence[np.ndarray], tasks: Sequence[str]) -> list[Verdict]: ...


def _manhattan(a: Cell, b: Cell) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


class WorldJudge:
    """Judges WorldTasks-mini videos with pixel perception; no hidden state is used."""

    def __init__(self, world: WorldConfig, cfg: JudgeConfig | None = None):
        self.world = world
        self.cfg = cfg or JudgeConfig()
        self.perception = Perception(world)

    def _check_frames(self, frames: np.ndarray) -> None:
        res = self.world.resolution
        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[1:] != (res, res, 3) or len(frames) < 2:
            shape = getattr(frames, "shape", type(frames).__name__)
            raise InputError(f"judge expects a video of shape (T>=2, {res}, {res}, 3), got {shape}")

    def judge(self, frames: np.ndarray, task: str) -> Verdict:
        return self.judge_batch([frames], [task])[0]

    def judge_batch(self, videos: Sequence[np.ndarray], tasks: Sequence[str]) -> list[Verdict]:
        if len(videos) != len(tasks):
            raise ValueError(f"{len(videos)} videos but {len(tasks)} tasks")
        for v in videos:
            self._check_frames(v)
        if not videos:
            return []
        lengths = [len(v) for v in videos]
        detections = self.perception.detect(np.concatenate(list(videos)))
        out, start = [], 0
        for n, task in zip(lengths, tasks):
            out.append(self._verdict(detections[start:start + n], task))
            start += n
        return out

    def _fail(self, error: str) -> Verdict:
        return Verdict(False, False, False, logit(self.cfg.p_min), self.cfg.p_min, error)

    def _verdict(self, dets, task: str) -> Verdict:
        try:
            goal = parse_task(task)
        except TaskParseError as exc:
            return self._fail(f"unreadable task: {exc}")
        frames = [positions_of(d) for d in dets]
        conf_last = {d.name: d.confidence for d in dets[-1]}
        consistency = self._consistent(frames)
        agent_ok = self._agent_only_moved(frames, goal.agent)
        task_ok, p = self._task(frames[-1], goal, conf_last.get(goal.agent, 0.0))
        return Verdict(task_ok, agent_ok, consistency, logit(p), p)

    @staticmethod
    def _consistent(frames: list[dict[str, list[Cell]]]) -> bool:
        first = Counter({name: len(cells) for name, cells in frames[0].items()})
        if not first or any(n != 1 for n in first.values()):
            return False
        for prev, cur in zip(frames, frames[1:]):
            if Counter({name: len(cells) for name, cells in cur.items()}) != first:
                return False
            if any(_manhattan(prev[name][0], cur[name][0]) > 1 for name in first):
                return False
        return True

    @staticmethod
    def _agent_only_moved(frames: list[dict[str, list[Cell]]], agent: str) -> bool:
        first = frames[0]
        if len(first.get(agent, [])) != 1:
            return False
        moved = False
        for cur in frames[1:]:
            for name, cells in first.items():
                seen = cur.get(name, [])
                if name == agent:
                    if len(seen) != 1:
                        return False
                    moved |= seen[0] != cells[0]
                elif seen != cells:
                    return False
        return moved

    def _task(self, last: dict[str, list[Cell]], goal: Goal, conf: float) -> tuple[bool, float]:
        """(goal holds, p_yes): p_yes falls with the distance to the goal region and is
        pulled towards 0.5 when the agent's detection in the last frame is uncertain; the goal holds
        only if that detection reaches ``judge.min_confidence``."""
        p_min = self.cfg.p_min
        cells = last.get(goal.agent, [])
        if len(cells) != 1:
            return False, p_min
        positions = {name: c[0] for name, c in last.items() if len(c) == 1}
        goal_cells = goal.cells(positions, self.world.grid)
        if not goal_cells:
            return False, p_min
        d = min(_manhattan(cells[0], g) for g in goal_cells)
        q = 0.97 if d == 0 else 0.35 * 0.4 ** (d - 1)
        p = min(1 - p_min, max(p_min, 0.5 + conf * (q - 0.5)))
        return d == 0 and conf >= self.cfg.min_confidence, p
