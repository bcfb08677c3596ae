"""Judge throughput: videos/s with the transformers VLM judge scoring one question at a time
(``judge.vlm.batch_size=1``) against whole groups of questions (24), on a tiny random Qwen2.5-VL.

Each video asks three questions (task, agent, consistency) over ``judge.vlm.frames`` frames, so
a batch of 24 questions is eight videos. Usage: python benchmarks/judge_batching.py [--videos 48]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from wmsd_ray.backends import make_judge
from wmsd_ray.config import load_config
from wmsd_ray.vlm.tiny import make_tiny_qwen_vl
from wmsd_ray.world.benchmark import load_benchmark


def videos_per_second(path, videos, tasks, batch: int, frames: int) -> float:
    judge = make_judge(load_config(None, ["judge.backend=transformers", f"judge.vlm.model={path}",
                                          f"judge.vlm.batch_size={batch}", f"judge.vlm.frames={frames}"]))
    judge.judge_batch(videos[:2], tasks[:2])  # warm up
    started = time.perf_counter()
    verdicts = judge.judge_batch(videos, tasks)
    elapsed = time.perf_counter() - started
    assert all(v.source == "transformers:logits" for v in verdicts)
    return len(videos) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=48)
    ap.add_argument("--frames", type=int, default=8)
    args = ap.parse_args()
    cfg = load_config()
    bench = load_benchmark(cfg.world)[: args.videos]
    videos = [np.repeat(t.image[None], cfg.world.frames, axis=0) for t in bench]
    tasks = [t.task for t in bench]
    with tempfile.TemporaryDirectory() as tmp:
        path = make_tiny_qwen_vl(f"{tmp}/tiny-qwen-vl")
        one = videos_per_second(path, videos, tasks, 1, args.frames)
        many = videos_per_second(path, videos, tasks, 24, args.frames)
    print(f"judge videos/s, tiny Qwen2.5-VL, {args.videos} videos x 3 questions x {args.frames} frames: "
          f"batch 1 {one:.2f}, batch 24 {many:.2f}, ratio {many / one:.2f}x")


if __name__ == "__main__":
    main()
