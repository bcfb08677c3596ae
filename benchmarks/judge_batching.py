"""Judge throughput: videos/s with the transformers VLM judge scoring one question at a time
(``judge.vlm.batch_size=1``) against whole groups of questions (24), on a tiny random Qwen2.5-VL.

The videos are the benchmark tasks' solutions, rendered. Each video asks three questions
(task, agent, consistency) over ``judge.vlm.frames`` frames, so a batch of 24 questions is eight
videos. Each figure is the median of ``--repeats`` passes over
the videos, at ``--threads`` torch threads (1, as the judge actor runs). With ``--frame-size``
and ``--image-tokens`` the frames are upscaled and may cost as many tokens as a real judge's
(64 tokens per frame: ``--frame-size 224 --image-tokens 64``); the default is the tests' tiny
model on the world's 32 px frames (one token per frame), where the questions' own byte-level
tokens are most of the work.
Usage: python benchmarks/judge_batching.py [--videos 48] [--repeats 5] [--threads 1]
       [--frame-size 224 --image-tokens 64]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from wmsd_ray.backends import make_judge
from wmsd_ray.config import load_config
from wmsd_ray.vlm.tiny import make_tiny_qwen_vl
from wmsd_ray.world.benchmark import load_benchmark
from wmsd_ray.world.captions import simulate_caption
from wmsd_ray.world.render import Renderer
from wmsd_ray.world.scene import Scene


def videos_per_second(path, videos, tasks, batch: int, frames: int, repeats: int, share: bool) -> float:
    judge = make_judge(load_config(None, ["judge.backend=transformers", f"judge.vlm.model={path}",
                                          f"judge.vlm.batch_size={batch}", f"judge.vlm.frames={frames}",
                                          f"judge.vlm.share_frames={str(share).lower()}"]))
    judge.judge_batch(videos[:2], tasks[:2])  # warm up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        verdicts = judge.judge_batch(videos, tasks)
        rates.append(len(videos) / (time.perf_counter() - started))
        assert all(v.source == "transformers:logits" for v in verdicts)
    return float(np.median(rates))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=48)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frame-size", type=int, default=0, help="upscale frames to this many pixels a side")
    ap.add_argument("--image-tokens", type=int, default=4, help="the tiny VLM's most tokens per image")
    ap.add_argument("--no-share-frames", action="store_true", help="batch 24 as whole prompts (judge.vlm.share_frames=false)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config()
    bench = load_benchmark(cfg.world)[: args.videos]
    renderer = Renderer(cfg.world)  # each task's own video: its detailed solution, rendered
    videos = [renderer.render_path(scene, *simulate_caption(scene, t.solution, cfg.world.frames))
              for t in bench for scene in [Scene.from_json(t.scene_json)]]
    if args.frame_size:
        k = -(-args.frame_size // videos[0].shape[1])
        videos = [v.repeat(k, axis=1).repeat(k, axis=2)[:, :args.frame_size, :args.frame_size] for v in videos]
    tasks = [t.task for t in bench]
    with tempfile.TemporaryDirectory() as tmp:
        path = make_tiny_qwen_vl(f"{tmp}/tiny-qwen-vl", image_tokens=args.image_tokens)
        one = videos_per_second(path, videos, tasks, 1, args.frames, args.repeats, True)
        many = videos_per_second(path, videos, tasks, 24, args.frames, args.repeats, not args.no_share_frames)
    size = videos[0].shape[1]
    print(f"judge videos/s, tiny Qwen2.5-VL, {args.videos} videos x 3 questions x {args.frames} frames of {size} px "
          f"(at most {args.image_tokens} tokens each){', whole prompts' if args.no_share_frames else ''}: "
          f"{args.threads} thread(s), median of {args.repeats}: batch 1 {one:.2f}, batch 24 {many:.2f}, ratio {many / one:.2f}x")


if __name__ == "__main__":
    main()
