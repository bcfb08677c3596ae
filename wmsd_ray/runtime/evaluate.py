"""The run's last phase: benchmark the Demonstrator and both Executor arms, write the report.

Four models on the same benchmark tasks and seeds: Demonstrator (detailed solution),
Demonstrator (short task), Executor after distillation alone (short task) and Executor after
distillation + RL (short task), the last two at matched learner updates. Sampling runs on
the actor pools, judging on the judge pool. Output, in the run folder: ``report.md``,
``scores.json``, ``scores.png``, ``curves.png`` and ``samples.gif``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import ray

from actors.pool import Call
from wmsd_ray.eval import write_report
from wmsd_ray.evaluation import paired_difference, score_judged
from wmsd_ray.world.benchmark import load_benchmark

from .metrics import read_metrics
from .stage import Controller

MODELS = {  # label -> (pool, prompt, adapter checkpoint)
    "Demonstrator (solution)": ("demonstrator", "solution", None),
    "Demonstrator (task)": ("demonstrator", "task", None),
    "Executor distill-only (task)": ("executor", "task", "ablation_end"),
    "Executor distill+RL (task)": ("executor", "task", "rl_end"),
}


def _adapter_arrays(directory: str) -> dict:
    with np.load(Path(directory) / "adapter.npz") as z:
        return {k: z[k] for k in z.files}


def _sample_all(d: Controller, tasks: list) -> dict[str, np.ndarray]:
    """Every model's videos, with both pools busy at once. Each chunk's call carries the adapter
    it must be sampled with (an object-store reference and its tag), so whichever actor runs
    it, a restarted or replacement one included, uses those weights."""
    chunk = d.cfg.sampling.batch_size
    for label, (pool_name, prompt, ckpt) in MODELS.items():
        if ckpt is not None and ckpt not in d.state.learner_dirs:
            continue
        pool = d.pool(pool_name)
        adapter = ray.put(_adapter_arrays(d.state.learner_dirs[ckpt])) if ckpt is not None else None
        for start in range(0, len(tasks), chunk):
            pool.submit(Call("sample_videos", (tasks[start:start + chunk], prompt, d.cfg.eval.seed + start, adapter,
                                               ckpt or ""), tag=(label, start)))
    parts: dict = {}
    pools = [d.pools[name] for name in ("demonstrator", "executor") if name in d.pools]
    while any(p.in_flight for p in pools):
        for p in pools:
            for call, _, videos in p.done(timeout=0.2):
                parts[call.tag] = videos
    labels = dict.fromkeys(label for label, _ in parts)
    return {label: np.concatenate([parts[k] for k in sorted(k for k in parts if k[0] == label)]) for label in labels}


def _judge(d: Controller, videos: np.ndarray, tasks: list) -> list:
    judge = d.pool("judge")
    k = max(1, math.ceil(len(tasks) / judge.size))
    for start in range(0, len(tasks), k):
        judge.submit(Call("judge_batch", (list(videos[start:start + k]), [t.task for t in tasks[start:start + k]]),
                          tag=start))
    parts = {}
    while judge.in_flight:
        for call, _, verdicts in judge.done(timeout=1.0):
            parts[call.tag] = verdicts
    return [v for k in sorted(parts) for v in parts[k]]


def run_eval(d: Controller) -> dict:
    cfg, st = d.cfg, d.state
    tasks = load_benchmark(cfg.world)[: cfg.eval.tasks]
    results, videos = {}, _sample_all(d, tasks)
    for label in videos:
        _, prompt, ckpt = MODELS[label]
        results[label] = score_judged(_judge(d, videos[label], tasks), tasks)
        results[label].update({"prompt": prompt, "adapter": ckpt or "none"})
        print(f"eval {label}: Task {results[label]['task']:.3f} {results[label]['task_ci95']}", flush=True)
    d.release("demonstrator", "executor", "judge")
    out = d.run_dir
    write_report(out, "wmsd-ray run report", results, videos, cfg.eval.gif_tasks, notes=[])
    d.metrics.video("samples", out / "samples.gif")
    summary = bars(results)
    rows = read_metrics(out / "metrics.jsonl")
    curves(rows, out / "curves.png")
    scores = {"models": results, "bars": summary, "counters": dict(st.counters),
              "updates": dict(st.sent), **d.memory_summary()}
    (out / "scores.json").write_text(json.dumps(scores, indent=2, default=float))
    with open(out / "report.md", "a") as f:
        f.write(report_sections(results, summary, scores, rows))
    return scores


def bars(results: dict) -> dict:
    """The issue's acceptance checks, computed from the scores (shown in the report).

    ``met`` judges the point value, as the bars are written. A difference of two models on the
    same tasks also carries ``ci95``, its paired 95% interval, where per-task outcomes are known:
    it says whether the difference stands out from the benchmark's sampling noise.
    """
    demo_s = results.get("Demonstrator (solution)", {})
    demo_t = results.get("Demonstrator (task)", {})
    rl = results.get("Executor distill+RL (task)", {})
    dist = results.get("Executor distill-only (task)", {})
    out = {}
    if demo_s and rl:
        out["executor_vs_demonstrator_solution"] = _difference(rl, demo_s, "task", target=0.10)
        out["consistency_gap"] = _difference(demo_s, rl, "consistency", target_max=0.05)
    if demo_t and rl:
        out["executor_over_demonstrator_task"] = {"value": rl["task"] / max(demo_t["task"], 1e-9), "target": 5.0}
    if dist and rl:
        out["rl_gain_at_matched_updates"] = _difference(rl, dist, "task", target=0.05)
    for v in out.values():
        # Rates are counts over n tasks: 0.905 - 0.855 is 10/200 exactly, not 0.05000000000000004.
        v["value"] = round(float(v["value"]), 9)
        v["met"] = v["value"] <= v["target_max"] if "target_max" in v else v["value"] >= v["target"]
    return out


def _difference(a: dict, b: dict, axis: str, **target) -> dict:
    """a's rate minus b's on one axis, with the paired interval when both kept per-task outcomes."""
    out = {"value": a[axis] - b[axis], **target}
    pa, pb = a.get("per_task", {}).get(axis), b.get("per_task", {}).get(axis)
    if pa is not None and pb is not None and len(pa) == len(pb):
        _, lo, hi = paired_difference(pa, pb)
        out["ci95"] = [round(lo, 9), round(hi, 9)]
    return out


def curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), dpi=100)
    for phase, colour in (("distill", "tab:blue"), ("rl", "tab:red"), ("ablation", "tab:gray")):
        up = [r for r in rows if r.get("phase") == phase and "loss" in r]
        if up:
            axes[0].plot(_smooth([r["loss"] for r in up]), color=colour, label=phase)
    groups = [r for r in rows if r.get("event") == "group"]
    if groups:
        axes[1].plot(_smooth([g["reward_mean"] for g in groups], 20), color="tab:red")
        axes[2].plot(_smooth([g["task_rate"] for g in groups], 20), color="tab:red", label="Task (judge)")
        axes[2].plot(_smooth([g["consistency"] for g in groups], 20), color="tab:green", label="Consistency")
    axes[0].set(title="learner loss (per phase)", xlabel="update", yscale="log")
    axes[1].set(title="mean group reward (RL samples)", xlabel="group")
    axes[2].set(title="on-Executor sample rates", xlabel="group", ylim=(0, 1))
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _smooth(values: list[float], k: int = 25) -> np.ndarray:
    v = np.asarray(values, float)
    if len(v) < k:
        return v
    return np.convolve(v, np.ones(k) / k, mode="valid")


def report_sections(results: dict, summary: dict, scores: dict, rows: list[dict]) -> str:
    lines = ["", "## Acceptance checks", "",
             "`met` judges the value. For a difference of two models, the paired 95% interval over the same",
             "tasks and seeds says whether it stands out from the benchmark's sampling noise (a second",
             "training run varies more).", "",
             "| check | value | paired 95% interval | target | met |", "|---|---|---|---|---|"]
    for name, v in summary.items():
        target = f"<= {v['target_max']}" if "target_max" in v else f">= {v['target']}"
        ci = f"[{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}]" if "ci95" in v else "-"
        lines.append(f"| {name} | {v['value']:.3f} | {ci} | {target} | {'yes' if v['met'] else 'NO'} |")
    lines += ["", "## Held-out phrasings and families vs in-distribution (Task)", "",
              "| model | in-distribution | held-out |", "|---|---|---|"]
    for name, s in results.items():
        i, h = s["in_distribution"], s["held_out"]
        lines.append(f"| {name} | {i['task']:.3f} (n={i['n']}) | {h['task']:.3f} (n={h['n']}) |")
    fams = sorted({f for s in results.values() for f in s["per_family_task"]})
    lines += ["", "## Task by family", "", "| model | " + " | ".join(fams) + " |", "|---" * (len(fams) + 1) + "|"]
    for name, s in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{s['per_family_task'].get(f, 0):.2f}" for f in fams) + " |")
    phases = {r["phase"]: r["seconds"] for r in rows if r.get("event") == "phase_done"}
    lines += ["", "## Run", "", f"- Learner updates: {scores['updates']}",
              f"- Phase wall-clock (s): {', '.join(f'{k} {v:.0f}' for k, v in phases.items())}",
              f"- Peak memory of {scores['memory_scope']}: **{scores['peak_memory_gb']:.2f} GB** RSS sum "
              f"(shared pages counted in every process that maps them); "
              f"{scores['peak_memory_pss_gb']:.2f} GB PSS sum (shared pages split among them)",
              f"- Counters: {json.dumps(scores['counters'], sort_keys=True)}",
              "", "![curves](curves.png)", ""]
    return "\n".join(lines)
