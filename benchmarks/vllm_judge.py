"""GPU only: the vLLM judge backend on a tiny random-init Qwen2.5-VL saved to disk.

Builds the model offline, starts a vLLM engine on it, and prints the time of one generate
and one yes/no log-prob read, the judge's verdict source, and a weight reload. Needs
``pip install -e '.[vllm]'`` on a CUDA machine. Usage: python benchmarks/vllm_judge.py [--dir DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from wmsd_ray.config import load_config
from wmsd_ray.vlm.roles import VLMJudge
from wmsd_ray.vlm.tiny import make_tiny_qwen_vl
from wmsd_ray.vlm.vllm_backend import VLLMVLM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    path = make_tiny_qwen_vl(args.dir or tempfile.mkdtemp(), hidden=256, head_dim=64)
    t = time.perf_counter()
    vlm = VLLMVLM(str(path), gpu_memory_utilization=0.3)
    print(f"engine start: {time.perf_counter() - t:.1f} s")
    frames = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(8)]
    for name, fn in (("generate(8 frames, 16 tokens)", lambda: vlm.generate(frames, "Describe.", 16)),
                     ("yes_no_logit(8 frames)", lambda: vlm.yes_no_logit(frames, "Done? Answer yes or no."))):
        fn()
        t = time.perf_counter()
        out = fn()
        print(f"{name}: {1000 * (time.perf_counter() - t):.1f} ms -> {out!r}")
    cfg = load_config(None, ["judge.backend=vllm", f"judge.vlm.model={path}"])
    v = VLMJudge(vlm, cfg, "vllm").judge(np.stack(frames), "[red circle]: go to the centre")
    print(f"verdict source {v.source}, task_reward {v.task_reward:.3f}")
    t = time.perf_counter()
    vlm.reload_weights()
    print(f"reload_weights: {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
