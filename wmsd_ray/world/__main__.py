"""``python -m wmsd_ray.world <command>``: check, sample, corpus, propose, judge, make-benchmark."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..cli_util import exits_cleanly_on_user_error
from ..config import load_config
from ..errors import InputError
from ..media import filmstrip, read_image, read_video, to_resolution, write_gif, write_png
from ..records import TaskSpec, write_parquet


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML preset (default: configs/embedded.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted config override, e.g. --set world.grid=5 (repeatable)")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m wmsd_ray.world", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="judge ground-truth, mismatched and faulty videos; print one JSON line")
    _add_config_args(p)
    p = sub.add_parser("sample", help="render example scenes, tasks and solution videos to look at")
    _add_config_args(p)
    p.add_argument("--out", default="outputs/world-samples")
    p.add_argument("--n", type=int, default=4, help="number of scenes")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("corpus", help="write the Demonstrator's caption corpus to parquet")
    _add_config_args(p)
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("propose", help="propose tasks for scene images; write TaskSpecs to parquet")
    _add_config_args(p)
    p.add_argument("images", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("judge", help="judge a video file (GIF/MP4, enlarged or not) against a task")
    _add_config_args(p)
    p.add_argument("video")
    p.add_argument("--task", required=True)
    p = sub.add_parser("make-benchmark", help="regenerate the committed WorldTasks-mini benchmark file")
    _add_config_args(p)
    p.add_argument("--out", default=None)
    return ap


def cmd_check(cfg, args) -> int:
    from .check import run_check

    result = run_check(cfg)
    print(json.dumps(result, sort_keys=True))
    return 0 if result["pass"] else 1


def cmd_sample(cfg, args) -> int:
    from .captions import simulate_caption
    from .proposer import WorldProposer
    from .render import Renderer
    from .scene import random_scene

    rng = np.random.default_rng(args.seed)
    renderer, proposer = Renderer(cfg.world), WorldProposer(cfg.world, cfg.proposer)
    out = Path(args.out)
    lines = ["# WorldTasks-mini samples", ""]
    for i in range(args.n):
        scene = random_scene(cfg.world, rng)
        image = renderer.render(scene)
        write_png(out / f"scene{i}.png", image, scale=8)
        lines += [f"## scene{i}", f"![scene{i}](scene{i}.png)", ""]
        for spec in proposer.propose(image, f"sample{i}", rng).specs[:3]:
            agent, path = simulate_caption(scene, spec.solution, cfg.world.frames)
            video = renderer.render_path(scene, agent, path)
            write_gif(out / f"{spec.task_id}.gif", video)
            write_png(out / f"{spec.task_id}.png", filmstrip(video), scale=4)
            lines += [f"- `{spec.task}` ({spec.family})", f"  - solution: {spec.solution}",
                      f"  - ![{spec.task_id}]({spec.task_id}.png) ([gif]({spec.task_id}.gif))"]
        lines.append("")
    (out / "index.md").write_text("\n".join(lines))
    print(f"wrote {args.n} scenes with tasks and solution GIFs to {out}/index.md")
    return 0


def cmd_corpus(cfg, args) -> int:
    from .benchmark import benchmark_scene_keys
    from .corpus import write_corpus

    write_corpus(args.out, cfg.world, args.n, args.seed, benchmark_scene_keys(cfg.world))
    print(f"wrote {args.n} captioned videos to {args.out}")
    return 0


def cmd_propose(cfg, args) -> int:
    from ..backends import make_proposer

    images = [read_image(p, cfg.world.resolution) for p in args.images]  # all checked before any output
    proposer = make_proposer(cfg)
    rng = np.random.default_rng(args.seed)
    specs: list[TaskSpec] = []
    skipped = 0
    for path, image in zip(args.images, images):
        proposal = proposer.propose(image, Path(path).stem, rng)
        if not proposal.specs:
            skipped += 1
            print(f"skipped {path}: {dict(proposal.rejected)}", file=sys.stderr)
        specs += proposal.specs
    write_parquet(args.out, specs, TaskSpec)
    print(f"wrote {len(specs)} task/solution pairs for {len(images) - skipped} of {len(images)} images to {args.out}")
    return 0


def cmd_judge(cfg, args) -> int:
    from ..backends import make_judge

    frames = read_video(args.video)
    try:
        frames = to_resolution(frames, cfg.world.resolution)  # undo the enlargement of our exports
    except InputError as e:
        raise InputError(f"{args.video}: {e} (world.resolution)") from None
    v = make_judge(cfg).judge(frames, args.task)
    print(json.dumps({"task": v.task, "agent": v.agent, "consistency": v.consistency,
                      "task_reward": round(v.task_reward, 4), "p_yes": round(v.p_yes, 4), "error": v.error}))
    return 0 if v.ok else 1


def cmd_make_benchmark(cfg, args) -> int:
    from .benchmark import BENCHMARK_PATH, make_benchmark, save_benchmark

    tasks = make_benchmark(cfg.world)
    path = Path(args.out) if args.out else BENCHMARK_PATH
    save_benchmark(tasks, cfg.world, path)
    print(f"wrote {len(tasks)} benchmark tasks on {len({t.scene_id for t in tasks})} scenes to {path}")
    return 0


COMMANDS = {"check": cmd_check, "sample": cmd_sample, "corpus": cmd_corpus, "propose": cmd_propose,
            "judge": cmd_judge, "make-benchmark": cmd_make_benchmark}


@exits_cleanly_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    return COMMANDS[args.command](cfg, args)


if __name__ == "__main__":
    sys.exit(main())
