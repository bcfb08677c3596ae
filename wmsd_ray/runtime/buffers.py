"""The driver's sample stores and how train batches are drawn from them.

- ``DemonstrationBuffer``: judge-accepted Demonstrator samples (append-only; off-policy data never
  goes stale). x0 is kept in float16: half the memory, far below the model's error.
- ``ExecutorPool``: scored Executor groups with advantages, each serving up to ``reuse``
  updates; a group older than ``max_staleness`` adapter versions is dropped (counted) or,
  with ``stale_policy=importance``, kept for Flow-GRPO's ratio to correct. A draw visits
  groups until their rows make up the batch's Executor share, so scored groups pace the learner;
  of those rows it takes only the ones that carry weight in the loss (``rows`` at ``add``),
  and the caller fills the batch with demonstration rows.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..rollouts import TEACHER_VERSION, RolloutGroup, TrainBatch


@dataclass
class Sample:
    image: np.ndarray
    task: str
    solution: str
    x0: np.ndarray  # float16
    advantage: float = 1.0
    version: int = TEACHER_VERSION
    group_id: str = ""


@dataclass
class DemonstrationBuffer:
    samples: list[Sample] = field(default_factory=list)
    seen_groups: set = field(default_factory=set)

    def add(self, group: RolloutGroup, judge_filter: bool) -> int | None:
        """Keep the accepted samples of a judged group (all of them without the filter); how many.
        None for a group already added (a retried call that had in fact finished)."""
        if group.group_id in self.seen_groups:
            return None
        self.seen_groups.add(group.group_id)
        keep = group.accepted if judge_filter else np.ones(group.size, bool)
        for i in np.flatnonzero(keep):
            self.samples.append(Sample(group.image, group.task, group.solution, group.x0[i].astype(np.float16),
                                       group_id=group.group_id))
        return int(keep.sum())

    def __len__(self) -> int:
        return len(self.samples)

    def draw(self, rng: np.random.Generator, n: int) -> list[Sample]:
        return [self.samples[i] for i in rng.integers(len(self.samples), size=n)]


@dataclass
class _Entry:
    group: RolloutGroup
    advantages: np.ndarray
    rows: np.ndarray  # the rows a draw may take
    uses: int = 0


@dataclass
class ExecutorPool:
    max_staleness: int
    reuse: int
    stale_policy: str = "drop"
    entries: list[_Entry] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)
    seen_groups: set = field(default_factory=set)
    visited: list[str] = field(default_factory=list)  # the groups the last draw used

    def add(self, group: RolloutGroup, advantages: np.ndarray, rows: np.ndarray | None = None) -> bool:
        """Keep a scored group; ``rows`` masks the rows a draw may take (default: all).
        False for a group already seen (a retried call that had in fact finished)."""
        if group.group_id in self.seen_groups:
            self.counters["duplicate_groups"] += 1
            return False
        self.seen_groups.add(group.group_id)
        keep = np.flatnonzero(np.ones(group.size, bool) if rows is None else rows)
        self.entries.append(_Entry(group, advantages, keep))
        self.counters["groups_in"] += 1
        self.counters["no_signal_groups"] += int(not keep.size)
        return True

    def prune(self, version: int) -> None:
        keep = []
        for e in self.entries:
            lag = version - e.group.version
            if lag > self.max_staleness and self.stale_policy == "drop":
                self.counters["stale_dropped_groups"] += 1
                self.counters["stale_dropped_unused"] += int(e.uses == 0)
            elif e.uses >= self.reuse:
                self.counters["retired_groups"] += 1
            else:
                keep.append(e)
        self.entries = keep

    def available(self, version: int) -> int:
        self.prune(version)
        return sum(e.group.size for e in self.entries)

    def draw(self, rng: np.random.Generator, n: int, version: int) -> list[tuple[RolloutGroup, int, float]]:
        """Visit least-used groups first (freshest first among equals) until their rows number n;
        return their drawable rows, at most n: (group, row, advantage)."""
        self.prune(version)
        order = sorted(self.entries, key=lambda e: (e.uses, -e.group.version, rng.random()))
        out: list[tuple[RolloutGroup, int, float]] = []
        seen, self.visited = 0, []
        for e in order:
            if seen >= n:
                break
            rows = rng.permutation(e.rows)[: n - seen]  # never more than the visit adds: len(out) <= seen
            out += [(e.group, int(r), float(e.advantages[r])) for r in rows]
            seen += min(e.group.size, n - seen)
            self.visited.append(e.group.group_id)
            e.uses += 1
            if version - e.group.version > self.max_staleness:
                self.counters["stale_kept_groups"] += 1
        return out


def demonstration_batch(update: int, samples: list[Sample], seed: int, kind: str = "demonstrator") -> TrainBatch:
    return TrainBatch(
        update=update, kind=kind, images=np.stack([s.image for s in samples]), tasks=[s.task for s in samples],
        solutions=[s.solution for s in samples], x0=np.stack([s.x0 for s in samples]).astype(np.float32),
        advantages=np.array([s.advantage for s in samples], np.float32),
        versions=np.array([s.version for s in samples], np.int64), sigmas=np.zeros(0, np.float32), seed=seed,
    )


def executor_batch(update: int, picks: list[tuple[RolloutGroup, int, float]], demos: list[Sample], seed: int,
                   keep_trajectory: bool) -> TrainBatch:
    """Executor rows (with stored trajectories when the loss needs them) plus demonstration rows (advantage 1).
    With no Executor rows it is a Demonstrator batch: no trajectories, so on-policy terms use the anchor."""
    if not picks:
        return demonstration_batch(update, demos, seed, kind="executor")
    g0 = picks[0][0]
    rows = [Sample(g.image, g.task, g.solution, g.x0[r], adv, g.version, g.group_id) for g, r, adv in picks]
    batch = demonstration_batch(update, rows + demos, seed, kind="executor")
    if keep_trajectory:
        batch.latents = np.stack([g.latents[:, r] for g, r, _ in picks], axis=1)
        batch.log_probs = np.stack([g.log_probs[:, r] for g, r, _ in picks], axis=1)
        batch.sigmas, batch.eta = g0.sigmas, g0.eta
    return batch
