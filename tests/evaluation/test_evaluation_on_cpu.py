"""Scoring and the eval entry point."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_MODEL

from wmsd_ray.evaluation import paired_difference, prompts_for, score_tasks, score_verdicts, wilson
from wmsd_ray.media import read_video
from wmsd_ray.world.benchmark import load_benchmark
from wmsd_ray.world.captions import simulate_caption
from wmsd_ray.world.judge import Verdict
from wmsd_ray.world.scene import Scene

ROOT = Path(__file__).resolve().parents[2]


def test_wilson_interval_contains_the_rate_and_stays_in_bounds():
    for k, n in [(0, 200), (100, 200), (200, 200), (3, 7)]:
        lo, hi = wilson(k, n)
        assert 0 <= lo <= k / n <= hi <= 1
    assert wilson(100, 200)[1] - wilson(100, 200)[0] < wilson(10, 20)[1] - wilson(10, 20)[0]


def test_score_verdicts_counts_each_axis():
    vs = [Verdict(True, True, True, 2.0, 0.9), Verdict(False, True, False, -1.0, 0.2),
          Verdict(False, False, False, 0.0, 0.5, error="no agent")]
    s = score_verdicts(vs)
    assert s["n"] == 3 and s["judge_errors"] == 1
    assert s["task"] == pytest.approx(1 / 3) and s["agent"] == pytest.approx(2 / 3)
    assert s["avg"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert s["per_task"] == {"task": [1, 0, 0], "agent": [1, 1, 0], "consistency": [1, 0, 0]}


def test_paired_difference_uses_the_per_task_disagreements():
    rng = np.random.default_rng(0)
    a = (rng.random(200) < 0.3).astype(int)
    b = a.copy()
    b[:10] = 1 - b[:10]  # the two models disagree on 10 of 200 tasks only
    mean, lo, hi = paired_difference(b, a)
    assert mean == pytest.approx((b.sum() - a.sum()) / 200) and lo < mean < hi
    d = b - a
    assert hi - lo == pytest.approx(2 * 1.96 * d.std(ddof=1) / np.sqrt(200))
    # Far narrower than the two rates' own intervals, which ignore that the tasks are shared.
    independent = [wilson(int(x.sum()), 200) for x in (a, b)]
    assert hi - lo < 0.6 * min(top - bottom for bottom, top in independent)
    assert paired_difference(a, a) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference(a, a[:-1])


def test_ground_truth_solutions_score_one_and_first_frames_score_zero(cfg, renderer, judge):
    tasks = load_benchmark(cfg.world)[:40]
    videos = []
    for t in tasks:
        scene = Scene.from_json(t.scene_json)
        agent, path = simulate_caption(scene, t.solution, cfg.world.frames)
        videos.append(renderer.render_path(scene, agent, path))
    good = score_tasks(videos, tasks, judge)
    assert good["task"] == 1.0 and good["consistency"] == 1.0
    assert good["held_out"]["n"] + good["in_distribution"]["n"] == 40
    still = score_tasks([np.repeat(t.image[None], cfg.world.frames, 0) for t in tasks], tasks, judge)
    assert still["task"] == 0.0
    assert prompts_for(tasks, "task")[0] == tasks[0].task and prompts_for(tasks, "solution")[0] == tasks[0].solution


def test_eval_cli_writes_scores_and_gif(tmp_path):
    out = tmp_path / "eval"
    r = subprocess.run([sys.executable, "-m", "wmsd_ray.eval", "--prompt", "solution,task", "--out", str(out),
                        *TINY_MODEL, "eval.tasks=6", "eval.gif_tasks=4"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((out / "scores.json").read_text())
    assert list(results) == ["random-init (solution)", "random-init (task)"]
    for scores in results.values():
        assert scores["n"] == 6
        for axis in ("task", "agent", "consistency", "avg"):
            assert 0 <= scores[axis] <= 1 and len(scores[f"{axis}_ci95"]) == 2
    gif = read_video(out / "samples.gif")
    assert gif.shape[0] == 9 and gif.shape[1] >= 4 * 32 * 3 and gif.shape[2] >= 2 * 32 * 3  # 4 rows x 2 models
    report = (out / "report.md").read_text()
    assert "random-init (task)" in report and (out / "scores.png").stat().st_size > 1000
    assert (out / "config.yaml").is_file()


def test_eval_cli_on_a_worldtasks_folder_skips_bad_rows(tmp_path, cfg):
    from wmsd_ray.media import write_png

    tasks = load_benchmark(cfg.world)[:3]
    data = tmp_path / "wt"
    data.mkdir()
    rows = []
    for i, t in enumerate(tasks):
        write_png(data / f"s{i}.png", t.image)
        rows.append({"image": f"s{i}.png", "agent": t.agent, "task": t.task, "solution": t.solution})
    (data / "broken.png").write_bytes(b"not a png")
    rows += [{"image": "broken.png", "agent": "a", "task": "[a]: b", "solution": "c"}, {"image": "s0.png"}]
    (data / "tasks.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    r = subprocess.run([sys.executable, "-m", "wmsd_ray.eval", "--benchmark", "worldtasks", "--data", str(data),
                        "--out", str(tmp_path / "out"), *TINY_MODEL], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "3 tasks, skipped {'unreadable_image': 1, 'missing_field': 1, 'malformed_row': 1}" in r.stdout
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["random-init (solution)"]["n"] == 3


def test_eval_cli_missing_checkpoint_is_one_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "wmsd_ray.eval", "--checkpoint", str(tmp_path / "none")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "no checkpoint folder at" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_packaged_demonstrator_meets_the_bar_with_the_detailed_solution(cfg):
    from wmsd_ray.eval import evaluate
    from wmsd_ray.models import build_backbone

    s, _ = evaluate(cfg, build_backbone(cfg.model, cfg.world), "solution")
    assert s["n"] == 200 and s["task"] >= 0.50 and s["consistency"] >= 0.80


def test_acceptance_checks_compare_counts_not_float_noise():
    from wmsd_ray.runtime.evaluate import bars

    def arm(task: int, cons: int) -> dict:  # counts out of 200 tasks, as the report's rates are
        return {"task": task / 200, "consistency": cons / 200}

    checks = bars({"Demonstrator (solution)": arm(144, 181), "Demonstrator (task)": arm(14, 42),
                   "Executor distill-only (task)": arm(34, 167), "Executor distill+RL (task)": arm(44, 171)})
    assert checks["consistency_gap"] == {"value": 0.05, "target_max": 0.05, "met": True}  # 10/200: on the bar
    assert checks["rl_gain_at_matched_updates"]["value"] == 0.05 and checks["rl_gain_at_matched_updates"]["met"]
    assert not checks["executor_vs_demonstrator_solution"]["met"]  # -0.5
    assert checks["executor_over_demonstrator_task"]["value"] == round(44 / 14, 9)
    worse = bars({"Demonstrator (solution)": arm(144, 181), "Executor distill+RL (task)": arm(44, 170)})
    assert worse["consistency_gap"]["value"] == 0.055 and not worse["consistency_gap"]["met"]
    assert all("ci95" not in v for v in checks.values())  # no per-task outcomes, no paired interval


def test_acceptance_checks_carry_paired_intervals_from_per_task_outcomes():
    from wmsd_ray.runtime.evaluate import bars

    rng = np.random.default_rng(1)

    def arm(task: np.ndarray, cons: np.ndarray) -> dict:
        return {"task": task.mean(), "consistency": cons.mean(),
                "per_task": {"task": task.tolist(), "consistency": cons.tolist()}}

    dist_task = (rng.random(200) < 0.25).astype(int)
    rl_task = dist_task.copy()
    rl_task[np.flatnonzero(dist_task == 0)[:12]] = 1  # RL solves 12 more tasks and loses none
    cons = (rng.random(200) < 0.9).astype(int)
    checks = bars({"Demonstrator (solution)": arm((rng.random(200) < 0.7).astype(int), cons),
                   "Executor distill-only (task)": arm(dist_task, cons),
                   "Executor distill+RL (task)": arm(rl_task, cons)})
    gain = checks["rl_gain_at_matched_updates"]
    assert gain["value"] == 0.06 and gain["met"]
    lo, hi = gain["ci95"]
    assert 0 < lo < 0.06 < hi  # every disagreement favours RL, so the interval excludes 0
    assert checks["consistency_gap"]["ci95"] == [0.0, 0.0]  # identical outcomes
    assert "ci95" not in checks.get("executor_over_demonstrator_task", {})  # a ratio, not a difference
