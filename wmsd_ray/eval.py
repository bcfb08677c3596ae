"""``python -m wmsd_ray.eval``: sample models on a benchmark, judge them, write a report.

Benchmarks: ``worldtasks-mini`` (the 200 shipped tasks), ``worldtasks`` (a WorldTasks-format
folder, ``--data``), ``dreamgen`` (a folder of already generated videos, ``--data``; no
sampling). The judge is ``judge.backend`` (world, transformers, vllm, http), set by config.
Conditioning is the detailed solution (``--prompt solution``, the Demonstrator's native
input), the short task (``--prompt task``) or the task's goal as an outcome caption
(``--prompt outcome``); ``--prompt solution,task,outcome`` scores them as
rows. Writes ``scores.json`` (Task, Agent, Consistency, Avg, n, 95% intervals, held-out
split, per family), ``report.md`` with ``scores.png`` (bar chart) and ``samples.gif``
(one column per row of the report, the same tasks side by side).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .backends import make_judge, make_vlm
from .cli_util import config_parser, exits_cleanly_on_user_error
from .config import Config, dump_yaml, load_config
from .datasets import load_worldtasks_folder
from .dreamgen import WorldDreamGenAnswerer, evaluate_folder
from .errors import InputError
from .evaluation import sample_and_score, summary_line
from .media import grid_of, write_gif
from .models import Backbone, build_backbone
from .models.lora import add_lora, load_lora
from .records import TaskSpec
from .report import bar_chart, markdown
from .vlm.roles import VLMDreamGenAnswerer
from .world.benchmark import load_benchmark


def evaluate(cfg: Config, backbone: Backbone, prompt: str, tasks: list[TaskSpec] | None = None,
             judge=None, label: str = "") -> tuple[dict, np.ndarray]:
    """Sample tasks (default: the first ``eval.tasks`` benchmark tasks) with one prompt kind and score them."""
    tasks = tasks if tasks is not None else load_benchmark(cfg.world)[: cfg.eval.tasks]
    scores, videos = sample_and_score(backbone, tasks, prompt, judge or make_judge(cfg), cfg.eval.seed,
                                      cfg.sampling.batch_size)
    scores.update({"model": label, "sample_steps": cfg.model.sample_steps})
    return scores, videos


def write_report(out: Path, title: str, results: dict[str, dict], videos: dict[str, np.ndarray], k: int,
                 notes: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(json.dumps(results, indent=2))
    bar_chart(results, out / "scores.png")
    k = min(k, *(len(v) for v in videos.values()))
    rows = [grid_of([videos[name][i] for name in videos], cols=len(videos), pad=2) for i in range(k)]
    write_gif(out / "samples.gif", np.concatenate(rows, axis=1), scale=3)
    (out / "report.md").write_text(markdown(title, results, "scores.png", "samples.gif", notes))


def _dreamgen(cfg: Config, args) -> int:
    if cfg.judge.backend == "world":
        answerer = WorldDreamGenAnswerer(make_judge(cfg), cfg.world.resolution)
    else:
        answerer = VLMDreamGenAnswerer(make_vlm(cfg.judge.backend, cfg.judge.vlm))
    result = evaluate_folder(args.data, answerer, zero_shot=args.zero_shot)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dreamgen.json").write_text(json.dumps(result, indent=2))
    a = result["aggregate"]
    print(f"dreamgen ({cfg.judge.backend} judge, zero_shot={a['zero_shot']}): {a['n_scored']}/{a['n_videos']} videos scored, "
          f"instruction following {a['instruction_following']:.3f}, physical alignment {a['physical_alignment']:.3f}, "
          f"skipped/unparsed {a['counts']}")
    print(f"wrote {out / 'dreamgen.json'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = config_parser("python -m wmsd_ray.eval", __doc__, "eval.tasks=50")
    ap.add_argument("--benchmark", choices=["worldtasks-mini", "worldtasks", "dreamgen"], default="worldtasks-mini")
    ap.add_argument("--data", help="the folder for --benchmark worldtasks or dreamgen")
    ap.add_argument("--zero-shot", action=argparse.BooleanOptionalAction, default=False,
                    help="dreamgen: the videos are the zero-shot split (recorded in every result)")
    ap.add_argument("--prompt", help="solution, task, outcome, or several comma-separated (default: eval.prompt)")
    ap.add_argument("--checkpoint", help="model folder (default: model.checkpoint; 'packaged' = shipped Demonstrator)")
    ap.add_argument("--lora", help="a diffusers-format LoRA folder to apply (an Executor)")
    ap.add_argument("--out", default="outputs/eval", help="where scores.json and samples.gif go")
    return ap


@exits_cleanly_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.benchmark != "worldtasks-mini" and not args.data:
        raise InputError(f"--benchmark {args.benchmark} needs --data FOLDER")
    if args.benchmark == "dreamgen":
        dump_yaml(cfg, out / "config.yaml")
        return _dreamgen(cfg, args)
    prompts = (args.prompt or cfg.eval.prompt).split(",")
    bad = [p for p in prompts if p not in ("solution", "task", "outcome")]
    if bad:
        raise InputError(f"--prompt: unknown kind {bad[0]!r} (allowed: solution, task, outcome)")
    if args.checkpoint:
        cfg.model.checkpoint = args.checkpoint
    dump_yaml(cfg, out / "config.yaml")
    torch.manual_seed(cfg.seed)
    tasks = None
    if args.benchmark == "worldtasks":
        loaded = load_worldtasks_folder(args.data, cfg.world.resolution)
        if not loaded.items:
            raise InputError(f"{args.data}: no usable tasks (skipped: {dict(loaded.skipped)})")
        tasks = loaded.items[: cfg.eval.tasks]
        print(f"worldtasks: {len(tasks)} tasks, skipped {dict(loaded.skipped)}")
    backbone = build_backbone(cfg.model, cfg.world)
    name = "executor" if args.lora else "demonstrator" if cfg.model.checkpoint else "random-init"
    if args.lora:
        add_lora(backbone, cfg.model.lora)
        load_lora(backbone, args.lora)
    judge = make_judge(cfg)
    results, videos = {}, {}
    for prompt in prompts:
        label = f"{name} ({prompt})"
        results[label], videos[label] = evaluate(cfg, backbone, prompt, tasks, judge, label=cfg.model.checkpoint or name)
        s = results[label]
        print(f"{label}: {summary_line(s)}  {s['videos_per_second']:.1f} videos/s")
    write_report(out, f"{args.benchmark} evaluation", results, videos, cfg.eval.gif_tasks,
                 [f"judge: {cfg.judge.backend}", f"checkpoint: {cfg.model.checkpoint or 'random init'}",
                  f"sample steps: {cfg.model.sample_steps}, seed {cfg.eval.seed}"])
    print(f"wrote {out / 'scores.json'}, {out / 'report.md'}, {out / 'scores.png'}, {out / 'samples.gif'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
