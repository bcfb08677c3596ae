"""vLLM for real, on the CPU build (``make vllm``): a tiny random Idefics3 saved to disk, served
by a vLLM engine in a Ray actor that runs the vLLM environment's Python, and by ``vllm serve``
on 127.0.0.1 for the HTTP backend. Judge rewards equal the transformers backend's on the same
weights; a weight reload changes them; the proposer writes through the same engine."""
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from wmsd_ray.backends import make_judge
from wmsd_ray.config import load_config
from wmsd_ray.vlm.roles import VLMProposer
from wmsd_ray.vlm.tiny_idefics3 import SPECIAL_TOKENS, make_tiny_idefics3

VLLM_PYTHON = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"
TASKS = ["[red circle]: go to the centre", "[blue square]: go to the top-left corner", "[green triangle]: stay still"]


@pytest.fixture(scope="module")
def vllm_python() -> str:
    assert VLLM_PYTHON.is_file(), "vLLM's CPU environment is missing: run `make vllm` (make test does)"
    return str(VLLM_PYTHON)


@pytest.fixture(scope="module")
def videos(cfg):
    from wmsd_ray.world.benchmark import load_benchmark

    scenes = [t.image for t in load_benchmark(cfg.world)[:3]]
    return [np.stack([np.roll(image, k, axis=1) for k in range(6)]) for image in scenes]  # something moves


def _judge_config(backend: str, model, *extra: str):
    return load_config(None, [f"judge.backend={backend}", f"judge.vlm.model={model}", "judge.vlm.frames=3", *extra])


def _rewards(judge, videos) -> np.ndarray:
    return np.array([v.task_reward for v in judge.judge_batch(videos, TASKS)])


def test_vllm_engine_actor_scores_as_transformers_does_reloads_weights_and_proposes(local_ray, vllm_python, videos,
                                                                                    tmp_path):
    path = make_tiny_idefics3(tmp_path / "idefics3", seed=0)
    engine = ["judge.vlm.engine_gpus=0", "judge.vlm.vllm_dtype=float32", f"judge.vlm.python={vllm_python}"]
    judge = make_judge(_judge_config("vllm", path, *engine))
    verdicts = judge.judge_batch(videos, TASKS)
    assert {v.source for v in verdicts} == {"vllm:logprobs"}
    before = np.array([v.task_reward for v in verdicts])
    reference = _rewards(make_judge(_judge_config("transformers", path)), videos)
    assert np.abs(before - reference).max() <= 1e-3, (before, reference)
    assert np.ptp(before) > 0  # the videos and tasks matter

    make_tiny_idefics3(path, seed=1)  # new weights into the same folder, as a trainer would write them
    judge.vlm.reload_weights()
    after = _rewards(judge, videos)
    assert np.abs(after - before).min() > 1e-3, (before, after)
    assert np.abs(after - _rewards(make_judge(_judge_config("transformers", path)), videos)).max() <= 1e-3

    proposer_cfg = load_config(None, ["proposer.backend=vllm", f"proposer.vlm.model={path}", "proposer.vlm.max_new_tokens=24",
                                      "proposer.pairs_per_image=2", *[e.replace("judge.", "proposer.") for e in engine]])
    # What make_proposer builds for proposer.backend=vllm, on the judge's engine actor (a second
    # engine would only repeat its start; the config switch is tested with transformers).
    proposer = VLMProposer(judge.vlm, proposer_cfg, "vllm")
    proposal = proposer.propose(videos[0][0], "img-0", np.random.default_rng(0))
    # Random weights write no valid JSON: every attempt is parsed and counted, no backend error.
    assert proposal.specs == [] and proposal.rejected["short_of_pairs"] == 2
    assert not any(k.startswith("backend_error") for k in proposal.rejected), proposal.rejected
    assert sum(v for k, v in proposal.rejected.items() if k != "short_of_pairs") == proposer_cfg.proposer.vlm.max_attempts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def vllm_server(vllm_python, tmp_path):
    """``vllm serve`` on 127.0.0.1 (the OpenAI-compatible server users run), whole vocabulary of log-probs."""
    path = make_tiny_idefics3(tmp_path / "served", seed=0)
    port = _free_port()
    log = open(tmp_path / "serve.log", "w")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    # `vllm serve` is vllm.entrypoints.cli.main, which asks for the distribution "vllm" by name and
    # fails under vllm-cpu's; the API server's own entry point is the same server.
    proc = subprocess.Popen([vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(path), "--host", "127.0.0.1",
                             "--port", str(port), "--dtype", "float32", "--enforce-eager", "--max-model-len", "2048",
                             "--max-logprobs", "-1", "--limit-mm-per-prompt", '{"image": 16}'],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            break
        except OSError:
            time.sleep(1)
    try:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        yield path, url + "/v1"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
        log.close()


def test_http_judge_against_vllm_serve_reads_logprobs(vllm_server, videos):
    path, url = vllm_server
    vocabulary = f"judge.vlm.top_logprobs={256 + len(SPECIAL_TOKENS)}"  # the whole tiny vocabulary comes back
    http = make_judge(_judge_config("http", path, f"judge.vlm.base_url={url}", vocabulary))
    verdicts = http.judge_batch(videos, TASKS)
    assert {v.source for v in verdicts} == {"http:logprobs"}, [v.error for v in verdicts]
    reference = _rewards(make_judge(_judge_config("transformers", path)), videos)
    assert np.abs(np.array([v.task_reward for v in verdicts]) - reference).max() <= 1e-3
