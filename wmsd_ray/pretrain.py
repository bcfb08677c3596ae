"""``python -m wmsd_ray.pretrain``: pretrain the embedded Demonstrator on the caption corpus.

The corpus is the world's random motions with detailed captions (no short tasks), drawn
from scenes that never match a benchmark layout. Batch k and its noise are functions of
(seed, k), so resuming from a checkpoint replays exactly the same stream. State (weights,
EMA, optimizer, step, history) is saved every ``pretrain.checkpoint_every`` steps by
write-then-rename, so a kill loses at most that many steps. The final model is the better
of raw and EMA weights on validation tasks (proposed on non-benchmark scenes), then scored
on the 200 benchmark tasks with both prompts.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .backends import make_judge, make_proposer
from .cli_util import config_parser, exits_cleanly_on_user_error
from .config import Config, dump_yaml, load_config, to_dict
from .errors import ConfigError
from .evaluation import sample_and_score, summary_line
from .models import Backbone, TextEncoder, build_backbone, save_checkpoint
from .models.flow import sample_train_sigmas
from .records import TaskSpec
from .world.benchmark import benchmark_scene_keys, load_benchmark
from .world.corpus import iter_corpus
from .world.render import Renderer
from .world.scene import random_scene

VALIDATION_SEED = 777
PROMPTS = ("solution", "task", "outcome")  # detailed solution, short task, the task's goal as an outcome caption


def lr_at(step: int, cfg) -> float:
    """Linear warmup, flat, then cosine down to ``min_lr_fraction`` over the last part."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    start = int(cfg.decay_start * cfg.steps)
    if step < start:
        return cfg.lr
    frac = (step - start) / max(1, cfg.steps - start)
    lo = cfg.lr * cfg.min_lr_fraction
    return lo + (cfg.lr - lo) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def corpus_batch(cfg: Config, step: int, exclude: frozenset[str]) -> tuple[np.ndarray, list[str]]:
    """The training batch for ``step``: a pure function of (corpus_seed, step)."""
    pc = cfg.pretrain
    stream = iter_corpus(cfg.world, (pc.corpus_seed, step), exclude, dict(pc.registers), pc.relational_weight)
    items = list(islice(stream, pc.batch_size))
    return np.stack([v.frames for v in items]), [v.caption for v in items]


def validation_tasks(cfg: Config, n: int) -> list[TaskSpec]:
    """n proposed tasks, one per fresh non-benchmark scene (selection data, never the benchmark)."""
    rng = np.random.default_rng([VALIDATION_SEED, cfg.seed])
    renderer, proposer = Renderer(cfg.world), make_proposer(cfg)
    exclude = benchmark_scene_keys(cfg.world)
    tasks: list[TaskSpec] = []
    while len(tasks) < n:
        scene = random_scene(cfg.world, rng, exclude)
        specs = proposer.propose(renderer.render(scene), f"val-{len(tasks):04d}", rng).specs
        if specs:
            tasks.append(specs[int(rng.integers(len(specs)))])
    return tasks


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
            else:
                self.shadow[k].copy_(v)


def _save_state(path: Path, backbone: Backbone, ema: EMA, opt, step: int, history: list) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "model": backbone.transformer.state_dict(), "ema": ema.shadow,
                "optimizer": opt.state_dict(), "history": history}, tmp)
    os.replace(tmp, path)


