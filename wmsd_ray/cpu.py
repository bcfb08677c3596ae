"""How much CPU one process may use: torch intra-op threads and, optionally, which cores.

Pinning is what "each limited to one core" means literally. On 2 cores,
``benchmarks/async_vs_sync.py`` measured async/sync 1.09x unpinned, 1.20-1.28x with the
learner on core 1 and the Executor actor and judge on core 0, and 1.46x with the Executor actor alone on
core 0 and everything else (judge, driver, Ray's processes) beside the learner, at two tasks
per Executor call (1.58-1.75x once the Executor actor refreshed its adapter per group). Empty
``cores`` leaves the process free.
"""
from __future__ import annotations

import os

import torch


def limit_cpu(threads: int, cores: list[int] | None = None) -> None:
    if cores:
        if not hasattr(os, "sched_setaffinity"):
            raise RuntimeError("cpu_affinity needs Linux (os.sched_setaffinity)")
        available = os.sched_getaffinity(0) | set(range(os.cpu_count() or 1))
        bad = [c for c in cores if c not in available]
        if bad:
            raise ValueError(f"cpu_affinity names core {bad[0]}, but this machine has cores 0..{(os.cpu_count() or 1) - 1}")
        os.sched_setaffinity(0, set(cores))
    torch.set_num_threads(threads)
