"""How fast the world runs on this machine: rendering, judging, proposing, corpus.

The judge and proposer sit on the RL hot path (every sampled video is judged), so
their cost per video must stay far below a diffusion sample's (~0.1 s on CPU).

    python benchmarks/world_throughput.py
"""
from __future__ import annotations

import json
import time

import numpy as np

from wmsd_ray.config import load_config
from wmsd_ray.world.corpus import iter_corpus
from wmsd_ray.world.corrupt import degrade
from wmsd_ray.world.judge import WorldJudge
from wmsd_ray.world.proposer import WorldProposer
from wmsd_ray.world.render import Renderer
from wmsd_ray.world.scene import random_scene


def rate(fn, n: int) -> float:
    fn(max(1, n // 10))  # warm-up: a fresh process runs slowly for about a second
    t = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - t)


def main() -> None:
    cfg = load_config()
    world = cfg.world
    rng = np.random.default_rng(0)
    renderer, judge, proposer = Renderer(world), WorldJudge(world), WorldProposer(world)
    stream = iter_corpus(world, seed=0)
    items = [next(stream) for _ in range(512)]
    videos = [degrade(x.frames, 0.1, 1.0, rng) for x in items]
    tasks = ["[red circle]: go to the top-left corner"] * len(videos)
    images = [renderer.render(random_scene(world, rng)) for _ in range(64)]
    figures = {
        "corpus_videos_per_s": rate(lambda n: [next(stream) for _ in range(n)], 2000),
        "judge_videos_per_s_batched": rate(lambda n: judge.judge_batch(videos[:n], tasks[:n]), 512),
        "judge_videos_per_s_single": rate(lambda n: [judge.judge(v, t) for v, t in zip(videos[:n], tasks[:n])], 256),
        "proposer_images_per_s": rate(lambda n: [proposer.propose(images[i % 64], "b", rng) for i in range(n)], 64),
    }
    print(json.dumps({k: round(v, 1) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
