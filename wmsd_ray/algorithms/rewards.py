"""Rewards of one sampled video: judge task logit, distillation reward, consistency.

R = lambda_task * r_task + lambda_distill * r_distill + lambda_cons * consistency, with
r_task = log p(yes) - log p(no) from the judge and
r_distill = -sum_k ||v_executor(x_k | task) - v_demonstrator(x_k | solution)||^2 |dsigma_k|
along the Executor's own trajectory (mean over generated elements).
"""
from __future__ import annotations

import numpy as np


def distill_reward(executor_v: np.ndarray, demonstrator_v: np.ndarray, sigmas: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(K, B, ...) velocities of student and teacher at the same states -> (B,) r_distill."""
    dt = np.abs(np.diff(np.asarray(sigmas, dtype=np.float64)))  # (K,)
    m = np.broadcast_to(mask, executor_v.shape[1:])
    diff = ((executor_v.astype(np.float64) - demonstrator_v) ** 2 * m).sum(axis=tuple(range(2, executor_v.ndim)))
    per_step = diff / max(float(m[0].sum()), 1.0)  # (K, B)
    return -(per_step * dt[:, None]).sum(axis=0).astype(np.float32)


def combine_rewards(r_task: np.ndarray, r_distill: np.ndarray, consistency: np.ndarray,
                    lambda_task: float, lambda_distill: float, lambda_consistency: float) -> np.ndarray:
    r = lambda_task * np.asarray(r_task, np.float64) + lambda_consistency * np.asarray(consistency, np.float64)
    if lambda_distill:
        r = r + lambda_distill * np.asarray(r_distill, np.float64)
    return r.astype(np.float32)
