"""Scoring sampled videos on benchmark tasks: Task / Agent / Consistency / Avg with 95% intervals.

Shared by ``python -m wmsd_ray.eval``, the pretraining validation and the main job's report.
Intervals are Wilson score intervals (binomial rates near 0 or 1 stay inside [0, 1]).
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from .records import TaskSpec
from .world.judge import Judge, Verdict

AXES = ("task", "agent", "consistency")


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values: np.ndarray, z: float = 1.96, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """Normal interval of a mean, kept inside the values' range (for Avg, a mean of three
    correlated rates per task; for a paired difference, whose per-task values lie in [-1, 1])."""
    if len(values) < 2:
        return (float(values.mean()) if len(values) else 0.0,) * 2
    half = z * float(values.std(ddof=1)) / math.sqrt(len(values))
    return (max(bounds[0], float(values.mean()) - half), min(bounds[1], float(values.mean()) + half))


def paired_difference(a: Sequence[float], b: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """Mean of a - b over the same tasks, with a normal 95% interval of the per-task differences.

    Why: two models scored on the same tasks with the same seeds share much of their noise, so
    a difference of rates has its own interval, usually narrower than the two Wilson intervals
    suggest. It covers the benchmark's sampling noise, not a second training run's.
    """
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need equal lengths, got {len(a)} and {len(b)}")
    d = np.asarray(a, float) - np.asarray(b, float)
    return (float(d.mean()) if len(d) else 0.0, *mean_interval(d, z, bounds=(-1.0, 1.0)))


def score_verdicts(verdicts: Sequence[Verdict]) -> dict:
    """Aggregate judge verdicts into rates with 95% intervals (failed judgements count as failures).

    ``per_task`` keeps each task's 0/1 outcome per axis, in task order, so that two models
    scored on the same tasks can be compared pairwise (``paired_difference``).
    """
    n = len(verdicts)
    table = np.array([[v.task, v.agent, v.consistency] for v in verdicts], dtype=float).reshape(n, 3)
    out: dict = {"n": n, "judge_errors": sum(1 for v in verdicts if v.error)}
    for i, axis in enumerate(AXES):
        k = int(table[:, i].sum())
        out[axis] = k / n if n else 0.0
        out[f"{axis}_ci95"] = list(wilson(k, n))
    out["per_task"] = {axis: [int(x) for x in table[:, i]] for i, axis in enumerate(AXES)}
    task_means = table.mean(axis=1) if n else np.zeros(0)
    out["avg"] = float(task_means.mean()) if n else 0.0
    out["avg_ci95"] = list(mean_interval(task_means))
    out["mean_task_reward"] = float(np.mean([v.task_reward for v in verdicts])) if n else 0.0
    return out


def summary_line(s: dict) -> str:
    """Task with its interval, then Agent, Consistency, Avg and n: how every entry point prints scores."""
    lo, hi = s["task_ci95"]
    return (f"Task {s['task']:.3f} [{lo:.3f}, {hi:.3f}]  Agent {s['agent']:.3f}  "
            f"Consistency {s['consistency']:.3f}  Avg {s['avg']:.3f}  (n={s['n']})")


def score_tasks(videos: Sequence[np.ndarray], tasks: Sequence[TaskSpec], judge: Judge,
                split_held_out: bool = True) -> dict:
    """Judge each video against its task's short instruction; overall and held-out/in-distribution splits."""
    return score_judged(judge.judge_batch(list(videos), [t.task for t in tasks]), tasks, split_held_out)


def score_judged(verdicts: Sequence[Verdict], tasks: Sequence[TaskSpec], split_held_out: bool = True) -> dict:
    """Verdicts (one per task, in order) -> rates with intervals, splits and per-family Task."""
    result = score_verdicts(verdicts)
    if split_held_out:
        for name, keep in (("in_distribution", False), ("held_out", True)):
            sub = [v for v, t in zip(verdicts, tasks) if t.held_out == keep]
            result[name] = {k: v for k, v in score_verdicts(sub).items()
                            if k in ("n", "task", "task_ci95", "agent", "consistency", "avg")}
    result["per_family_task"] = {
        fam: float(np.mean([v.task for v, t in zip(verdicts, tasks) if t.family == fam]))
        for fam in sorted({t.family for t in tasks})
    }
    return result


def prompts_for(tasks: Sequence[TaskSpec], prompt: str) -> list[str]:
    """``solution``: the detailed step-by-step caption (Demonstrator); ``task``: the short instruction;
    ``outcome``: the task's goal in the outcome register ("The red circle moves until it is ...")."""
    if prompt == "outcome":
        from .world.outcomes import outcome_caption
        from .world.tasks import parse_task

        return [outcome_caption(parse_task(t.task)) for t in tasks]
    return [t.solution if prompt == "solution" else t.task for t in tasks]


def sample_and_score(backbone, tasks: Sequence[TaskSpec], prompt: str, judge: Judge, seed: int,
                     batch_size: int) -> tuple[dict, np.ndarray]:
    """Sample one video per task (ODE, seeded) with the chosen prompt kind, then judge it."""
    from .models.sampling import generate

    backbone.eval()
    started = time.time()
    videos = generate(backbone, np.stack([t.image for t in tasks]), prompts_for(tasks, prompt), seed, batch_size)
    scores = score_tasks(videos, tasks, judge)
    scores.update({"prompt": prompt, "videos_per_second": len(tasks) / (time.time() - started)})
    return scores, videos
