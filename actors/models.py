"""Demonstrator and Executor-sampler actors: the video model on the rollout side.

- ``DemonstratorWorker``: the frozen teacher. Rollouts conditioned on (image, detailed
  solution), and teacher velocities at given student states (for r_distill, and for the
  anchor when ``algorithm.anchor_on=demonstrator``).
- ``ExecutorWorker``: the Executor (same base + LoRA). G samples per task with the current
  adapter, SDE with fp32 log-probs and latents kept, every group tagged with the adapter
  version; before each group it pulls a newer adapter from the weight store if there is one.
Both also sample benchmark videos for evaluation, so evaluation scales with the pools.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import ray
import torch

from learners.collective import CollectiveClient, unflatten_into, weight_transport
from wmsd_ray.algorithms import anchor_targets, distill_reward
from wmsd_ray.config import Config, from_dict
from wmsd_ray.cpu import limit_cpu
from wmsd_ray.device import from_numpy, to_numpy
from wmsd_ray.models.loading import build_backbone
from wmsd_ray.models.lora import add_lora, apply_adapter
from wmsd_ray.models.sampling import generate, initial_noise, rollout
from wmsd_ray.records import TaskSpec
from wmsd_ray.rollouts import TEACHER_VERSION, RolloutGroup, TrainBatch

EVAL_VERSION = -2  # an explicitly loaded (evaluated) adapter, not one of the store's versions


class _ModelWorker:
    pool = "demonstrator"

    def __init__(self, config: dict):
        self.cfg = from_dict(Config, config)
        pool = getattr(self.cfg.actors, self.pool)
        limit_cpu(pool.threads, pool.cpu_affinity)
        torch.manual_seed(self.cfg.seed)
        self.backbone = build_backbone(self.cfg.model, self.cfg.world).eval()
        self.version = TEACHER_VERSION

    def ready(self) -> bool:
        return True

    def _rollout(self, tasks: Sequence[TaskSpec], prompts: list[str], group: int, seed: int, eta: float,
                 keep: bool, source: str, group_ids: Sequence[str] = ()) -> list[RolloutGroup]:
        """G = ``group`` samples of each task, ``sampling.batch_size`` rows at a time; SDE when eta > 0
        (with log-probs).
        Groups are named ``{source}-{seed}-{i}`` unless the caller names them."""
        bb = self.backbone
        cond = bb.condition(np.stack([t.image for t in tasks]), prompts).repeat(group)
        x = initial_noise(bb, cond, torch.Generator().manual_seed(seed), group_size=group,
                          shared=self.cfg.sampling.shared_noise)
        final, traj = rollout(bb, cond, x, seed + 1, eta, keep, self.cfg.sampling.batch_size)
        videos = bb.decode(final)
        out = []
        for i, t in enumerate(tasks):
            sl = slice(i * group, (i + 1) * group)
            g = RolloutGroup(
                group_id=group_ids[i] if group_ids else f"{source}-{seed}-{i}", task_id=t.task_id,
                image=t.image, task=t.task, solution=t.solution, family=t.family, held_out=t.held_out,
                source=source, version=self.version, seed=seed,
                x0=to_numpy(final[sl]), videos=videos[sl], sigmas=to_numpy(bb.sigmas()), eta=float(eta),
            )
            if keep and traj is not None:
                g.latents = to_numpy(traj.latents[:, sl])
                g.log_probs = to_numpy(traj.log_probs[:, sl])
                g.executor_v = to_numpy(traj.velocities[:, sl])
            out.append(g)
        return out

    def sample_videos(self, tasks: list[TaskSpec], prompt: str, seed: int, adapter: dict | None = None,
                      adapter_tag: str = "") -> np.ndarray:
        """One ODE video per task (evaluation), seeded like ``python -m wmsd_ray.eval``. An evaluation
        call carries the adapter it must use, so a restarted or replaced actor samples with it too."""
        self._use_adapter(adapter, adapter_tag)
        prompts = [t.solution if prompt == "solution" else t.task for t in tasks]
        return generate(self.backbone, np.stack([t.image for t in tasks]), prompts, seed,
                        self.cfg.sampling.batch_size)


class DemonstratorWorker(_ModelWorker):
    pool = "demonstrator"

    def _use_adapter(self, adapter: dict | None, tag: str) -> None:
        if adapter is not None:
            raise ValueError("the Demonstrator has no adapter: evaluate an Executor on the executor pool")

    def rollouts(self, tasks: list[TaskSpec], group: int, seed: int, eta: float = 0.0) -> list[RolloutGroup]:
        return self._rollout(tasks, [t.solution for t in tasks], group, seed, eta, keep=False, source="demonstrator")

    @torch.no_grad()
    def distill_rewards(self, group: RolloutGroup) -> RolloutGroup:
        """r_distill of each sample: teacher (solution) vs student velocities along the Executor's path."""
        if not group.executor_v.size:
            raise ValueError(f"group {group.group_id} kept no student velocities")
        bb = self.backbone
        g = group.size
        cond = bb.condition(np.repeat(group.image[None], g, 0), [group.solution] * g)
        teacher = []
        sigmas = from_numpy(group.sigmas, bb.device)
        for k in range(group.latents.shape[0] - 1):
            x = from_numpy(group.latents[k], bb.device)
            teacher.append(to_numpy(bb.velocity(x, sigmas[k].expand(g), cond, sigmas[k + 1].expand(g))))
        mask = to_numpy(bb.gen_mask(from_numpy(group.latents[0, :1], bb.device)))[0]
        group.r_distill = distill_reward(group.executor_v, np.stack(teacher), group.sigmas, mask)
        return group


    def anchor_targets(self, batch: TrainBatch) -> TrainBatch:
        """The anchor's re-noised states and teacher predictions for one RL batch, computed here
        instead of in the learner (``algorithm.anchor_on=demonstrator``)."""
        return anchor_targets(self.backbone, batch)


