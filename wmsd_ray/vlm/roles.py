"""Proposer and Judge roles over any VLM backend (transformers, vLLM, HTTP).

They implement the same ``Proposer`` / ``Judge`` protocols as the world, so actors and the
main job switch by config alone. The judge's reward is log p(yes) - log p(no) from
next-token logits when the backend exposes them (``source='logits'``); otherwise it asks
for text and maps yes/no to +/- ``judge.vlm.text_reward`` (``source='text'``), and an
unparseable reply is a counted judge error, never a guess.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Protocol, Sequence

import numpy as np

from ..config import Config
from ..records import TaskSpec
from ..world.judge import Verdict
from ..world.proposer import Proposal
from .parsing import parse_proposals, parse_yes_no, task_key
from .prompts import judge_questions, proposer_prompt


class VLM(Protocol):
    exposes_logits: bool

    def generate(self, images: list[np.ndarray], prompt: str, max_new_tokens: int = 256,
                 temperature: float = 0.0, seed: int = 0) -> str: ...

    def yes_no_logit(self, images: list[np.ndarray], prompt: str) -> float | None: ...


def sample_frames(video: np.ndarray, n: int) -> list[np.ndarray]:
    idx = np.linspace(0, len(video) - 1, min(n, len(video))).round().astype(int)
    return [video[i] for i in idx]


class VLMProposer:
    def __init__(self, vlm: VLM, cfg: Config, source: str):
        self.vlm, self.cfg, self.source = vlm, cfg, source

    def propose(self, image: np.ndarray, scene_id: str, rng: np.random.Generator) -> Proposal:
        want = self.cfg.proposer.pairs_per_image
        vc = self.cfg.proposer.vlm
        specs: list[TaskSpec] = []
        rejected: Counter = Counter()
        seen: set[str] = set()
        for attempt in range(vc.max_attempts):  # bounded retries
            if len(specs) >= want:
                break
            try:
                reply = self.vlm.generate([image], proposer_prompt(want - len(specs)), vc.max_new_tokens,
                                          vc.temperature if attempt == 0 else max(vc.temperature, 0.7),
                                          int(rng.integers(2**31)))
            except Exception as e:  # a backend failure costs this attempt, not the run
                rejected[f"backend_error:{type(e).__name__}"] += 1
                continue
            pairs, why = parse_proposals(reply, want - len(specs))
            rejected.update(why)
            for p in pairs:
                key = task_key(p.task)
                if key in seen:
                    rejected["duplicate"] += 1
                    continue
                seen.add(key)
                specs.append(TaskSpec(task_id=f"{scene_id}-{len(specs):02d}", scene_id=scene_id, image=image,
                                      agent=p.agent, task=p.task, solution=p.solution, family="", phrasing=0,
                                      held_out=False, source=self.source))
        if len(specs) < want:
            rejected["short_of_pairs"] += want - len(specs)
        return Proposal(specs, rejected)


class VLMJudge:
    def __init__(self, vlm: VLM, cfg: Config, source: str):
        self.vlm, self.cfg, self.source = vlm, cfg, source
        self.errors: Counter = Counter()

    def _ask(self, frames: list[np.ndarray], question: str) -> tuple[float | None, str]:
        vc = self.cfg.judge.vlm
        if self.vlm.exposes_logits:
            r = self.vlm.yes_no_logit(frames, question)
            if r is not None and math.isfinite(r):
                return r, "logits"
        answer = parse_yes_no(self.vlm.generate(frames, question, 8))
        if answer is None:
            return None, "text"
        return (vc.text_reward if answer else -vc.text_reward), "text"

    def judge(self, frames: np.ndarray, task: str) -> Verdict:
        return self.judge_batch([frames], [task])[0]

    def judge_batch(self, videos: Sequence[np.ndarray], tasks: Sequence[str]) -> list[Verdict]:
        if len(videos) != len(tasks):
            raise ValueError(f"{len(videos)} videos but {len(tasks)} tasks")
        out = []
        for video, task in zip(videos, tasks):
            frames = sample_frames(np.asarray(video), self.cfg.judge.vlm.frames)
            rewards, source = {}, "logits"
            try:
                for axis, q in judge_questions(task).items():
                    rewards[axis], src = self._ask(frames, q)
                    source = src if src == "text" else source
            except Exception as e:  # backend failure: a counted, judged-as-error verdict
                self.errors[f"backend_error:{type(e).__name__}"] += 1
                out.append(Verdict(False, False, False, 0.0, 0.5, error=f"backend error: {e}", source=self.source))
                continue
            if any(r is None for r in rewards.values()):
                self.errors["unparsed_reply"] += 1
                out.append(Verdict(False, False, False, 0.0, 0.5, error="unparsed judge reply",
                                   source=f"{self.source}:{source}"))
                continue
            r = rewards["task"]
            out.append(Verdict(task=r > 0, agent=rewards["agent"] > 0, consistency=rewards["consistency"] > 0,
                               task_reward=float(r), p_yes=1 / (1 + math.exp(-r)), source=f"{self.source}:{source}"))
        return out


class VLMDreamGenAnswerer:
    """A VLM answering the DreamGen questions from the protocol's 49 downscaled frames."""

    def __init__(self, vlm: VLM, max_new_tokens: int = 8):
        self.vlm, self.max_new_tokens = vlm, max_new_tokens

    def answer(self, frames: np.ndarray, native: np.ndarray, prompt: str, instruction: str, kind: str) -> str:
        return self.vlm.generate(list(frames), prompt, self.max_new_tokens)
