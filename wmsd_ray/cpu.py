"""How much CPU one process may use: torch intra-op threads and, optionally, which cores.

Pinning is what "each limited to one core" means literally: the learner on its own core, the
sampler and judge on the other. On 2 cores it raised the async/sync ratio of
``benchmarks/async_vs_sync.py`` from 1.09x to 1.20x; the async learner step still slows
(780 -> 1011 ms), since the driver and Ray's own processes stay unpinned. Empty ``cores``
leaves the process free.
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
