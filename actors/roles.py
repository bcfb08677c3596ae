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
from wmsd_ray.cpu import limit_cpu
from wmsd_ray.rollouts import RolloutGroup
from wmsd_ray.world.judge import Verdict
from wmsd_ray.world.proposer import Proposal


class ProposerWorker:
    def __init__(self, config: dict):
        self.cfg = from_dict(Config, config)
        limit_cpu(self.cfg.actors.proposer.threads, self.cfg.actors.proposer.cpu_affinity)
        self.proposer = make_proposer(self.cfg)

    def ready(self) -> bool:
        return True

    def propose(self, image: np.ndarray, scene_id: str, seed: int) -> Proposal:
        return self.proposer.propose(image, scene_id, np.random.default_rng(seed))


class JudgeWorker:
    def __init__(self, config: dict):
        self.cfg = from_dict(Config, config)
        limit_cpu(self.cfg.actors.judge.threads, self.cfg.actors.judge.cpu_affinity)
        self.judge = make_judge(self.cfg)

    def ready(self) -> bool:
        return True

    def judge_batch(self, videos: list[np.ndarray], tasks: list[str]) -> list[Verdict]:
        return self.judge.judge_batch(videos, tasks)

    def score_groups(self, groups: list[RolloutGroup]) -> list[RolloutGroup]:
        """Fill each group's judge fields; a video the judge cannot read fails every axis (counted)."""
        for g in groups:
            verdicts = self.judge.judge_batch(list(g.videos), [g.task] * g.size)
            g.task_ok = np.array([v.task for v in verdicts])
            g.agent_ok = np.array([v.agent for v in verdicts])
            g.consistency = np.array([v.consistency for v in verdicts])
            g.r_task = np.array([v.task_reward for v in verdicts], np.float32)
            g.judge_errors = sum(1 for v in verdicts if v.error)
        return groups


ProposerActor = ray.remote(ProposerWorker)
JudgeActor = ray.remote(JudgeWorker)


def config_payload(cfg: Config) -> dict:
    """What an actor is built from: the plain resolved config (validated again on arrival)."""
    return to_dict(cfg)
