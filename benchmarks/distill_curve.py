"""Off-policy distillation learning curve of the Executor, outside Ray: Task vs learner updates.

Why: the Task bar needs the Executor well above its teacher. This isolates the distillation
recipe from the runtime, one family or all, so its learning speed can be measured directly.
Steps: the proposer writes tasks on fresh training scenes (never benchmark layouts), the
packaged Demonstrator samples ``--teacher-samples`` videos per task from the detailed solution,
the world judge keeps the fully accepted ones, and the Executor (base + LoRA, or ``--full``
fine-tune) is trained with the configured distillation loss through the learner's own engine
and distillation schedule (``learner.lr``, ``learner.schedule``, ... as overrides).
Every ``--every`` updates it prints Task / Agent / Consistency on 100 unseen tasks of the same
families (ODE, short task only; about ±0.09 at these rates) and Task per family.
``--family`` takes names, ``absolute`` (goals fixed on the board), ``relational`` (goals placed
relative to another object) or ``all``; ``--warm-families`` with ``--warm-updates`` trains on a
subset first (a curriculum), then on everything.
Usage: python benchmarks/distill_curve.py [--family corner] [--updates 900] [KEY=VALUE ...]
  e.g. a flat-rate full fine-tune: --full learner.lr=3e-4 learner.schedule=constant
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from learners.engines import make_engine
from learners.schedule import phase_schedule
from wmsd_ray.algorithms import LossContext, total_loss
from wmsd_ray.backends import make_judge, make_proposer
from wmsd_ray.config import load_config
from wmsd_ray.evaluation import sample_and_score
from wmsd_ray.models import build_backbone
from wmsd_ray.models.lora import add_lora, lora_parameters
from wmsd_ray.models.sampling import generate
from wmsd_ray.runtime.buffers import Sample, demonstration_batch
from wmsd_ray.world.benchmark import benchmark_scene_keys
from wmsd_ray.world.render import Renderer
from wmsd_ray.world.scene import random_scene
from wmsd_ray.world.tasks import FAMILIES

GROUPS = {
    "all": tuple(FAMILIES),
    "absolute": tuple(f for f, fam in FAMILIES.items() if not fam.relational),
    "relational": tuple(f for f, fam in FAMILIES.items() if fam.relational),
}


def family_set(arg: str) -> set[str]:
    """Comma-separated family or group names -> family names."""
    names = set()
    for part in filter(None, arg.split(",")):
        if part not in GROUPS and part not in FAMILIES:
            raise SystemExit(f"unknown family {part!r}; families {list(FAMILIES)}, groups {list(GROUPS)}")
        names.update(GROUPS.get(part, (part,)))
    return names


def propose_tasks(cfg, families: set[str], n: int, rng: np.random.Generator) -> list:
    proposer, renderer = make_proposer(cfg), Renderer(cfg.world)
    exclude, out = benchmark_scene_keys(cfg.world), []
    while len(out) < n:
        scene = random_scene(cfg.world, rng, exclude)
        specs = proposer.propose(renderer.render(scene), f"curve-{len(out)}", rng).specs
        out += [s for s in specs if s.family in families]
    return out[:n]


def position_embedding(transformer, resolution: int) -> torch.nn.Parameter:
    """A zero-initialised learned absolute position per latent cell (Wan only): the tiny model
    otherwise sees position only through RoPE, i.e. relative to other tokens."""
    grid = resolution // transformer.config.patch_size[1]
    dim = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    pos = torch.nn.Parameter(torch.zeros(1, dim, 1, grid, grid))
    transformer.patch_embedding.register_forward_hook(lambda _m, _i, out: out + pos)
    return pos


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="all", help="families or groups, comma-separated: corner,edge,... "
                    "absolute, relational, all")
    ap.add_argument("--warm-families", default="", help="train only on these families for --warm-updates first")
    ap.add_argument("--warm-updates", type=int, default=0)
    ap.add_argument("--tasks", type=int, default=400, help="training tasks")
    ap.add_argument("--teacher-samples", type=int, default=2)
    ap.add_argument("--updates", type=int, default=500)
    ap.add_argument("--every", type=int, default=250, help="evaluate every N updates")
    ap.add_argument("--full", action="store_true", help="full fine-tune instead of LoRA")
    ap.add_argument("--position-embedding", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if bool(args.warm_families) != (args.warm_updates > 0):
        ap.error("--warm-families and --warm-updates (> 0) go together")
    torch.set_num_threads(args.threads)
    cfg = load_config(None, args.overrides)
    lc = cfg.learner
    started = time.time()
    judge = make_judge(cfg)
    families = family_set(args.family)
    train = propose_tasks(cfg, families, args.tasks, np.random.default_rng(cfg.seed))
    test = propose_tasks(cfg, families, 100, np.random.default_rng(cfg.seed + 99))

    bb = build_backbone(cfg.model, cfg.world).eval()
    repeated = train * args.demonstrator_samples
    videos = generate(bb, np.stack([t.image for t in repeated]), [t.solution for t in repeated], cfg.seed + 1)
    verdicts = judge.judge_batch(list(videos), [t.task for t in repeated])
    keep = [i for i, v in enumerate(verdicts) if v.accepted]
    if not keep:
        raise SystemExit("the judge accepted no Demonstrator video")
    specs = [repeated[i] for i in keep]
    samples = [Sample(t.image, t.task, t.solution, x0) for t, x0 in zip(specs, bb.encode_video(videos[keep]).numpy())]
    demonstrator_task = np.mean([v.task for v in verdicts])
    present = ",".join(sorted({t.family for t in train}))
    print(f"families {present}: {len(train)} tasks, teacher Task {demonstrator_task:.3f}, "
          f"accepted {len(keep)}/{len(videos)} ({time.time() - started:.0f} s)", flush=True)

    if args.full:
        params = list(bb.transformer.parameters())
    else:
        add_lora(bb, cfg.model.lora, seed=cfg.seed)
        params = lora_parameters(bb)
    if args.position_embedding:
        params.append(position_embedding(bb.transformer, cfg.world.resolution))
    schedule = phase_schedule(lc, "distill", args.updates)
    engine = make_engine(bb, params, lc, torch.device("cpu"))
    rng, gen = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    print(f"{'full fine-tune' if args.full else f'LoRA r{cfg.model.lora.rank}'}, peak lr {schedule.peak}, "
          f"{schedule.kind} schedule over {args.updates} updates, batch {lc.batch_size}", flush=True)
    warm_families = family_set(args.warm_families)
    warm = np.array([i for i, t in enumerate(specs) if t.family in warm_families], np.int64)
    if args.warm_updates and not warm.size:
        raise SystemExit(f"no accepted Demonstrator video of --warm-families {args.warm_families!r}")
    print("| updates | Task | Agent | Consistency | Task per family | minutes |\n|---|---|---|---|---|---|")
    bb.train()
    for update in range(args.updates):
        if update < args.warm_updates:
            idx = warm[rng.integers(len(warm), size=lc.batch_size)]
        else:
            idx = rng.integers(len(specs), size=lc.batch_size)
        batch = demonstration_batch(update, [samples[i] for i in idx], seed=0)
        engine.set_lr(schedule.at(update))
        loss, _ = total_loss(LossContext(bb, batch, gen), cfg.algorithm.distill_losses)
        engine.step(loss)
        if (update + 1) % args.every == 0 or update + 1 == args.updates:
            scores, _ = sample_and_score(bb, test, "task", judge, cfg.seed + 11, 32)
            bb.train()
            per_family = " ".join(f"{f} {v:.2f}" for f, v in scores["per_family_task"].items())
            print(f"| {update + 1} | {scores['task']:.3f} | {scores['agent']:.3f} | {scores['consistency']:.3f} "
                  f"| {per_family} | {(time.time() - started) / 60:.1f} |", flush=True)


if __name__ == "__main__":
    main()
