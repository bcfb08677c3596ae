"""The vLLM judge backend on a tiny random-init Idefics3 saved to disk, through its Ray engine actor.

Prints the engine's start with a first generate, one yes/no read, the verdict source, a weight
reload, and judge videos/s with one question per engine call against 24. On a CPU machine the
engine actor runs vLLM's CPU build from ``make vllm`` (``--python``, default .venv-vllm/bin/python);
on a GPU machine ``--gpus 1`` with vLLM installed here (``pip install -e '.[vllm]'``).
Usage: python benchmarks/vllm_judge.py [--videos 48] [--gpus 0] [--python PATH]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

from wmsd_ray.backends import make_judge
from wmsd_ray.config import load_config
from wmsd_ray.vlm.tiny_idefics3 import make_tiny_idefics3
from wmsd_ray.world.benchmark import load_benchmark

DEFAULT_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"


def timed(label: str, fn):
    started = time.perf_counter()
    out = fn()
    print(f"{label}: {time.perf_counter() - started:.2f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=48)
    ap.add_argument("--gpus", type=float, default=0.0)
    ap.add_argument("--python", default=str(DEFAULT_PYTHON) if DEFAULT_PYTHON.is_file() else "")
    args = ap.parse_args()
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    world = load_config().world
    bench = load_benchmark(world)[: args.videos]
    videos, tasks = [np.repeat(t.image[None], world.frames, axis=0) for t in bench], [t.task for t in bench]
    with tempfile.TemporaryDirectory() as tmp:
        path = make_tiny_idefics3(f"{tmp}/idefics3")
        base = ["judge.backend=vllm", f"judge.vlm.model={path}", f"judge.vlm.engine_gpus={args.gpus}",
                f"judge.vlm.python={args.python}", "judge.vlm.frames=8"]
        judge = make_judge(load_config(None, base))  # the engine starts inside its first call
        vlm, frames = judge.vlm, list(videos[0][:8])
        timed("engine start + first generate (8 frames, 16 tokens)", lambda: vlm.generate(frames, "Describe.", 16))
        timed("yes/no log-probs (8 frames)", lambda: vlm.yes_no_logit(frames, "Done? Answer yes or no."))
        print(f"verdict source: {judge.judge(videos[0], tasks[0]).source}")
        timed("reload_weights", vlm.reload_weights)
        rates = {}
        for batch in (1, 24):
            judge.cfg = load_config(None, base + [f"judge.vlm.batch_size={batch}"])
            vlm.reload_weights()  # empties the engine's caches: neither run reuses the other's
            started = time.perf_counter()
            verdicts = judge.judge_batch(videos, tasks)
            rates[batch] = len(videos) / (time.perf_counter() - started)
            assert all(v.source == "vllm:logprobs" for v in verdicts)
    print(f"vLLM judge videos/s, {len(videos)} videos x 3 questions x 8 frames: batch 1 {rates[1]:.2f}, "
          f"batch 24 {rates[24]:.2f}, ratio {rates[24] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
