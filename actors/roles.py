"""Proposer and judge actors: one backend each, chosen by the config they are given.

They hold the backend for their lifetime (a VLM loads once) and exchange records only:
images and videos in as numpy, ``Proposal`` / ``Verdict`` dataclasses out. Resources are
set by the caller with ``.options(num_cpus=..., num_gpus=...)`` so pools scale independently.
"""
from __future__ import annotations

import numpy as np
import ray

from wmsd_ray.backends import make_judge, make_proposer
from wmsd_ray.config import Config, from_dict, to_dict
from wmsd_ray.world.judge import Verdict
from wmsd_ray.world.proposer import Proposal


class ProposerWorker:
    def __init__(self, config: dict):
        self.cfg = from_dict(Config, config)
        self.proposer = make_proposer(self.cfg)

    def backend(self) -> str:
        return self.cfg.proposer.backend

    def propose(self, image: np.ndarray, scene_id: str, seed: int) -> Proposal:
        return self.proposer.propose(image, scene_id, np.random.default_rng(seed))


class JudgeWorker:
    def __init__(self, config: dict):
        self.cfg = from_dict(Config, config)
        self.judge = make_judge(self.cfg)

    def backend(self) -> str:
        return self.cfg.judge.backend

    def judge_batch(self, videos: list[np.ndarray], tasks: list[str]) -> list[Verdict]:
        return self.judge.judge_batch(videos, tasks)


ProposerActor = ray.remote(ProposerWorker)
JudgeActor = ray.remote(JudgeWorker)


def config_payload(cfg: Config) -> dict:
    """What an actor is built from: the plain resolved config (validated again on arrival)."""
    return to_dict(cfg)