class ExecutorWorker(_ModelWorker):
    pool = "executor"

    def __init__(self, config: dict, weight_store=None):
        super().__init__(config)
        add_lora(self.backbone, self.cfg.model.lora, seed=self.cfg.seed)
        self.backbone.eval()
        self.version, self.adapter_tag = 0, ""
        self.store = weight_store
        self.transport = weight_transport(self.cfg)
        self.collective = None
        if weight_store is not None and self.transport == "collective":
            self.collective = CollectiveClient(weight_store, self.backbone, self.cfg.learner.weight_sync_timeout_s)
        self.sync_seconds: list[float] = []

    def sync(self) -> int:
        """Load the newest published adapter, if newer than ours. Returns our version."""
        if self.store is None:
            return self.version
        started = time.perf_counter()
        if self.collective is not None:
            got = self.collective.pull(self.version)
            if got is None:
                return self.version
            version, flat = got
            unflatten_into(self.backbone, flat)
        else:
            latest = ray.get(self.store.latest.remote(self.version))
            if latest is None:
                return self.version
            version, (ref,) = latest
            apply_adapter(self.backbone, ray.get(ref))
        self.version = version
        self.sync_seconds.append(time.perf_counter() - started)
        return self.version

    def sample_groups(self, tasks: list[TaskSpec], group: int, seed: int, eta: float,
                      keep: bool = True) -> list[RolloutGroup]:
        """One group per task, each with the newest adapter: a call's later groups are fresher
        (per-video speed is the same at 8 videos per batch as at 32). Seeds derive from (seed, i),
        so a retried call repeats its groups exactly."""
        out = []
        for i, t in enumerate(tasks):
            self.sync()
            group_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
            out += self._rollout([t], [t.task], group, group_seed, eta, keep=keep, source="executor",
                                 group_ids=[f"executor-{seed}-{i}"])
        return out

    def _use_adapter(self, adapter: dict | None, tag: str) -> None:
        """Load ``adapter`` unless the one tagged ``tag`` is already in (evaluation of a saved arm)."""
        if adapter is None:
            return
        if tag != self.adapter_tag:
            apply_adapter(self.backbone, adapter)
            self.version, self.adapter_tag = EVAL_VERSION, tag

    def stats(self) -> dict:
        s = self.sync_seconds
        return {"version": self.version, "syncs": len(s), "sync_s_mean": float(np.mean(s)) if s else 0.0,
                "sync_s_first": s[0] if s else 0.0, "sync_s_median": float(np.median(s)) if s else 0.0,
                "transport": self.transport, "joins": self.collective.joins if self.collective else 0}



DemonstratorActor = ray.remote(DemonstratorWorker)
ExecutorActor = ray.remote(ExecutorWorker)
