"""Sampling speed of the embedded Demonstrator: videos per second for a batch of 8.

Prints ODE (Euler) and Flow-GRPO SDE (with per-step log-probs kept) figures at the default
step count (``model.sample_steps``), after a warm-up batch, median of several repeats.
Usage: python benchmarks/sampling_speed.py [--repeats 5] [--threads 2] [KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from wmsd_ray.config import load_config
from wmsd_ray.models import build_backbone
from wmsd_ray.models.sampling import initial_noise, ode_sample, sde_sample
from wmsd_ray.world.benchmark import load_benchmark


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--eta", type=float, default=0.7, help="the SDE's noise level (Flow-GRPO's)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(None, args.overrides)
    bb = build_backbone(cfg.model, cfg.world).eval()
    tasks = load_benchmark(cfg.world)[: args.batch]
    cond = bb.condition(np.stack([t.image for t in tasks]), [t.solution for t in tasks])
    g = torch.Generator().manual_seed(0)
    runs = {
        "ode": lambda: bb.decode(ode_sample(bb, cond, initial_noise(bb, cond, g))),
        "sde": lambda: bb.decode(sde_sample(bb, cond, initial_noise(bb, cond, g), g, args.eta).final),
    }
    print(f"backbone {cfg.model.backbone}, checkpoint {cfg.model.checkpoint or 'random-init'}, "
          f"batch {args.batch}, {cfg.model.sample_steps} steps, {args.threads} threads")
    for name, fn in runs.items():
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"{name}: {args.batch / med:.1f} videos/s ({med * 1000:.0f} ms per batch of {args.batch})")


if __name__ == "__main__":
    main()
