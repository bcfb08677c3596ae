"""The cluster path as users take it: ``ray job submit`` against a running Ray cluster with
token auth (as Ray 2.60 sets it), the README's command as written, each paper preset run end to
end with tiny real-layout checkpoints. Actors and learner workers die mid-run as preempted
nodes do, and each job still finishes with its update counts."""
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
TINY_HUB = {"ltx2_paper.yaml": "ltx2-i2v-distilled", "hunyuan15_paper.yaml": "hunyuan1.5-i2v",
            "wan22_i2v.yaml": "wan2.2-i2v-a14b"}
DISTILL_UPDATES, RL_UPDATES = 4, 3

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_processes(sid: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid:
                found.append(p)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A Ray head started with ``ray start --head`` in its own session, token auth on (a token of
    its own, never ``~/.ray``), the node resources of the cluster YAMLs' rollout and learner node
    types. Its session files live in a temp dir of its own (short: Ray's sockets must fit
    AF_UNIX's path limit), so no other Ray on the machine reads its address afterwards. Torn
    down by killing that session, never ``ray stop`` (which ends every Ray on the machine)."""
    import shutil
    import tempfile

    home = tmp_path_factory.mktemp("ray_head")
    ray_tmp = tempfile.mkdtemp(prefix="wmsd-head-", dir="/tmp")
    token = home / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    dashboard = _free_port()
    cmd = [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={_free_port()}",
           "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--ray-client-server-port={_free_port()}",
           f"--dashboard-agent-listen-port={_free_port()}", f"--metrics-export-port={_free_port()}", "--num-cpus=4",
           '--resources={"rollout_node": 4, "learner_node": 2}', "--disable-usage-stats", f"--temp-dir={ray_tmp}"]
    with open(home / "head.log", "w") as log:
        head = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=home)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.time() + 90
        while subprocess.run([RAY, "job", "list", "--address", address], env=env, capture_output=True,
                             timeout=60).returncode != 0:
            assert head.poll() is None and time.time() < deadline, (home / "head.log").read_text()[-3000:]
            time.sleep(1)
        yield {"address": address, "env": env}
    finally:
        procs = _session_processes(head.pid)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=5)
        for p in alive:
            p.kill()
        head.wait(timeout=30)
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def job_inputs(tmp_path_factory):
    """A folder of unlabeled scene images and a tiny random VLM judge saved to disk."""
    from wmsd_ray.config import load_config
    from wmsd_ray.media import write_png
    from wmsd_ray.vlm.tiny import make_tiny_qwen_vl
    from wmsd_ray.world.render import Renderer
    from wmsd_ray.world.scene import random_scene

    root = tmp_path_factory.mktemp("job_inputs")
    world = load_config().world
    rng = np.random.default_rng(0)
    (root / "scenes").mkdir()
    for i in range(6):
        write_png(root / "scenes" / f"scene{i}.png", Renderer(world).render(random_scene(world, rng)))
    return {"scenes": root / "scenes", "judge": make_tiny_qwen_vl(root / "judge")}


def readme_submit_command() -> list[str]:
    """The README's `ray job submit` line, word for word, with only `<head>` filled in later."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"`(ray job submit --address http://<head>:8265 [^`]+)`", text)
    assert m, "the README's cluster section no longer shows the ray job submit command"
    return shlex.split(" ".join(m.group(1).split()))


def cluster_overrides(preset: str, hub: Path, job_inputs: dict, out: Path) -> list[str]:
    """What a CPU machine changes in a paper preset, and nothing else: counts (pools, GPUs,
    batch, updates, steps, samples), sizes (32 px, 9 frames, short prompts), paths (hub, output,
    scenes), a tiny transformers VLM judge in place of the 72B vLLM one, the world proposer for
    the world's scenes (a random VLM writes no parseable task), and no wandb (no network). The
    adapter goes over the collective channel, as ``learner.weight_sync=auto`` sends it where the
    learner holds GPUs (gloo here, NCCL there)."""
    from wmsd_ray.models.tiny_hub import TINY_OVERRIDES

    counts = [f"actors.{pool}.{key}={value}" for pool in ("proposer", "demonstrator", "executor", "judge")
              for key, value in (("count", 1), ("num_cpus", 0.25), ("num_gpus", 0))]
    counts += ["learner.workers=1", "learner.cpus_per_worker=1", "learner.gpus_per_worker=0", "learner.batch_size=2",
               "learner.phase_batch.distill=2", "data.train_scenes=4", "sampling.group_size=2", "sampling.batch_size=2",
               "train.min_buffer=2", f"train.distill_updates={DISTILL_UPDATES}", f"train.rl_updates={RL_UPDATES}",
               "train.demonstrator_samples=2", "train.checkpoint_every=2", "judge.vlm.frames=4",
               "judge.vlm.tensor_parallel=1"]
    if preset != "ltx2_paper.yaml":  # LTX-2's distilled checkpoint keeps its fixed 8-sigma list
        counts.append("model.sample_steps=4")
    text_tokens = next(o for o in TINY_OVERRIDES[TINY_HUB[preset]] if o.startswith("model.max_text_tokens="))
    sizes = ["world.resolution=32", "world.frames=9", text_tokens]
    paths = [f"model.hub={hub}", f"output_dir={out}", f"data.scenes_dir={job_inputs['scenes']}",
             f"judge.vlm.model={job_inputs['judge']}"]
    return [*counts, *sizes, *paths, "judge.backend=transformers", "proposer.backend=world", "logging.wandb=disabled",
            "learner.weight_sync=collective"]


def assert_adapters_went_over_the_collective(run_dir: Path) -> None:
    """The RL learner sent each version over its pair with the Executor, and the Executor loaded them."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    stopped = [r for r in rows if r.get("event") == "stopped" and r.get("phase") == "rl"]
    executor = [r for r in rows if r.get("event") == "executor_stats" and r.get("phase") == "rl"]
    assert stopped and all(r["transport"] == "collective" and r["backend"] == "gloo" for r in stopped), stopped
    assert sum(r["collective_sends"] for r in stopped) >= 1, stopped
    assert executor and executor[-1]["transport"] == ["collective"] and executor[-1]["syncs"] >= 1, executor


def _kill_mid_call(method: str, stop: threading.Event, killed: list) -> None:
    """SIGKILL the first actor process seen inside ``method`` ("Class.method": Ray titles a
    worker ``ray::Class.method`` while it runs one)."""
    while not stop.is_set() and not killed:
        for p in psutil.process_iter(["pid", "cmdline"]):
            title = " ".join(p.info["cmdline"] or [])
            if title.startswith(f"ray::{method}"):
                p.kill()
                killed.append(title)
                return
        time.sleep(0.05)


def submit(ray_head: dict, preset: str, run_name: str, overrides: list[str], kill: str = "") -> subprocess.CompletedProcess:
    cmd = [a.replace("http://<head>:8265", ray_head["address"]) for a in readme_submit_command()]
    cmd = [RAY if a == "ray" else a for a in cmd]
    cmd = [("configs/" + preset if a == "configs/ltx2_paper.yaml" else a) for a in cmd]
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_mid_call, args=(kill, stop, killed), daemon=True)
    if kill:
        killer.start()
    try:
        proc = subprocess.run([*cmd, f"run_name={run_name}", *overrides], cwd=ROOT, env=ray_head["env"],
                              capture_output=True, text=True, timeout=420)
    finally:
        stop.set()
    if kill:
        killer.join(5)
        assert killed, f"no {kill} process was seen inside a call"
    return proc


def test_readme_command_runs_the_ltx2_preset_on_a_token_auth_cluster(ray_head, job_inputs, tiny_hub, tmp_path):
    """The README's command, word for word (only `<head>` filled in), on the LTX-2 preset: the
    job succeeds, and its report measures the workers Ray ran for it, not only its driver."""
    proc = submit(ray_head, "ltx2_paper.yaml", "ltx2",
                  cluster_overrides("ltx2_paper.yaml", tiny_hub(TINY_HUB["ltx2_paper.yaml"]), job_inputs, tmp_path))
    assert proc.returncode == 0 and "succeeded" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-4000:]
    summary = json.loads((tmp_path / "ltx2" / "summary.json").read_text())
    assert summary["phase"] == "done" and summary["updates"] == {"distill": DISTILL_UPDATES, "rl": RL_UPDATES}
    # Joined to a cluster, the driver's own process tree holds none of the actors or learner
    # workers; the job's workers on this node are found through Ray's state API.
    scope = summary["memory_scope"]
    assert scope.startswith("the driver and this job's Ray workers") and "state API failed" not in scope, scope
    processes = int(re.search(r"\((\d+) processes\)", scope).group(1))
    assert processes >= 6, scope  # driver + proposer, Demonstrator, Executor, judge actors + a learner worker
    assert summary["peak_memory_gb"] > 1.0, summary  # six processes that each imported torch
    assert_adapters_went_over_the_collective(tmp_path / "ltx2")


@pytest.mark.parametrize("preset, kill, pool", [("hunyuan15_paper.yaml", "JudgeWorker.score_groups", "judge"),
                                                ("wan22_i2v.yaml", "DemonstratorWorker.rollouts", "demonstrator")])
def test_paper_preset_runs_through_job_submit_and_survives_a_killed_actor(ray_head, job_inputs, tiny_hub, tmp_path,
                                                                          preset, kill, pool):
    """HunyuanVideo-1.5 with its judge actor killed mid-call, Wan2.2 A14B with its Demonstrator
    killed mid-call: the call is retried on the restarted or replaced actor and the job ends
    with every update it was asked for, each applied once."""
    run = preset.split("_")[0]
    proc = submit(ray_head, preset, run, cluster_overrides(preset, tiny_hub(TINY_HUB[preset]), job_inputs, tmp_path),
                  kill=kill)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    summary = json.loads((tmp_path / run / "summary.json").read_text())
    assert summary["phase"] == "done" and summary["updates"] == {"distill": DISTILL_UPDATES, "rl": RL_UPDATES}
    assert summary["counters"][f"{pool}_actor_failures"] >= 1, summary["counters"]
    assert summary["counters"][f"{pool}_retried"] >= 1, summary["counters"]
    final = json.loads((tmp_path / run / "checkpoints" / "rl_end" / "learner" / "learner_state.json").read_text())
    assert final["version"] == final["steps"] == DISTILL_UPDATES + RL_UPDATES, final  # no batch applied twice
    assert_adapters_went_over_the_collective(tmp_path / run)
