"""The command lines as a person uses them: real subprocesses, real files."""
import json
import signal
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from wmsd_ray.evaluation import paired_difference
from wmsd_ray.media import write_gif, write_png
from wmsd_ray.records import TaskSpec, read_parquet


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def one_error_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.slow
def test_world_check_passes_and_prints_one_json_line():
    proc = run("wmsd_ray.world", "check")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["pass"] and out["failed_bars"] == []
    assert out["gt_noisy"]["task"] >= 0.99 and out["mismatch_noisy"]["task"] <= 0.02
    assert out["faults_noisy"]["caught"] >= 0.99 and out["proposer"]["feasible"] >= 0.95


def test_world_check_fails_when_a_bar_fails():
    # Noise far beyond what the judge is built for: the check must say so and exit non-zero.
    proc = run("wmsd_ray.world", "check", "--set", "check.noise_sigma=0.6", "--set", "check.proposer_scenes=2")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert not out["pass"] and out["failed_bars"]


def test_propose_cli_writes_tasks(tmp_path, renderer, world):
    from wmsd_ray.world.scene import random_scene

    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        p = tmp_path / f"scene{i}.png"
        write_png(p, renderer.render(random_scene(world, rng)))
        paths.append(str(p))
    proc = run("wmsd_ray.world", "propose", *paths, "--out", str(tmp_path / "tasks.parquet"))
    assert proc.returncode == 0, proc.stderr
    specs = read_parquet(TaskSpec, tmp_path / "tasks.parquet")
    assert len(specs) == 24 and {s.scene_id for s in specs} == {"scene0", "scene1", "scene2"}


@pytest.mark.parametrize("bad, fragment", [
    ("text", "is not a readable image"),
    ("wrong_size", "64x64 px, but world.resolution is 32x32"),
])
def test_propose_bad_image_is_one_error_line_and_no_output(tmp_path, renderer, world, bad, fragment):
    good = tmp_path / "good.png"
    write_png(good, np.zeros((32, 32, 3), np.uint8))
    if bad == "text":
        target = tmp_path / "notes.png"
        target.write_text("this is not an image")
    else:
        target = tmp_path / "big.png"
        write_png(target, np.zeros((64, 64, 3), np.uint8))
    out = tmp_path / "tasks.parquet"
    proc = run("wmsd_ray.world", "propose", str(good), str(target), "--out", str(out))
    assert fragment in one_error_line(proc)
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("override, fragment", [
    ("world.gird=4", "unknown config key 'world.gird'"),
    ("world.frames=nine", "world.frames must be an int"),
])
def test_bad_config_is_one_error_line_and_no_output(tmp_path, override, fragment):
    proc = run("wmsd_ray.run", override, f"output_dir={tmp_path}/out")
    assert fragment in one_error_line(proc)
    assert not (tmp_path / "out").exists()


