"""Perception's background estimate on generated frames, against the renderer's background.

The world judge unmixes each cell against the background colour, so a wrong background
miscolours objects. This samples the packaged Demonstrator on the benchmark tasks with the
short task (its messy frames: smears, half-drawn objects) and with the detailed solution
(clean samples), renders the ground-truth videos, and prints for each set:
- the share of frames whose background estimate is off by more than 0.05 (L-inf over RGB) from
  the renderer's background, for the frame median (perception before 2026-12-02) and for the
  per-cell estimate in use (a frame counts as off if any of its cells is);
- how many Task / Agent / Consistency verdicts of the world judge change between the judge
  before (frame median, any detection confidence) and now (border rings, ``judge.min_confidence``).
Videos are cached in --cache, so a second run only re-judges.
Usage: python benchmarks/perception_background.py [--tasks 200] [--cache outputs/perception-bg.npz]
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from wmsd_ray.config import load_config
from wmsd_ray.evaluation import prompts_for
from wmsd_ray.world.benchmark import load_benchmark
from wmsd_ray.world.captions import simulate_caption
from wmsd_ray.world.judge import WorldJudge
from wmsd_ray.world.perception import Perception
from wmsd_ray.world.render import BACKGROUND, Renderer
from wmsd_ray.world.scene import Scene


class FrameMedianPerception(Perception):
    """The estimate perception used before: one background per frame, its median pixel."""

    def background(self, x: np.ndarray) -> np.ndarray:
        return np.median(x.reshape(len(x), -1, 3), axis=1)


def videos(cfg, tasks, cache: Path) -> dict[str, np.ndarray]:
    if cache.is_file():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    from wmsd_ray.models import build_backbone
    from wmsd_ray.models.sampling import generate

    renderer = Renderer(cfg.world)
    truth = []
    for t in tasks:
        scene = Scene.from_json(t.scene_json)
        agent, path = simulate_caption(scene, t.solution, cfg.world.frames)
        truth.append(renderer.render_path(scene, agent, path))
    backbone = build_backbone(cfg.model, cfg.world)
    backbone.eval()
    images = np.stack([t.image for t in tasks])
    out = {"ground truth": np.stack(truth)}
    for prompt, label in (("task", "short task"), ("solution", "detailed solution")):
        out[label] = generate(backbone, images, prompts_for(tasks, prompt), cfg.eval.seed, cfg.sampling.batch_size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **out)
    return out


def share_off(perception: Perception, vids: np.ndarray, tol: float = 0.05) -> float:
    frames = vids.reshape(-1, *vids.shape[2:]).astype(np.float32) / 255.0
    err = np.concatenate([np.abs(perception.background(frames[i:i + 256]) - np.array(BACKGROUND)).max(-1)
                          for i in range(0, len(frames), 256)])  # (frames,)
    return float((err > tol).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--cache", type=Path, default=Path("outputs/perception-bg.npz"))
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    cfg = load_config(None, args.overrides)
    tasks = load_benchmark(cfg.world)[: args.tasks]
    sets = videos(cfg, tasks, args.cache)
    before = WorldJudge(cfg.world, replace(cfg.judge, min_confidence=0.0))  # the judge before 2026-12-02
    before.perception = FrameMedianPerception(cfg.world)
    after = WorldJudge(cfg.world, cfg.judge)
    print("| videos | frames off > 0.05: frame median | border rings (now) | Task before -> now | Agent | Consistency "
          "| verdicts changed (Task / Agent / Consistency) |\n|---|---|---|---|---|---|---|")
    for label, vids in sets.items():
        off_before, off_now = share_off(before.perception, vids), share_off(after.perception, vids)
        vb = before.judge_batch(list(vids), [t.task for t in tasks])
        va = after.judge_batch(list(vids), [t.task for t in tasks])
        rate = lambda vs, k: np.mean([getattr(v, k) for v in vs])  # noqa: E731
        changed = [sum(getattr(a, k) != getattr(b, k) for a, b in zip(va, vb)) for k in ("task", "agent", "consistency")]
        print(f"| {label} ({len(vids)}) | {off_before:.1%} | {off_now:.1%} | {rate(vb, 'task'):.3f} -> "
              f"{rate(va, 'task'):.3f} | {rate(vb, 'agent'):.3f} -> {rate(va, 'agent'):.3f} | "
              f"{rate(vb, 'consistency'):.3f} -> {rate(va, 'consistency'):.3f} | {' / '.join(map(str, changed))} |")


if __name__ == "__main__":
    main()
