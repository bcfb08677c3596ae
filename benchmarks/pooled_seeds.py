"""Main-job runs of several seeds, side by side, with their differences pooled over all tasks.

Each run's ``scores.json`` keeps every benchmark task's 0/1 outcome per model and axis, on the
same 200 tasks and sampling seeds. Per run this prints the four models' Task and Consistency
and the paired checks; pooled, it concatenates the runs' paired outcomes (two seeds: 400 pairs)
for the RL gain at matched updates and the Executor's margin over the Demonstrator, with a
normal 95% interval over the per-task differences. The pooled interval covers the benchmark's
sampling noise and, across runs, part of the run-to-run variance.
Usage: python benchmarks/pooled_seeds.py outputs/seed0 outputs/seed1
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from wmsd_ray.evaluation import paired_difference

DEMO_S, DEMO_T = "Demonstrator (solution)", "Demonstrator (task)"
DIST, RL = "Executor distill-only (task)", "Executor distill+RL (task)"
PAIRS = {"RL gain at matched updates (Task)": (RL, DIST, "task"),
         "Executor - Demonstrator (solution), Task": (RL, DEMO_S, "task"),
         "Demonstrator - Executor, Consistency": (DEMO_S, RL, "consistency")}


def load(run: Path) -> dict:
    return json.loads((run / "scores.json").read_text())["models"]


def pooled(runs: list[dict], a: str, b: str, axis: str) -> tuple[float, float, float, int]:
    xa = [v for r in runs for v in r[a]["per_task"][axis]]
    xb = [v for r in runs for v in r[b]["per_task"][axis]]
    mean, lo, hi = paired_difference(xa, xb)
    return mean, lo, hi, len(xa)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    args = ap.parse_args()
    runs = [load(r) for r in args.runs]
    print("| run | model | Task [95% CI] | Agent | Consistency |\n|---|---|---|---|---|")
    for path, r in zip(args.runs, runs):
        for name in (DEMO_S, DEMO_T, DIST, RL):
            s = r[name]
            print(f"| {path.name} | {name} | {s['task']:.3f} [{s['task_ci95'][0]:.2f}, {s['task_ci95'][1]:.2f}] | "
                  f"{s['agent']:.3f} | {s['consistency']:.3f} |")
    print("\n| difference | runs | per run: value [paired 95% CI] | pooled: value [paired 95% CI] (pairs) |\n"
          "|---|---|---|---|")
    for label, (a, b, axis) in PAIRS.items():
        each = []
        for r in runs:
            m, lo, hi = paired_difference(r[a]["per_task"][axis], r[b]["per_task"][axis])
            each.append(f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        m, lo, hi, n = pooled(runs, a, b, axis)
        print(f"| {label} | {len(runs)} | {'; '.join(each)} | {m:+.3f} [{lo:+.3f}, {hi:+.3f}] ({n}) |")


if __name__ == "__main__":
    main()
