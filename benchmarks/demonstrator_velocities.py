"""Where the Demonstrator's velocities are computed: in the learner (adapter off) or on the Demonstrator actor.

Why: the anchor and on-policy distillation need v_demonstrator(x_t | solution) at states the learner
draws for each update; r_distill needs it at every step of each student trajectory. The
Demonstrator actor can compute them beside the learner, at the price of a round trip through
the object store; the learner can compute them itself by disabling its adapter, at the price of
a longer step. This script measures both on the embedded default (threads per process as given):

- the learner step (RL losses, batch ``learner.batch_size``) with and without the anchor, i.e.
  what the in-learner teacher forward adds to every update;
- that teacher forward alone, in-process;
- the same forward as a round trip to a Demonstrator actor (``distill_rewards`` on one state per
  row), and the part of it that is not the forward (serialisation, object store, scheduling);
- r_distill of one group of ``sampling.group_size`` samples over ``model.sample_steps`` steps on
  the actor, against doing those forwards in the learner.

With ``--end-to-end N`` it then runs the main job's RL phase for N updates (after a brief
distillation; no ablation or evaluation) once per placement (``algorithm.anchor_on``) and
prints RL updates per second and the learner's mean step time for each.

Usage: python benchmarks/demonstrator_velocities.py [--repeats 10] [--threads 1] [--end-to-end 60] [KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch

from actors.models import DemonstratorActor
from actors.roles import config_payload
from learners.engines import make_engine
from wmsd_ray.algorithms import LossContext, total_loss
from wmsd_ray.config import load_config
from wmsd_ray.models import build_backbone
from wmsd_ray.models.lora import adapter_disabled, add_lora, lora_parameters
from wmsd_ray.rollouts import RolloutGroup, TrainBatch
from wmsd_ray.runtime.metrics import read_metrics
from wmsd_ray.world.benchmark import load_benchmark


def median_s(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def group_of(tasks, bb, states: torch.Tensor, sigmas: np.ndarray) -> RolloutGroup:
    """A group whose 'trajectory' is the given states, as the sampler would hand it over."""
    t = tasks[0]
    n = states.shape[1]
    return RolloutGroup(group_id="bench", task_id=t.task_id, image=t.image, task=t.task, solution=t.solution,
                        family=t.family, held_out=t.held_out, source="executor", version=1, seed=0,
                        x0=states[-1].numpy(), videos=np.zeros((n, 1, 1, 1, 3), np.uint8), sigmas=sigmas, eta=0.0,
                        latents=states.numpy(), executor_v=torch.randn_like(states[1:]).numpy())


def rl_phase(placement: str, updates: int, out: Path, extra: list[str]) -> tuple[float, float]:
    """(RL updates per second, mean learner step in s) of one short main-job run."""
    subprocess.run([sys.executable, "-m", "wmsd_ray.run", f"run_name={placement}", f"output_dir={out}",
                    f"algorithm.anchor_on={placement}", "data.train_scenes=12", "train.distill_updates=10",
                    "train.min_buffer=16", f"train.rl_updates={updates}", "train.ablation=false", "train.eval=false",
                    "logging.wandb=disabled", "ray.dashboard=false", "train.checkpoint_every=1000", *extra],
                   check=True, stdout=subprocess.DEVNULL)
    rows = read_metrics(out / placement / "metrics.jsonl")
    seconds = next(r["seconds"] for r in rows if r.get("event") == "phase_done" and r.get("phase") == "rl")
    steps = [r["step_s"] for r in rows if r.get("phase") == "rl" and "step_s" in r]
    return updates / seconds, float(np.mean(steps))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the learner and of the actor")
    ap.add_argument("--end-to-end", type=int, default=0, metavar="N", help="also time N RL updates of the main job per placement")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(None, [f"actors.demonstrator.threads={args.threads}", *args.overrides])
    B, G = cfg.learner.batch_size, cfg.sampling.group_size
    tasks = load_benchmark(cfg.world)[:B]
    bb = build_backbone(cfg.model, cfg.world).eval()
    add_lora(bb, cfg.model.lora, seed=cfg.seed)
    engine = make_engine(bb, lora_parameters(bb), cfg.learner, torch.device("cpu"))
    gen = torch.Generator().manual_seed(cfg.seed)
    x0 = torch.randn(bb.state_shape(B), generator=gen).numpy()
    batch = TrainBatch(0, "executor", np.stack([t.image for t in tasks]), [t.task for t in tasks],
                       [t.solution for t in tasks], x0, np.ones(B, np.float32), np.zeros(B, np.int64), np.zeros(0))
    rl = dict(cfg.algorithm.rl_losses)
    without = {k: v for k, v in rl.items() if k != "anchor"} or {"awm": 1.0}
    with_anchor = {**without, "anchor": rl.get("anchor", 0.01)}

    def step(losses):
        bb.train()
        loss, _ = total_loss(LossContext(bb, batch, gen), losses)
        engine.step(loss)

    step_without = median_s(lambda: step(without), args.repeats)
    step_with = median_s(lambda: step(with_anchor), args.repeats)
    bb.eval()
    sigma = torch.full((B,), 0.5)
    states = torch.from_numpy(x0)
    solution_cond = bb.condition(batch.images, batch.solutions)

    @torch.no_grad()
    def demonstrator_forward():
        with adapter_disabled(bb):
            bb.x0(states, sigma, solution_cond)

    forward_s = median_s(demonstrator_forward, args.repeats)
    sigmas = bb.sigmas().numpy()

    @torch.no_grad()
    def trajectory_forwards():
        with adapter_disabled(bb):
            cond = bb.condition(np.repeat(tasks[0].image[None], G, 0), [tasks[0].solution] * G)
            for k in range(len(sigmas) - 1):
                bb.velocity(states[:G], torch.full((G,), float(sigmas[k])), cond)

    trajectory_s = median_s(trajectory_forwards, max(2, args.repeats // 3))

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        actor = DemonstratorActor.options(num_cpus=cfg.actors.demonstrator.num_cpus).remote(config_payload(cfg))
        ray.get(actor.ready.remote())
        one_state = group_of(tasks, bb, torch.stack([states, states]), sigmas[:2])
        round_trip_s = median_s(lambda: ray.get(actor.distill_rewards.remote(one_state)), args.repeats)
        traj = torch.randn((len(sigmas), G, *states.shape[1:]), generator=gen)
        full = group_of(tasks, bb, traj, sigmas)
        r_distill_s = median_s(lambda: ray.get(actor.distill_rewards.remote(full)), max(2, args.repeats // 3))
    finally:
        ray.shutdown()

    mb = lambda a: a.nbytes / 2 ** 20  # noqa: E731
    print(f"embedded default, batch {B}, group {G}, {len(sigmas) - 1} sampling steps, {args.threads} thread(s) each")
    print(f"learner step without anchor {step_without * 1000:.0f} ms, with anchor {step_with * 1000:.0f} ms: "
          f"the in-learner teacher forward adds {(step_with - step_without) * 1000:.0f} ms "
          f"({(step_with - step_without) / step_without:.0%} of a step)")
    print(f"teacher forward at {B} states in-process: {forward_s * 1000:.0f} ms; as a round trip to the "
          f"Demonstrator actor: {round_trip_s * 1000:.0f} ms ({(round_trip_s - forward_s) * 1000:.0f} ms of it "
          f"not the forward; payload {mb(one_state.latents) + mb(one_state.executor_v):.2f} MiB)")
    print(f"r_distill of one group ({len(sigmas) - 1} teacher forwards of {G} samples): "
          f"{trajectory_s * 1000:.0f} ms of forwards, {r_distill_s * 1000:.0f} ms as a round trip to the actor "
          f"(payload {mb(full.latents) + mb(full.executor_v):.2f} MiB)")
    if args.end_to_end:
        with tempfile.TemporaryDirectory() as tmp:
            for placement in ("learner", "demonstrator"):
                rate, step_s = rl_phase(placement, args.end_to_end, Path(tmp), args.overrides)
                print(f"main job, anchor teacher on the {placement}: {rate:.3f} RL updates/s, "
                      f"learner step {step_s * 1000:.0f} ms ({args.end_to_end} updates)", flush=True)


if __name__ == "__main__":
    main()
