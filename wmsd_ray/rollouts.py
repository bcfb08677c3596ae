"""What travels from Executor actors to the learner: rollout groups and training batches.

Both are dataclasses of numpy arrays and strings, so ``ray.get`` hands them over
zero-copy from the object store and they msgpack for persistence. A ``RolloutGroup`` is
G samples of one task from one weight version; a ``TrainBatch`` is what one learner
update consumes (Demonstrator samples or scored Executor samples, plus advantages).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TEACHER_VERSION = -1  # Demonstrator rollouts never go stale


@dataclass
class RolloutGroup:
    """G samples of one task. ``latents``/``executor_v`` are kept for Flow-GRPO and r_distill."""

    group_id: str
    task_id: str
    image: np.ndarray  # (H, W, 3) uint8
    task: str
    solution: str
    family: str
    held_out: bool
    source: str  # demonstrator | executor
    version: int  # adapter version that sampled it (TEACHER_VERSION for the Demonstrator)
    seed: int
    x0: np.ndarray  # (G, C, T, h, w) float32 final latents
    videos: np.ndarray  # (G, T, H, W, 3) uint8
    sigmas: np.ndarray  # (K + 1,)
    eta: float
    latents: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (K + 1, G, C, T, h, w)
    log_probs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (K, G)
    executor_v: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (K, G, C, T, h, w)
    # Filled in by the judge, the Demonstrator and the driver, in that order.
    task_ok: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    agent_ok: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    consistency: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    r_task: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    r_distill: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    judge_errors: int = 0

    @property
    def size(self) -> int:
        return int(self.x0.shape[0])

    @property
    def accepted(self) -> np.ndarray:
        """Samples the judge passes on every axis (what judge-filtered distillation keeps)."""
        return self.task_ok & self.agent_ok & self.consistency


@dataclass
class TrainBatch:
    """One learner update's samples. ``kind``: ``teacher`` (off-policy) or ``policy`` (on-policy)."""

    update: int
    kind: str
    images: np.ndarray  # (N, H, W, 3) uint8
    tasks: list[str]
    solutions: list[str]
    x0: np.ndarray  # (N, C, T, h, w)
    advantages: np.ndarray  # (N,) (ones for Demonstrator samples)
    versions: np.ndarray  # (N,) int64
    sigmas: np.ndarray  # (K + 1,) or empty
    eta: float = 0.0
    latents: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (K + 1, N, ...)
    log_probs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (K, N)
    seed: int = 0
    # The anchor's re-noised states and teacher prediction, when the Demonstrator computed them.
    renoise_sigma: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (N,)
    renoise_noise: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # like x0
    demonstrator_out: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # like x0

    @property
    def size(self) -> int:
        return int(self.x0.shape[0])

    def shard(self, rank: int, world: int) -> "TrainBatch":
        """This learner rank's rows (rank::world), so each worker trains on its own part. Only the
        Executor rows, which come first, have trajectories; they stay first in every shard."""
        rows = np.arange(rank, self.size, world)
        traj_rows = rows[rows < self.latents.shape[1]] if self.latents.size else rows
        return TrainBatch(
            update=self.update, kind=self.kind, images=self.images[rows], tasks=[self.tasks[i] for i in rows],
            solutions=[self.solutions[i] for i in rows], x0=self.x0[rows], advantages=self.advantages[rows],
            versions=self.versions[rows], sigmas=self.sigmas, eta=self.eta,
            latents=self.latents[:, traj_rows] if self.latents.size else self.latents,
            log_probs=self.log_probs[:, traj_rows] if self.log_probs.size else self.log_probs,
            seed=self.seed * 7919 + rank,
            **{k: getattr(self, k)[rows] if getattr(self, k).size else getattr(self, k)
               for k in ("renoise_sigma", "renoise_noise", "demonstrator_out")},
        ) if world > 1 else self
