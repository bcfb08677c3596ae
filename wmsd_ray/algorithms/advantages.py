"""Advantage estimators over a group of G samples of one task (a registry, chosen by config)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..names import ADVANTAGE_NAMES

AdvantageFn = Callable[[np.ndarray, float, float], np.ndarray]


def grpo(rewards: np.ndarray, eps: float, clip: float) -> np.ndarray:
    """(R - group mean) / (group std + eps), clipped: GRPO / Flow-GRPO."""
    r = np.asarray(rewards, np.float64)
    return np.clip((r - r.mean()) / (r.std() + eps), -clip, clip).astype(np.float32)


def mean_baseline(rewards: np.ndarray, eps: float, clip: float) -> np.ndarray:
    """R - group mean, no std scaling (Dr. GRPO): keeps the reward's own scale."""
    r = np.asarray(rewards, np.float64)
    return np.clip(r - r.mean(), -clip, clip).astype(np.float32)


def rloo(rewards: np.ndarray, eps: float, clip: float) -> np.ndarray:
    """R minus the mean of the other G - 1 samples (leave-one-out baseline)."""
    r = np.asarray(rewards, np.float64)
    g = len(r)
    if g < 2:
        return np.zeros(g, np.float32)
    return np.clip(r - (r.sum() - r) / (g - 1), -clip, clip).astype(np.float32)


ADVANTAGES: dict[str, AdvantageFn] = {"grpo": grpo, "mean": mean_baseline, "rloo": rloo}
assert tuple(ADVANTAGES) == ADVANTAGE_NAMES, "wmsd_ray/names.py must list every advantage estimator"


def group_advantages(rewards: np.ndarray, estimator: str, eps: float, clip: float) -> np.ndarray:
    if estimator not in ADVANTAGES:
        raise KeyError(f"unknown advantage estimator {estimator!r} (known: {sorted(ADVANTAGES)})")
    return ADVANTAGES[estimator](rewards, eps, clip)


def credit_accepted_only(advantages: np.ndarray, accepted: np.ndarray) -> np.ndarray:
    """Keep positive advantage only where the judge accepted the sample (task, agent and
    consistency all pass). The task reward is graded by distance, so without this an
    above-average but broken video (other objects moved, frames inconsistent) is imitated:
    here that took Agent 0.90 -> 0.50 and Consistency 0.78 -> 0.36 in 200 RL updates."""
    adv = np.asarray(advantages, np.float32)
    return np.where(np.asarray(accepted, bool) | (adv <= 0), adv, 0.0).astype(np.float32)
