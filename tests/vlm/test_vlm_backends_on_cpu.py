"""VLM backends on a tiny random-init Qwen2.5-VL saved to disk: transformers in-process, and
HTTP against a real local OpenAI-compatible server (plus timeouts, drops, malformed replies)."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from wmsd_ray.backends import make_judge, make_proposer
from wmsd_ray.config import load_config
from wmsd_ray.vlm import transformers_backend
from wmsd_ray.vlm.http_backend import HTTPBackendError, OpenAIVLM
from wmsd_ray.vlm.prompts import judge_questions
from wmsd_ray.vlm.roles import VLMJudge, VLMProposer
from wmsd_ray.vlm.serve import make_server
from wmsd_ray.vlm.shared_frames import shared_frames_logits
from wmsd_ray.vlm.tiny import make_tiny_qwen_vl
from wmsd_ray.vlm.tiny_idefics3 import make_tiny_idefics3
from wmsd_ray.vlm.transformers_backend import TransformersVLM


@pytest.fixture(scope="module")
def tiny_vlm_path(tmp_path_factory):
    return make_tiny_qwen_vl(tmp_path_factory.mktemp("tiny-qwen-vl"))


@pytest.fixture(scope="module")
def tiny_vlm(tiny_vlm_path):
    return TransformersVLM(str(tiny_vlm_path))


@pytest.fixture(scope="module")
def scene_image(cfg):
    from wmsd_ray.world.benchmark import load_benchmark

    return load_benchmark(cfg.world)[0].image


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_transformers_backend_generates_and_scores(family, tmp_path, scene_image):
    tiny_vlm = TransformersVLM(str(make_tiny_qwen_vl(tmp_path / family, family=family)))
    assert tiny_vlm.model.config.model_type == family
    a = tiny_vlm.generate([scene_image], "Describe the image.", max_new_tokens=12)
    b = tiny_vlm.generate([scene_image], "Describe the image.", max_new_tokens=12)
    assert isinstance(a, str) and a == b  # greedy is deterministic
    r = tiny_vlm.yes_no_logit([scene_image, scene_image], "Is it done? Answer yes or no.")
    assert np.isfinite(r)
    assert tiny_vlm.yes_no_logit([scene_image], "Is it red? Answer yes or no.") != r  # the input matters


def test_backends_switch_by_config_alone(tiny_vlm_path, scene_image):
    cfg = load_config(None, ["proposer.backend=transformers", f"proposer.vlm.model={tiny_vlm_path}",
                             "proposer.vlm.max_new_tokens=24", "proposer.pairs_per_image=2",
                             "judge.backend=transformers", f"judge.vlm.model={tiny_vlm_path}", "judge.vlm.frames=3"])
    proposer, judge = make_proposer(cfg), make_judge(cfg)
    assert isinstance(proposer, VLMProposer) and isinstance(judge, VLMJudge)
    proposal = proposer.propose(scene_image, "img-0", np.random.default_rng(0))
    # Random weights write no valid JSON: every attempt is counted, the shortfall too, nothing crashes.
    assert proposal.specs == [] and proposal.rejected["short_of_pairs"] == 2
    assert sum(v for k, v in proposal.rejected.items() if k != "short_of_pairs") == cfg.proposer.vlm.max_attempts
    video = np.repeat(scene_image[None], 9, axis=0)
    verdicts = judge.judge_batch([video, video], ["[red circle]: go to the centre"] * 2)
    assert [v.source for v in verdicts] == ["transformers:logits"] * 2
    assert verdicts[0].task_reward == verdicts[1].task_reward and np.isfinite(verdicts[0].task_reward)
    assert 0 < verdicts[0].p_yes < 1


def test_missing_vlm_model_is_a_config_error():
    from wmsd_ray.errors import ConfigError

    with pytest.raises(ConfigError, match="judge.backend=http needs judge.vlm.model"):
        load_config(None, ["judge.backend=http"])


@pytest.fixture(scope="module")
def served(tiny_vlm):
    server = make_server(tiny_vlm, "tiny", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_batched_scores_equal_one_at_a_time(tiny_vlm, scene_image):
    """One left-padded forward pass over prompts of different lengths and image counts."""
    other = scene_image[::-1].copy()
    requests = [([scene_image], "Is it done? Answer yes or no."), ([scene_image, other], "Red?"),
                ([other, other, scene_image], "Did the red circle reach the top-left corner of the board?")]
    batched = tiny_vlm.yes_no_logits(requests)
    single = [tiny_vlm.yes_no_logit(images, prompt) for images, prompt in requests]
    assert np.allclose(batched, single, atol=1e-4) and len(set(np.round(single, 4))) == 3


def test_http_judge_scores_from_server_logprobs(served, tiny_vlm, scene_image):
    client = OpenAIVLM(served, "tiny", timeout_s=30, retries=0)
    prompt = "Describe the image."
    assert client.generate([scene_image], prompt, 12) == tiny_vlm.generate([scene_image], prompt, 12)
    video = np.repeat(scene_image[None], 9, axis=0)
    task = "[red circle]: go to the centre"
    base = ["judge.vlm.frames=2", "judge.vlm.top_logprobs=400"]  # the whole tiny vocabulary comes back
    http = make_judge(load_config(None, ["judge.backend=http", "judge.vlm.model=tiny", f"judge.vlm.base_url={served}", *base]))
    local = make_judge(load_config(None, ["judge.backend=transformers", f"judge.vlm.model={tiny_vlm.path}", *base]))
    v_http, v_local = http.judge(video, task), local.judge(video, task)
    assert v_http.source == "http:logprobs" and v_local.source == "transformers:logits"
    assert abs(v_http.task_reward - v_local.task_reward) <= 1e-3


class _NoLogprobs(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that ignores ``logprobs`` and answers in words."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Yes."}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_http_judge_falls_back_to_labelled_text_without_logprobs(scene_image):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoLogprobs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        judge = make_judge(load_config(None, ["judge.backend=http", "judge.vlm.model=m", f"judge.vlm.base_url={url}"]))
        v = judge.judge(np.repeat(scene_image[None], 9, axis=0), "[red circle]: go to the centre")
        assert v.source == "http:text" and v.task and v.task_reward == judge.cfg.judge.vlm.text_reward
    finally:
        server.shutdown()


def test_http_concurrency_is_capped(served, scene_image):
    client = OpenAIVLM(served, "tiny", timeout_s=30, retries=0, concurrency=2)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda i: client.generate([scene_image], f"Say {i}.", 4), range(6)))
    assert len(replies) == 6 and client.stats["requests"] == 6


class _Faulty(BaseHTTPRequestHandler):
    mode = "slow"
    calls = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "slow":
            time.sleep(1.0)
        if self.mode == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = {"garbage": b"not json", "no_choices": json.dumps({"id": 1}).encode(),
                "server_error": b"{}", "slow": b"{}"}[self.mode]
        self.send_response(500 if self.mode == "server_error" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("mode, match", [("slow", "timed out|TimeoutError|timeout"), ("drop", "Disconnected|closed|reset"),
                                         ("garbage", "malformed JSON"), ("server_error", "HTTP 500"),
                                         ("no_choices", "no choices")])
def test_http_faults_are_clear_errors_after_bounded_retries(mode, match, scene_image):
    handler = type("H", (_Faulty,), {"mode": mode, "calls": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = OpenAIVLM(f"http://127.0.0.1:{server.server_address[1]}/v1", "m", timeout_s=0.3, retries=2, backoff_s=0.01)
        with pytest.raises(HTTPBackendError, match=match):
            client.generate([scene_image], "hi", 4)
        expected_calls = 1 if mode == "no_choices" else 3  # a well-formed reply without choices is not retried
        assert handler.calls == expected_calls
        # The proposer survives a dead backend: counted, not crashed.
        cfg = load_config(None, ["proposer.backend=http", "proposer.vlm.model=m", "proposer.pairs_per_image=1",
                                 "proposer.vlm.max_attempts=1"])
        proposal = VLMProposer(client, cfg, "http").propose(scene_image, "s", np.random.default_rng(0))
        assert proposal.specs == [] and proposal.rejected["backend_error:HTTPBackendError"] == 1
    finally:
        server.shutdown()


def _judge_requests(scene_image):
    """A judge's batch: three questions about each of three videos (frame counts 2, 2, 3)."""
    other = scene_image[::-1].copy()
    videos = [[scene_image, other], [other, other], [scene_image, other, scene_image]]
    return [(frames, q) for frames in videos for q in judge_questions("[red circle]: go to the centre").values()]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "idefics3"])
