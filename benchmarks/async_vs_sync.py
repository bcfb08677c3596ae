"""Async vs synchronous training throughput of the RL phase, and weight-sync cost.

Runs ``python -m wmsd_ray.run`` twice with the same resources (one sampler actor and one
learner worker, one thread each; by default pinned to their own cores so "one core each" holds
literally: the sampler alone on core 0; the learner on core 1, with the judge, the Demonstrator,
the driver and Ray's own processes, which inherit the driver's core) and the same short
schedule (a brief distillation, then ``--updates`` RL updates, no ablation or evaluation):
once with ``stream.mode=async`` (samplers run ahead, bounded by the staleness bound) and once
with ``stream.mode=sync`` (sample with the current adapter, train on it, repeat). Prints RL
updates per second for each, their ratio, and weight-sync time (learner publish + sampler
load) as a fraction of the learner's step time. How close to the limit: from the sync run's own
per-update timings (t_learn, its learner step; t_sample, the rest of its time per update:
sampling, judging, queueing), perfect overlap would give (t_sample + t_learn) /
max(t_sample, t_learn); the async run's share of that ideal ratio is printed too.
With ``learner.weight_sync=collective`` the adapter goes over a process group (gloo here, NCCL
on GPUs) and the sender's own send time is printed too.
Usage: python benchmarks/async_vs_sync.py [--updates 60] [--no-pin] [KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from wmsd_ray.runtime.metrics import read_metrics


def run(mode: str, updates: int, out: Path, extra: list[str], home_core: int | None) -> dict:
    args = [sys.executable, "-m", "wmsd_ray.run", f"run_name={mode}", f"output_dir={out}", f"stream.mode={mode}",
            "data.train_scenes=12", "train.distill_updates=10", "train.min_buffer=16", f"train.rl_updates={updates}",
            "train.ablation=false", "train.eval=false", "logging.wandb=disabled", "ray.dashboard=false",
            "actors.executor.count=1", "actors.executor.threads=1", "learner.threads=1", "train.checkpoint_every=1000",
            # Two tasks (16 videos) per sampler call. With the default four a call takes ~17 s, the
            # async learner moves on ~17 versions meanwhile and many groups outlive the staleness
            # bound (14 of 32 dropped). Measured async/sync while the sampler still refreshed its
            # adapter once per call: 1.28x at four tasks, 1.46x at two, 1.66x at one (where sync
            # itself is slowest: 0.35 updates/s against 0.41). Refreshing per group: 1.75x at two.
            "train.rl_tasks=2",
            *extra]
    # The driver starts the local Ray cluster, so raylet, GCS and every worker inherit its core
    # until an actor pins itself: Ray's bookkeeping stays off the sampler's core.
    pin_home = (lambda: os.sched_setaffinity(0, {home_core})) if home_core is not None else None
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, preexec_fn=pin_home)
    rows = read_metrics(out / mode / "metrics.jsonl")
    rl_seconds = next(r["seconds"] for r in rows if r.get("event") == "phase_done" and r.get("phase") == "rl")
    steps = [r for r in rows if r.get("phase") == "rl" and "step_s" in r]
    sampler = next((r for r in rows if r.get("event") == "executor_stats"), {"sync_s_mean": 0.0})
    pool = next((r for r in rows if r.get("event") == "pool_stats"), {})
    stopped = next((r for r in rows if r.get("event") == "stopped" and r.get("phase") == "rl"), {})
    step_s = float(np.mean([r["step_s"] for r in steps]))
    publish_s = float(np.mean([r.get("publish_s", 0.0) for r in steps]))
    lag = [r["staleness_mean"] for r in steps]
    return {"updates_per_s": updates / rl_seconds, "rl_seconds": rl_seconds, "step_s": step_s,
            "publish_s": publish_s, "executor_load_s": sampler.get("sync_s_median", sampler["sync_s_mean"]),
            "first_load_s": sampler.get("sync_s_first", 0.0), "staleness": float(np.mean(lag)),
            "groups": pool.get("groups_in", 0), "stale": pool.get("stale_dropped_groups", 0),
            "transport": stopped.get("transport", "object_store"), "send_s": stopped.get("collective_send_s", 0.0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=60)
    ap.add_argument("--no-pin", action="store_true", help="let every process float over all cores")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    if pin:
        args.overrides = ["learner.cpu_affinity=[1]", "actors.executor.cpu_affinity=[0]", "actors.judge.cpu_affinity=[1]",
                          "actors.demonstrator.cpu_affinity=[1]", *args.overrides]
    print("cores: sampler alone on core 0; learner, judge, Demonstrator, driver and Ray's processes on core 1"
          if pin else "cores: unpinned")
    with tempfile.TemporaryDirectory() as tmp:
        res = {m: run(m, args.updates, Path(tmp), args.overrides, 1 if pin else None) for m in ("async", "sync")}
    for mode, r in res.items():
        print(f"{mode:5s}: {r['updates_per_s']:.3f} RL updates/s ({args.updates} in {r['rl_seconds']:.1f} s), "
              f"learner step {r['step_s'] * 1000:.0f} ms, mean staleness {r['staleness']:.2f} versions, "
              f"{r['stale']} of {r['groups']} groups dropped stale")
    ratio = res["async"]["updates_per_s"] / res["sync"]["updates_per_s"]
    print(f"async / sync throughput: {ratio:.2f}x (target >= 1.3)")
    t_learn = res["sync"]["step_s"]
    t_sample = max(0.0, res["sync"]["rl_seconds"] / args.updates - t_learn)
    ideal = (t_sample + t_learn) / max(t_sample, t_learn)
    print(f"ideal async / sync from the sync run's timings: t_sample {t_sample:.3f} s + t_learn {t_learn:.3f} s per update "
          f"-> {ideal:.2f}x; the async run reaches {100 * ratio / ideal:.0f}% of it (target >= 85%)")
    r = res["async"]
    sync_s = r["publish_s"] + r["executor_load_s"]
    print(f"weight sync ({r['transport']}): publish {r['publish_s'] * 1000:.1f} ms + sampler load "
          f"{r['executor_load_s'] * 1000:.1f} ms (median) = {100 * sync_s / r['step_s']:.1f}% of a learner step "
          f"(target <= 5%); the phase's first load, which waits for the learner group to start, "
          f"{r['first_load_s']:.2f} s"
          + (f"; each send {r['send_s'] * 1000:.1f} ms in the sender's thread, beside training"
             if r["transport"] == "collective" else ""))


if __name__ == "__main__":
    main()
