"""Pretraining: deterministic data stream, LR schedule, exact resume after SIGKILL."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from conftest import TINY_MODEL, tiny_config

from wmsd_ray.pretrain import corpus_batch, lr_at, pretrain
from wmsd_ray.world.benchmark import benchmark_scene_keys

ROOT = Path(__file__).resolve().parents[2]
FAST = ["pretrain.batch_size=4", "pretrain.warmup=2", "pretrain.decay_start=1.0", "pretrain.eval_every=100000",
        "pretrain.eval_videos=2", "eval.tasks=2", "pretrain.threads=1", "model.layers=1"]


def test_corpus_batches_are_a_function_of_the_step_and_avoid_benchmark_layouts(cfg):
    exclude = benchmark_scene_keys(cfg.world)
    a, caps_a = corpus_batch(cfg, 5, exclude)
    b, caps_b = corpus_batch(cfg, 5, exclude)
    c, _ = corpus_batch(cfg, 6, exclude)
    assert np.array_equal(a, b) and caps_a == caps_b and not np.array_equal(a, c)
    assert a.shape == (cfg.pretrain.batch_size, cfg.world.frames, 32, 32, 3)


def test_lr_schedule_warms_up_holds_then_decays(cfg):
    pc = cfg.pretrain
    assert lr_at(0, pc) < lr_at(pc.warmup - 1, pc) == pc.lr
    assert lr_at(int(pc.decay_start * pc.steps), pc) == pc.lr
    assert lr_at(pc.steps, pc) == pc.lr * pc.min_lr_fraction


def _weights(out: Path) -> dict:
    return torch.load(out / "state.pt", weights_only=False)["model"]


def test_resume_after_sigkill_is_exact(tmp_path):
    steps = 40
    straight = tiny_config(*FAST, f"pretrain.steps={steps}", f"pretrain.output={tmp_path / 'a'}",
                           "pretrain.checkpoint_every=100")
    pretrain(straight)
    killed = tmp_path / "b"
    args = [sys.executable, "-m", "wmsd_ray.pretrain", *TINY_MODEL, *FAST, "pretrain.steps=100000",
            "pretrain.checkpoint_every=5", f"pretrain.output={killed}"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not (killed / "state.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at = torch.load(killed / "state.pt", weights_only=False)["step"]
    assert 0 < at < steps, f"killed at step {at}; the test needs a kill mid-run"
    resumed = tiny_config(*FAST, f"pretrain.steps={steps}", f"pretrain.output={killed}", "pretrain.checkpoint_every=5")
    pretrain(resumed, resume=True)
    a, b = _weights(tmp_path / "a"), _weights(killed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (killed / "demonstrator" / "model.yaml").is_file()
    assert (killed / "scores.json").is_file()

    # Continued pretraining (pretrain.init) starts from the saved Demonstrator, not random init.
    cont = tiny_config(*FAST, "pretrain.steps=1", "pretrain.lr=1e-12", f"pretrain.output={tmp_path / 'c'}",
                       f"pretrain.init={killed / 'demonstrator'}")
    pretrain(cont)
    from wmsd_ray.models import build_backbone
    saved = build_backbone(tiny_config(f"model.checkpoint={killed / 'demonstrator'}", "model.layers=1").model,
                           cont.world).transformer.state_dict()
    c = _weights(tmp_path / "c")
    assert all(torch.allclose(c[k], saved[k], atol=1e-6) for k in saved)