def test_questions_about_the_same_frames_share_one_encoding(family, tmp_path, scene_image):
    path = make_tiny_idefics3(tmp_path / family) if family == "idefics3" else make_tiny_qwen_vl(tmp_path / family, family=family)
    vlm = TransformersVLM(str(path))
    requests = _judge_requests(scene_image)
    by_video = [requests[:6], requests[6:]]  # frames of one length per batch: the prefixes align
    texts = [vlm._render(images, prompt) for images, prompt in by_video[0]]
    assert shared_frames_logits(vlm.processor, vlm.model, vlm.device, texts, by_video[0]) is not None
    distinct = [requests[0], requests[3]]  # no frames in common: nothing to share
    assert shared_frames_logits(vlm.processor, vlm.model, vlm.device,
                                [vlm._render(*r) for r in distinct], distinct) is None
    shared = [r for batch in by_video for r in vlm.yes_no_logits(batch)]
    assert vlm.share_frames is True  # checked against whole prompts on the first batch
    single = [vlm.yes_no_logit(images, prompt) for images, prompt in requests]
    assert np.allclose(shared, single, atol=1e-4) and len(set(np.round(single, 4))) > 3
    mixed = vlm.yes_no_logits(requests)  # prefixes of different lengths: whole prompts
    assert np.allclose(mixed, single, atol=1e-4)


def test_shared_frames_that_fail_their_check_fall_back_to_whole_prompts(tiny_vlm_path, scene_image, monkeypatch, caplog):
    vlm = TransformersVLM(str(tiny_vlm_path))
    monkeypatch.setitem(transformers_backend.SHARED_FRAMES_TOLERANCE, "float32", -1.0)  # no gap passes
    requests = _judge_requests(scene_image)[:6]
    scores = vlm.yes_no_logits(requests)
    assert vlm.share_frames is False and "scoring whole prompts" in caplog.text
    off = TransformersVLM(str(tiny_vlm_path), share_frames=False)
    assert np.allclose(scores, off.yes_no_logits(requests), atol=1e-6)