def pretrain(cfg: Config, resume: bool = False) -> dict:
    pc = cfg.pretrain
    torch.set_num_threads(pc.threads)
    out = Path(pc.output)
    state_path = out / "state.pt"
    if out.exists() and any(out.iterdir()) and not resume:
        raise ConfigError(f"{out} already holds a pretraining run; pass --resume or choose pretrain.output")
    out.mkdir(parents=True, exist_ok=True)
    model_cfg = cfg.model
    # From random init, or (pretrain.init) continued from a saved Demonstrator's weights with a
    # fresh optimizer and schedule: a real model's continued pretraining on a new caption mix.
    model_cfg.checkpoint, model_cfg.hub = pc.init, ""
    dump_yaml(cfg, out / "config.yaml")
    torch.manual_seed(cfg.seed)
    backbone = build_backbone(model_cfg, cfg.world, TextEncoder(model_cfg.text_encoder, model_cfg.max_text_tokens, 0))
    opt = torch.optim.AdamW(backbone.parameters(), lr=pc.lr, weight_decay=pc.weight_decay, betas=(0.9, 0.99))
    ema = EMA(backbone.transformer, pc.ema)
    step, history = 0, []
    if resume and state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        backbone.transformer.load_state_dict(state["model"])
        ema.shadow = state["ema"]
        opt.load_state_dict(state["optimizer"])
        step, history = state["step"], state["history"]
        print(f"resumed from {state_path} at step {step}", flush=True)
    exclude = benchmark_scene_keys(cfg.world)
    judge = make_judge(cfg)
    val = validation_tasks(cfg, pc.eval_videos)
    bar = tqdm(total=pc.steps, initial=step, desc="pretrain", unit="step", file=sys.stdout, mininterval=5)
    t_last, losses = time.time(), []
    backbone.train()
    while step < pc.steps:
        frames, captions = corpus_batch(cfg, step, exclude)
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x0 = backbone.encode_video(frames).to(backbone.device)
        cond = backbone.condition(frames[:, 0], captions)
        sigma = sample_train_sigmas(len(captions), model_cfg.timestep_shift, g).to(x0.device)
        noise = torch.randn(x0.shape, generator=g).to(x0.device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, pc)
        loss = backbone.flow_loss(x0, cond, sigma, noise)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}; last checkpoint is {state_path}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(backbone.parameters(), pc.grad_clip)
        opt.step()
        ema.update(backbone.transformer)
        step += 1
        losses.append(loss.item())
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", lr=f"{lr_at(step, pc):.1e}")
        if step % pc.eval_every == 0 or step == pc.steps:
            row = {"step": step, "loss": float(np.mean(losses[-200:])),
                   "sec_per_step": (time.time() - t_last) / max(1, len(losses))}
            row["val_task_raw"] = _score(cfg, backbone, val, "solution", judge)["task"]
            row["val_outcome_raw"] = _score(cfg, backbone, val, "outcome", judge)["task"]
            backbone.train()
            history.append(row)
            with open(out / "train_log.jsonl", "a") as log:
                log.write(json.dumps(row) + "\n")
            tqdm.write(f"step {step}: loss {row['loss']:.4f}, validation Task: solution prompt {row['val_task_raw']:.2f}, "
                       f"outcome prompt {row['val_outcome_raw']:.2f}", file=sys.stdout)
            t_last, losses = time.time(), []
        if step % pc.checkpoint_every == 0 or step == pc.steps:
            _save_state(state_path, backbone, ema, opt, step, history)
    bar.close()
    return finish(cfg, backbone, ema, val, judge, history, out)


def _score(cfg: Config, backbone: Backbone, tasks: list[TaskSpec], prompt: str, judge) -> dict:
    return sample_and_score(backbone, tasks, prompt, judge, cfg.eval.seed, cfg.sampling.batch_size)[0]


def finish(cfg: Config, backbone: Backbone, ema: EMA, val: list[TaskSpec], judge, history: list, out: Path) -> dict:
    """Pick raw or EMA weights on validation tasks, score on the benchmark, save the Demonstrator."""
    raw_state = {k: v.clone() for k, v in backbone.transformer.state_dict().items()}
    raw_val = _score(cfg, backbone, val, "solution", judge)
    backbone.transformer.load_state_dict(ema.shadow)
    ema_val = _score(cfg, backbone, val, "solution", judge)
    use_ema = ema_val["task"] >= raw_val["task"]
    if not use_ema:
        backbone.transformer.load_state_dict(raw_state)
    bench = load_benchmark(cfg.world)[: cfg.eval.tasks]
    scores = {
        "validation": {"raw_task": raw_val["task"], "ema_task": ema_val["task"], "chosen": "ema" if use_ema else "raw"},
        **{f"benchmark_{kind}": _score(cfg, backbone, bench, kind, judge) for kind in PROMPTS},
        "steps": cfg.pretrain.steps, "history": history,
    }
    save_checkpoint(backbone, out / "demonstrator", cfg.world,
                    extra={"pretrain": to_dict(cfg.pretrain), "weights": scores["validation"]["chosen"]})
    (out / "scores.json").write_text(json.dumps(scores, indent=2))
    for kind in PROMPTS:
        print(f"benchmark, {kind} prompt: {summary_line(scores[f'benchmark_{kind}'])}", flush=True)
    return scores


def _parser() -> argparse.ArgumentParser:
    ap = config_parser("python -m wmsd_ray.pretrain", __doc__, "pretrain.steps=100")
    ap.add_argument("--resume", action="store_true", help="continue from <pretrain.output>/state.pt")
    return ap


@exits_cleanly_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    started = time.time()
    pretrain(cfg, resume=args.resume)
    print(f"pretraining took {(time.time() - started) / 60:.1f} min; checkpoint in {cfg.pretrain.output}/demonstrator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