def test_bad_config_file(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("world:\n  grid: [4]\n")
    proc = run("wmsd_ray.world", "check", "--config", str(cfg))
    assert "world.grid must be an int" in one_error_line(proc)


def test_judge_cli_on_an_exported_gif(tmp_path, renderer):
    from wmsd_ray.world.scene import Scene, WorldObject

    s = Scene(4, (WorldObject("red", "circle", 0, 0), WorldObject("blue", "square", 3, 3), WorldObject("green", "square", 2, 2)))
    write_gif(tmp_path / "v.gif", renderer.render_path(s, "red circle", [(0, 0), (0, 1), (0, 2), (0, 3)]))
    ok = run("wmsd_ray.world", "judge", str(tmp_path / "v.gif"), "--task", "[red circle]: go to the top-right corner")
    assert ok.returncode == 0 and json.loads(ok.stdout)["task"] is True
    wrong = run("wmsd_ray.world", "judge", str(tmp_path / "v.gif"), "--task", "[red circle]: go to the bottom edge")
    assert wrong.returncode == 0 and json.loads(wrong.stdout)["task"] is False
    (tmp_path / "x.gif").write_text("nope")
    assert "not a readable video" in one_error_line(run("wmsd_ray.world", "judge", str(tmp_path / "x.gif"), "--task", "t"))


def test_sample_and_corpus_commands(tmp_path):
    proc = run("wmsd_ray.world", "sample", "--out", str(tmp_path / "s"), "--n", "2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "s" / "index.md").exists() and len(list((tmp_path / "s").glob("*.gif"))) >= 2
    proc = run("wmsd_ray.world", "corpus", "--out", str(tmp_path / "c.parquet"), "--n", "300")
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(tmp_path / "c.parquet")
    assert table.num_rows == 300 and {"caption", "frames", "scene_json"} <= set(table.column_names)


TINY_RUN = ["data.train_scenes=4", "train.distill_updates=6", "train.rl_updates=4", "eval.tasks=8",
            "train.checkpoint_every=3", "train.min_buffer=4", "learner.batch_size=4",
            "learner.phase_batch={distill: 2}", "sampling.group_size=4", "train.rl_tasks=2",
            "logging.wandb=disabled", "eval.gif_tasks=4", "ray.dashboard=false", "ray.num_cpus=2"]


@pytest.mark.slow
def test_main_job_end_to_end_in_bfloat16_survives_a_killed_sampler(tmp_path):
    """Every phase on a local Ray cluster, with weights and training in bf16 (the GPU setting) on
    the CPU; a sampler actor is killed mid-call and its group retried. The Demonstrator's scores
    on the report's tasks match float32's within the benchmark's noise. (One run for both: each
    main job costs this suite about 100 s.)"""
    # A relative output_dir, as `make run` uses: every checkpoint must land in the run folder
    # even though Ray Train workers run in another working directory; a relative model
    # checkpoint must be found by them too.
    from wmsd_ray.models.loading import PACKAGED_DEMONSTRATOR

    (tmp_path / "demonstrator").symlink_to(PACKAGED_DEMONSTRATOR)
    proc = run("wmsd_ray.run", "output_dir=outputs", "run_name=r1", "seed=5", "stream.chaos_kill_after=1",
               "model.checkpoint=demonstrator",
               "stream.max_staleness=1", "model.dtype=bfloat16", "learner.dtype=bfloat16", *TINY_RUN, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "outputs" / "r1"
    assert (run_dir / "checkpoints" / "distill_end" / "learner" / "pytorch_lora_weights.safetensors").is_file()
    cfg_text = (run_dir / "config.yaml").read_text()
    assert "train_scenes: 4" in cfg_text and "seed: 5" in cfg_text and "dtype: bfloat16" in cfg_text
    specs = read_parquet(TaskSpec, run_dir / "tasks.parquet")
    assert len(specs) == 32
    scores = json.loads((run_dir / "scores.json").read_text())
    assert scores["updates"] == {"distill": 6, "rl": 4, "ablation": 4}
    assert set(scores["models"]) == {"Demonstrator (solution)", "Demonstrator (task)",
                                     "Executor distill-only (task)", "Executor distill+RL (task)"}
    assert all(m["n"] == 8 and len(m["per_task"]["task"]) == 8 for m in scores["models"].values())
    assert all(m["judge_errors"] == 0 for m in scores["models"].values())
    gain = scores["bars"]["rl_gain_at_matched_updates"]  # both arms on the same 8 tasks: a paired interval
    assert gain["ci95"][0] <= gain["value"] <= gain["ci95"][1]
    c = scores["counters"]
    assert c["executor_injected_failures"] == 1 and c["executor_actor_failures"] >= 1
    for name in ("report.md", "scores.png", "curves.png", "samples.gif"):
        assert (run_dir / name).is_file(), name
    assert "Peak memory" in (run_dir / "report.md").read_text() and 0 < scores["peak_memory_gb"] < 24
    assert 0 < scores["peak_memory_pss_gb"] <= scores["peak_memory_gb"]  # shared pages counted once
    assert scores["memory_scope"].startswith("this process tree")  # a local cluster: every worker is ours
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # ablation restarts at distill_end; distillation takes its own batch (learner.phase_batch), the
    # ablation RL's, so that its updates match RL's
    for phase, first, n, size in (("distill", 1, 6, 2), ("rl", 7, 4, 4), ("ablation", 7, 4, 4)):
        versions = [r["version"] for r in rows if "step_s" in r and r["phase"] == phase]
        assert versions == list(range(first, first + n)), (phase, versions)
        assert {r["rows"] for r in rows if "step_s" in r and r["phase"] == phase} == {size}, phase
    # The staleness bound holds where it matters: at the weights each RL gradient was taken at.
    assert all(r["staleness_max"] <= 1 for r in rows if "step_s" in r and r["phase"] == "rl")
    assert "already holds a run" in one_error_line(run("wmsd_ray.run", "output_dir=outputs", "run_name=r1",
                                                       cwd=tmp_path))
    # float32's reference in this process: the same 8 tasks, seed and loading code as the eval CLI
    from wmsd_ray.config import load_config
    from wmsd_ray.eval import evaluate
    from wmsd_ray.models import build_backbone

    fp32_cfg = load_config(overrides=["eval.tasks=8"])
    ref, _ = evaluate(fp32_cfg, build_backbone(fp32_cfg.model, fp32_cfg.world), "solution")
    bf16 = scores["models"]["Demonstrator (solution)"]
    _, lo, hi = paired_difference(bf16["per_task"]["task"], ref["per_task"]["task"])
    assert lo <= 0 <= hi and abs(bf16["task"] - ref["task"]) <= 0.25, (bf16["task"], ref["task"])


def rows_of(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _wait_for_checkpoint(proc, run_dir, prefix: str, timeout: float = 400.0, other_than: str = "") -> str:
    """Poll LATEST until it names a checkpoint starting with ``prefix`` (and not ``other_than``);
    return that name."""
    import time

    latest = run_dir / "checkpoints" / "LATEST"
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before a {prefix} checkpoint"
        name = latest.read_text().strip() if latest.is_file() else ""
        if name.startswith(prefix) and name != other_than:
            return name
        time.sleep(0.1)
    raise AssertionError(f"no {prefix} checkpoint within {timeout} s")


RL_UPDATES = 9  # checkpoints at RL steps 3 and 6: one for SIGTERM, one for SIGKILL, 3 updates after it


def _start_job(args: list[str], log_dir):
    with open(log_dir / "out.txt", "w") as out, open(log_dir / "err.txt", "w") as err:
        return subprocess.Popen([sys.executable, "-m", "wmsd_ray.run", *args], stdout=out, stderr=err,
                                start_new_session=True)


@pytest.mark.slow
def test_main_job_survives_a_learner_kill_sigterm_and_sigkill_with_the_same_update_counts(tmp_path):
    """Three faults in one run (each main job costs this suite about a minute). A learner worker
    killed mid-distillation (a preempted node): the driver rewinds to the last checkpoint and
    restarts the learner group. SIGTERM mid-RL (`ray job stop`; Ctrl-C's SIGINT takes the same
    handler, and the test below sends it inside a Ray call): the run stops, says how to resume,
    and no process it started (raylet, GCS, dashboard agents, workers) outlives it. Resumed, then
    SIGKILL of the whole job (driver, Ray, every worker) mid-RL: --resume finishes it. The run
    ends with the update counts it was asked for, no batch applied twice. The Demonstrator actor
    serves both the anchor's targets and r_distill here, so those paths are resumed too."""
    import os
    import pickle
    import time

    import psutil

    run_dir = tmp_path / "r"
    overrides = [f"output_dir={tmp_path}", "run_name=r", "seed=9", *TINY_RUN, f"train.rl_updates={RL_UPDATES}",
                 "stream.max_staleness=2", "train.ablation=false", "train.eval=false",
                 "algorithm.anchor_on=demonstrator", "algorithm.lambda_distill=0.1"]
    proc = _start_job(overrides, tmp_path)
    children: list = []
    try:
        _wait_for_checkpoint(proc, run_dir, "step-distill-")
        deadline = time.time() + 60
        while not _kill_learner_worker():
            assert time.time() < deadline, "no Ray Train worker process found"
            time.sleep(0.2)
        stopped_at = _wait_for_checkpoint(proc, run_dir, "step-rl-")
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)  # to the driver alone
        proc.wait(timeout=120)
        _, alive = psutil.wait_procs(children, timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for p in children:
            if p.is_running():
                p.kill()
    assert children, "the driver started no local Ray processes"
    assert proc.returncode == 128 + signal.SIGTERM, (tmp_path / "err.txt").read_text()[-3000:]
    assert not alive, sorted(p.name() for p in alive)
    err_text = (tmp_path / "err.txt").read_text()
    assert "stopped by SIGTERM" in err_text and f"--resume {run_dir}" in err_text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] == "SIGTERM" and summary["phase"] == "rl"

    proc = _start_job(["--resume", str(run_dir)], tmp_path)
    try:
        killed_at = _wait_for_checkpoint(proc, run_dir, "step-rl-", other_than=stopped_at)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((run_dir / "summary.json").read_text()) == summary  # a killed job writes nothing

    resumed = run("wmsd_ray.run", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {run_dir / 'checkpoints' / killed_at}" in resumed.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["updates"] == {"distill": 6, "rl": RL_UPDATES} and summary["phase"] == "done"

    with open(run_dir / "checkpoints" / "rl_end" / "driver_state.pkl", "rb") as f:
        state = pickle.load(f)
    # Every finished group counted once: Demonstrator videos = samples x judged tasks; Executor groups used once each.
    assert state.counters["demonstrator_videos"] == 2 * len(state.demonstrated_tasks) > 0
    assert len(state.consumed_groups) == len(set(state.consumed_groups)) > 0
    assert state.counters["executor_videos"] == 4 * len(state.executor_samples.seen_groups) > 0
    assert state.counters["rl_anchor_from_demonstrator"] == RL_UPDATES  # every RL batch, once
    assert state.counters["learner_restarts"] == 1
    restarts = [r for r in rows_of(run_dir) if r.get("event") == "learner_restart"]
    assert len(restarts) == 1 and restarts[0]["phase"] == "distill"
    final = json.loads((run_dir / "checkpoints" / "rl_end" / "learner" / "learner_state.json").read_text())
    total = 6 + RL_UPDATES  # 6 distillation + RL updates, each applied once
    assert final["version"] == total and final["steps"] == total
    groups = [r for r in rows_of(run_dir) if r.get("event") == "group"]
    assert groups and all(r["r_distill_mean"] < 0 for r in groups)  # the Demonstrator's velocities arrived
    assert all(r["version"] >= 0 for r in groups)  # Demonstrator rollouts of the distill phase stay there
    rows = rows_of(run_dir)
    rl_versions = [r["version"] for r in rows if "step_s" in r and r["phase"] == "rl"]
    # Updates after the checkpoint are redone after each stop: versions resume at the checkpoint's.
    step = int(killed_at.rsplit("-", 1)[1])
    assert rl_versions[-RL_UPDATES + step:] == list(range(7 + step, total + 1)), rl_versions
    # After the resume too: the driver restarts from the checkpoint's version, not from 0.
    assert all(r["staleness_max"] <= 2 for r in rows if "step_s" in r and r["phase"] == "rl")


SIGNAL_INSIDE_RAY_WAIT = """
import os, signal, threading, time
import ray
from wmsd_ray.run import _stop_on_signals, interruption_in
ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
_stop_on_signals()
ref = ray.remote(lambda: time.sleep(6)).remote()  # still running when the signal lands at 2 s
threading.Timer(2.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()  # Ctrl-C
try:
    ray.wait([ref], timeout=20)
except BaseException as exc:
    print(type(exc).__name__, getattr(interruption_in(exc), "signum", None))
finally:
    ray.shutdown()
"""


def test_a_signal_inside_a_ray_call_is_still_a_clean_stop():
    """Ray runs Python signal handlers from inside ray.wait and hands our Interrupted back as
    the cause of a SystemError; the main job must still see the signal, not crash with rc 1."""
    import os

    proc = subprocess.run([sys.executable, "-c", SIGNAL_INSIDE_RAY_WAIT], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    assert proc.stdout.split()[-2:] == ["SystemError", str(int(signal.SIGINT))], proc.stdout + proc.stderr[-2000:]


def _kill_learner_worker() -> int:
    """SIGKILL the Ray Train worker processes (as a preempted learner node would vanish)."""
    import psutil

    killed = 0
    for p in psutil.process_iter(["pid", "cmdline"]):
        if "RayTrainWorker" in " ".join(p.info["cmdline"] or []):
            p.kill()
            killed += 1
    return killed

