"""The driver's state and exact-resume checkpoints.

A checkpoint folder holds the learner's part (adapter in diffusers LoRA format, optimizer
or DeepSpeed state, version and step counts) and the driver's part (phase, updates sent,
which Demonstrator tasks are done, the sample buffers, RNG state, counters), written after the
learner has acknowledged that every batch sent before it is applied, so the two agree.
``COMPLETE`` is written last; a folder without it is ignored on resume.
"""
from __future__ import annotations

import os
import pickle
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .buffers import DemonstrationBuffer, ExecutorPool

PHASES = ("propose", "distill", "rl", "ablation", "eval", "done")


@dataclass
class DriverState:
    phase: str = "propose"
    sent: Counter = field(default_factory=Counter)  # phase -> train batches sent (= learner steps)
    demonstrated_tasks: set = field(default_factory=set)  # train-task indices with judged Demonstrator groups
    demonstrations: DemonstrationBuffer = field(default_factory=DemonstrationBuffer)
    executor_samples: ExecutorPool | None = None
    rng: dict = field(default_factory=dict)  # numpy bit-generator state
    calls: int = 0  # rollout calls submitted: seeds derive from it, so retries reuse theirs
    counters: Counter = field(default_factory=Counter)
    learner_dirs: dict = field(default_factory=dict)  # name -> learner checkpoint folder
    consumed_groups: list = field(default_factory=list)  # Executor group ids, in the order first used

    def generator(self, seed: int) -> np.random.Generator:
        g = np.random.default_rng(seed)
        if self.rng:
            g.bit_generator.state = self.rng
        return g


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def save_state(state: DriverState, rng: np.random.Generator, directory: Path) -> None:
    state.rng = rng.bit_generator.state
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "driver_state.pkl.tmp"
    with open(tmp, "wb") as f:
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, directory / "driver_state.pkl")
    (directory / "COMPLETE").write_text(state.phase)
    latest = directory.parent / "LATEST"
    (directory.parent / "LATEST.tmp").write_text(directory.name)
    os.replace(directory.parent / "LATEST.tmp", latest)


def load_latest(run_dir: Path) -> tuple[DriverState, Path] | None:
    root = checkpoint_root(run_dir)
    latest = root / "LATEST"
    if not latest.is_file():
        return None
    directory = root / latest.read_text().strip()
    if not (directory / "COMPLETE").is_file():
        raise RuntimeError(f"checkpoint {directory} is incomplete; LATEST should never point at one")
    with open(directory / "driver_state.pkl", "rb") as f:
        return pickle.load(f), directory


def prune(run_dir: Path, keep: int, protect: set[str]) -> None:
    """Drop old in-phase checkpoints (phase-boundary ones named in ``protect`` stay)."""
    root = checkpoint_root(run_dir)
    found = sorted((p for p in root.glob("step-*") if p.is_dir() and p.name not in protect), key=lambda p: p.stat().st_mtime)
    for p in found[:-keep] if keep > 0 else found:
        shutil.rmtree(p, ignore_errors=True)
