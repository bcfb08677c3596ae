"""Proposer and Judge roles over any VLM backend (transformers, vLLM, HTTP).

They implement the same ``Proposer`` / ``Judge`` protocols as the world, so actors and the
main job switch by config alone. The judge's reward is log p(yes) - log p(no) from the next
token's logits (transformers, ``source='...:logits'``) or top log-probs (vLLM, HTTP,
``'...:logprobs'``); all questions of a batch of videos are scored ``judge.vlm.batch_size`` at
a time. Where a backend gives neither, the judge asks for text and maps yes/no to +/-
``judge.vlm.text_reward`` (``'...:text'``); an unparseable reply is a counted judge error,
never a guess.
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

    def yes_no_logits(self, requests: list[tuple[list[np.ndarray], str]]) -> list[float | None]: ...


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

    def _scores(self, requests: list[tuple[list[np.ndarray], str]]) -> list[tuple[float | None, str]]:
        """(reward, source) per question: batched next-token scores, text for what they leave open."""
        vc = self.cfg.judge.vlm
        scores: list[float | None] = [None] * len(requests)
        if self.vlm.exposes_logits:
            for start in range(0, len(requests), vc.batch_size):
                scores[start:start + vc.batch_size] = self.vlm.yes_no_logits(requests[start:start + vc.batch_size])
        out = []
        for (frames, question), r in zip(requests, scores):
            if r is not None and math.isfinite(r):
                out.append((r, self.vlm.score_source))
                continue
            answer = parse_yes_no(self.vlm.generate(frames, question, 8))
            out.append((None if answer is None else (vc.text_reward if answer else -vc.text_reward), "text"))
        return out

    def judge(self, frames: np.ndarray, task: str) -> Verdict:
        return self._one_by_one(frames, task)[0]

    def judge_batch(self, videos: Sequence[np.ndarray], tasks: Sequence[str]) -> list[Verdict]:
        if len(videos) != len(tasks):
            raise ValueError(f"{len(videos)} videos but {len(tasks)} tasks")
        asked = []  # (video index, axis, frames, question)
        for i, (video, task) in enumerate(zip(videos, tasks)):
            frames = sample_frames(np.asarray(video), self.cfg.judge.vlm.frames)
            asked += [(i, axis, frames, q) for axis, q in judge_questions(task).items()]
        try:
            scores = self._scores([(frames, q) for _, _, frames, q in asked])
        except Exception:  # a failed batch: score video by video, so a failure costs only its own verdict
            if len(videos) == 1:
                raise
            return [v for video, task in zip(videos, tasks) for v in self._one_by_one(video, task)]
        per_video: list[dict] = [{} for _ in videos]
        for (i, axis, _, _), score in zip(asked, scores):
            per_video[i][axis] = score
        return [self._verdict(rewards) for rewards in per_video]

    def _one_by_one(self, video: np.ndarray, task: str) -> list[Verdict]:
        try:
            return self.judge_batch([video], [task])
        except Exception as e:  # backend failure: a counted, judged-as-error verdict
            self.errors[f"backend_error:{type(e).__name__}"] += 1
            return [Verdict(False, False, False, 0.0, 0.5, error=f"backend error: {e}", source=self.source)]

    def _verdict(self, rewards: dict[str, tuple[float | None, str]]) -> Verdict:
        source = "text" if any(src == "text" for _, src in rewards.values()) else self.vlm.score_source
        if any(r is None for r, _ in rewards.values()):
            self.errors["unparsed_reply"] += 1
            return Verdict(False, False, False, 0.0, 0.5, error="unparsed judge reply", source=f"{self.source}:{source}")
        r = rewards["task"][0]
        return Verdict(task=r > 0, agent=rewards["agent"][0] > 0, consistency=rewards["consistency"][0] > 0,
                       task_reward=float(r), p_yes=1 / (1 + math.exp(-r)), source=f"{self.source}:{source}")


class VLMDreamGenAnswerer:
    """A VLM answering the DreamGen questions from the protocol's 49 downscaled frames."""

    def __init__(self, vlm: VLM, max_new_tokens: int = 8):
        self.vlm, self.max_new_tokens = vlm, max_new_tokens

    def answer(self, frames: np.ndarray, native: np.ndarray, prompt: str, instruction: str, kind: str) -> str:
        return self.vlm.generate(list(frames), prompt, self.max_new_tokens)
