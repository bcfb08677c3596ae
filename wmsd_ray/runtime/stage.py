"""What a phase (a *stage*) may ask of the driver: the typed interface between the two.

Each phase of the main job (propose, Demonstrator rollouts + distillation, RL, ablation, evaluation)
is a small object built on a ``Controller`` and run once; it reaches the driver only through
this interface, never through its private members.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

POLL_S = 0.2  # longest idle wait of the controller loop (and of a stage's final collect)

if TYPE_CHECKING:
    from tqdm import tqdm

    from actors.pool import ActorPool
    from learners.group import LearnerGroup
    from wmsd_ray.config import Config
    from wmsd_ray.records import TaskSpec

    from .metrics import Metrics
    from .state import DriverState


class Controller(Protocol):
    cfg: Config
    run_dir: Path
    state: DriverState  # what a checkpoint saves: counters, buffers, batches sent per phase
    rng: np.random.Generator
    tasks: list[TaskSpec]
    metrics: Metrics
    store: object  # the WeightStoreActor the Executor actors read adapter versions from
    version: int  # the newest adapter version the learner has published
    updates_done: dict[str, int]  # phase -> last batch index the learner has reported done
    pools: dict[str, ActorPool]  # the pools open now, by role

    def pool(self, name: str) -> ActorPool: ...
    def release(self, *names: str) -> None: ...
    def next_seed(self) -> int: ...
    def task_seed(self, index: int) -> int: ...
    def checkpoint(self, learner: LearnerGroup | None, name: str) -> Path: ...
    def open_learner(self, phase: str, store, losses: dict[str, float], start_from: str, target: int,
                     threads: int) -> LearnerGroup: ...
    def progress(self, phase: str, total: int) -> tqdm: ...
    def send_batch(self, learner: LearnerGroup, phase: str, batch_ref, target: int, bar: tqdm) -> None: ...
    def wait_for_work(self, refs: list, phase: str, bar: tqdm | None = None, store=None) -> None: ...
    def drain_learner_metrics(self, phase: str, bar: tqdm | None = None, store=None) -> list[dict]: ...
    def memory_summary(self) -> dict: ...
