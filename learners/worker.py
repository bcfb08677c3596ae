"""The learner's per-worker loop (Ray Train ``train_loop_per_worker``).

Each rank reads its own bounded queue, which the driver fills with the same items in the
same order: a train batch (each rank trains on its shard), a checkpoint request, or stop. After each
applied update rank 0 publishes the adapter with its
version. A non-finite loss on any rank skips the step on all ranks (counted, not applied).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import ray
import torch
import torch.distributed as dist

from wmsd_ray.algorithms import LossContext, total_loss
from wmsd_ray.config import Config, from_dict
from wmsd_ray.cpu import limit_cpu
from wmsd_ray.models.loading import build_backbone
from wmsd_ray.models.lora import add_lora, export_adapter, load_lora, lora_parameters, save_lora

from .collective import AdapterSender, weight_transport
from .engines import make_engine
from .schedule import LRSchedule

STATE_FILE = "learner_state.json"


def _barrier():
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


class Learner:
    """One rank's model, engine and counters (also usable without Ray Train, for tests)."""

    def __init__(self, cfg: Config, losses: dict[str, float], rank: int = 0, resume: str = "",
                 schedule: LRSchedule | None = None, threads: int = 0):
        self.cfg, self.losses, self.rank = cfg, losses, rank
        self.schedule = schedule or LRSchedule(peak=cfg.learner.lr, total=0, kind="constant")
        limit_cpu(threads or cfg.learner.threads, cfg.learner.cpu_affinity)
        torch.manual_seed(cfg.seed)
        self.backbone = build_backbone(cfg.model, cfg.world)  # on the GPU Ray gave this worker, if any
        self.device = self.backbone.device
        add_lora(self.backbone, cfg.model.lora, seed=cfg.seed)
        if cfg.model.gradient_checkpointing:
            for module in self.backbone.experts.values():
                module.enable_gradient_checkpointing()
        if resume:
            load_lora(self.backbone, Path(resume))
        self.backbone.train()
        self.params = lora_parameters(self.backbone)
        self.engine = make_engine(self.backbone, self.params, cfg.learner, self.device)
        self.version, self.steps, self.skipped = 0, 0, 0
        if resume:
            self.engine.load(Path(resume))
            state = json.loads((Path(resume) / STATE_FILE).read_text())
            self.version, self.steps, self.skipped = state["version"], state["steps"], state["skipped"]

    def update(self, batch) -> dict:
        started = time.perf_counter()
        shard = batch.shard(self.rank, dist.get_world_size() if dist.is_initialized() else 1)
        a = self.cfg.algorithm
        ctx = LossContext(self.backbone, shard, torch.Generator().manual_seed(int(batch.seed)),
                          awm_negative_scale=a.awm_negative_scale, grpo_clip=a.grpo_clip, grpo_kl=a.grpo_kl,
                          grpo_timesteps=a.grpo_timesteps)
        with self.engine.autocast():
            loss, metrics = total_loss(ctx, self.losses)
        self.steps += 1
        # Staleness: how many versions the weights this gradient was taken at lie past each sample's.
        lag = self.version - batch.versions[batch.versions >= 0] if (batch.versions >= 0).any() else np.zeros(1)
        if not self.engine.all_finite(loss):
            self.engine.skip()
            self.skipped += 1
            metrics = {"skipped_nan": 1.0}
        else:
            metrics["lr"] = self.engine.set_lr(self.schedule.at(int(batch.update)))
            metrics["grad_norm"] = self.engine.step(loss)
            metrics["loss"] = float(loss.detach())
            self.version += 1
        metrics.update({"update": batch.update, "kind": batch.kind, "version": self.version, "steps": self.steps,
                        "skipped": self.skipped, "rows": batch.size, "step_s": time.perf_counter() - started,
                        "threads": torch.get_num_threads(),
                        "staleness_mean": float(np.mean(lag)), "staleness_max": float(np.max(lag))})
        return metrics

    def publish(self, store, metrics: dict, sender: AdapterSender | None = None) -> None:
        """Rank 0: the adapter + its version + this update's metrics. The adapter goes as numpy
        through the object store, or to the collective sender (which sends it in its own thread)."""
        started = time.perf_counter()
        if sender is None:
            arrays = export_adapter(self.backbone)
        else:
            arrays = None
            sender.offer(self.version, self.backbone)
        metrics["publish_s"] = time.perf_counter() - started
        store.publish.remote(self.version, arrays, metrics)

    def digest(self) -> str:
        """A fingerprint of this rank's adapter: every rank must hold the same one."""
        import hashlib

        h = hashlib.sha256()
        for name, arr in sorted(export_adapter(self.backbone).items()):
            h.update(name.encode())
            h.update(arr.tobytes())
        return h.hexdigest()[:16]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"digest_rank{self.rank}.txt").write_text(self.digest())
        self.engine.save(directory, self.rank)
        if self.rank == 0:
            save_lora(self.backbone, directory)
            np.savez(directory / "adapter.npz", **export_adapter(self.backbone))
            (directory / STATE_FILE).write_text(json.dumps(
                {"version": self.version, "steps": self.steps, "skipped": self.skipped}))


def train_loop(config: dict) -> None:
    """Ray Train entry: ``config`` holds the resolved config, loss weights, queue, store, resume dir."""
    from ray import train

    ctx = train.get_context()
    rank = ctx.get_world_rank()
    cfg = from_dict(Config, config["cfg"])
    schedule = LRSchedule(**config["schedule"]) if config.get("schedule") else None
    learner = Learner(cfg, config["losses"], rank, config.get("resume", ""), schedule, config.get("threads", 0))
    queue, store = config["queues"][rank], config["store"]
    sender = None
    if rank == 0 and weight_transport(cfg) == "collective":
        sender = AdapterSender(learner.backbone, store, cfg.learner.weight_sync_timeout_s)
    if rank == 0:
        learner.publish(store, {"event": "start", "version": learner.version}, sender)
    try:
        _serve(learner, queue, store, sender)
    finally:
        sync = sender.close() if sender is not None else {"transport": "object_store"}
    _barrier()
    if rank == 0:
        ray.get(store.report.remote({"event": "stopped", "version": learner.version, "steps": learner.steps,
                                     "skipped": learner.skipped, "pid": os.getpid(), **sync}))


def _serve(learner: Learner, queue, store, sender: AdapterSender | None) -> None:
    """Apply the queue's items in order until told to stop."""
    rank = learner.rank
    while True:
        item = queue.get(block=True)
        if "stop" in item:
            break
        if "threads" in item:
            torch.set_num_threads(item["threads"])
            continue
        if "checkpoint" in item:
            learner.save(Path(item["checkpoint"]))
            _barrier()
            if rank == 0:
                ray.get(store.ack.remote(item["checkpoint"]))
            continue
        batch = ray.get(item["batch"][0])
        metrics = learner.update(batch)
        if rank == 0:
            learner.publish(store, metrics, sender)
