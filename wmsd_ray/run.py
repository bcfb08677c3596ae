"""``python -m wmsd_ray.run``: the main job (single controller).

Stages, in data-flow order: world (scenes -> proposer -> verified TaskSpecs) ->
Demonstrator rollouts -> distillation -> online RL -> evaluation. The world stage
is implemented; the model and training stages arrive with the world-model and
runtime issues, and the job says so when it stops.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .backends import make_judge, make_proposer
from .cli_util import config_parser, exits_cleanly_on_user_error
from .config import Config, dump_yaml, load_config
from .errors import ConfigError
from .records import TaskSpec, write_parquet
from .world.benchmark import benchmark_scene_keys
from .world.render import Renderer
from .world.scene import random_scene
from .world.verify import verify_spec


def _run_dir(cfg: Config) -> Path:
    name = cfg.run_name or time.strftime("run-%Y%m%d-%H%M%S")
    run_dir = Path(cfg.output_dir) / name
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"output folder {run_dir} already holds a run; pick another run_name")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def world_stage(cfg: Config, run_dir: Path) -> dict:
    """Training scenes (never benchmark layouts) -> proposer -> simulator+judge verification."""
    world = cfg.world
    rng = np.random.default_rng([cfg.seed, cfg.data.scene_seed])
    renderer = Renderer(world)
    proposer, judge = make_proposer(cfg), make_judge(cfg)
    exclude = benchmark_scene_keys(world)
    specs: list[TaskSpec] = []
    rejected: Counter = Counter()
    for i in tqdm(range(cfg.data.train_scenes), desc="world: propose", unit="scene", file=sys.stdout):
        scene = random_scene(world, rng, exclude)
        proposal = proposer.propose(renderer.render(scene), f"train-{i:04d}", rng)
        rejected.update(proposal.rejected)
        for spec in proposal.specs:
            # The simulator acts the detailed solution out; the judge confirms it solves the task.
            why = verify_spec(scene, spec, world, renderer, judge)
            if why:
                rejected[why] += 1
            else:
                specs.append(spec)
    write_parquet(run_dir / "tasks.parquet", specs, TaskSpec)
    families = Counter(s.family for s in specs)
    return {
        "scenes": cfg.data.train_scenes, "pairs": len(specs),
        "families": dict(sorted(families.items())), "rejected": dict(sorted(rejected.items())),
    }


def _parser() -> argparse.ArgumentParser:
    ap = config_parser("python -m wmsd_ray.run", __doc__, "world.grid=5 seed=3")
    return ap


@exits_cleanly_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    run_dir = _run_dir(cfg)
    dump_yaml(cfg, run_dir / "config.yaml")
    print(f"wmsd-ray: run folder {run_dir} (resolved config in config.yaml)")
    t0 = time.time()
    summary = {"world": world_stage(cfg, run_dir)}
    summary["seconds"] = round(time.time() - t0, 2)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    w = summary["world"]
    print(f"world stage: {w['pairs']} verified task/solution pairs from {w['scenes']} scenes -> {run_dir / 'tasks.parquet'}")
    print(f"  per family: {w['families']}")
    print(f"  rejected candidates: {w['rejected']}")
    print("Stopping after the world stage: Demonstrator pretraining, distillation and online RL "
          "are not implemented yet (world-model and runtime issues).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
