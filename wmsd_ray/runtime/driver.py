"""The single controller: phase schedule, actor pools, streaming, checkpoints, metrics.

Data flows one way: scenes -> proposer -> Demonstrator (solution) -> judge -> demonstration buffer
-> learner (off-policy distillation); then Executor actors (task, adapter vN) -> judge
(-> Demonstrator for r_distill) -> advantages -> Executor pool -> learner (distillation + RL)
-> adapter vN+1 -> Executor actors. Actors exchange records through the object store; the driver
only routes ObjectRefs, enforces the bounds, and decides what the learner trains on next.
Each phase is a stage object (``propose.py``, ``distill.py``, ``rl.py``, ``evaluate.py``) that
reaches the driver only through the ``Controller`` interface of ``stage.py``.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import ray
from tqdm import tqdm

from actors.models import DemonstratorActor, ExecutorActor
from actors.pool import ActorPool
from actors.roles import JudgeActor, ProposerActor, config_payload
from learners.group import LearnerFailed, LearnerGroup
from learners.schedule import phase_schedule
from learners.weights import WeightStoreActor
from learners.worker import STATE_FILE
from wmsd_ray.config import Config
from wmsd_ray.records import TaskSpec, read_parquet

from .buffers import ExecutorPool
from .distill import DistillStage
from .evaluate import run_eval
from .metrics import Metrics
from .propose import ProposeStage
from .rl import RLStage
from .stage import POLL_S
from .state import PHASES, DriverState, checkpoint_root, load_latest, prune, save_state

log = logging.getLogger(__name__)
DRAIN_S = 0.5  # learner metrics are collected at most this often


class Driver:
    def __init__(self, cfg: Config, run_dir: Path, resume: bool = False, memory=None):
        self.cfg, self.run_dir, self.memory = cfg, run_dir, memory  # memory: a MemoryMonitor (peak RSS and PSS sums)
        loaded = load_latest(run_dir) if resume else None
        self.state, self.resumed_from = (loaded if loaded else (DriverState(), None))
        self.rng = self.state.generator(cfg.seed)
        if self.state.executor_samples is None:
            s = cfg.stream
            self.state.executor_samples = ExecutorPool(s.max_staleness, s.reuse, s.stale_policy)
        self.metrics = Metrics(cfg, run_dir, resume)
        self.store = WeightStoreActor.remote()
        self.pools: dict[str, ActorPool] = {}
        self.version = 0
        self.updates_done: dict[str, int] = {}  # phase -> last train batch the learner has finished
        self.tasks: list[TaskSpec] = []
        self._drained_at = 0.0
        if (run_dir / "tasks.parquet").is_file():
            self.tasks = read_parquet(TaskSpec, run_dir / "tasks.parquet")

    # -- pools ------------------------------------------------------------------------
    def pool(self, name: str) -> ActorPool:
        if name not in self.pools:
            pc = getattr(self.cfg.actors, name)
            cls = {"proposer": ProposerActor, "demonstrator": DemonstratorActor, "executor": ExecutorActor,
                   "judge": JudgeActor}[name]
            payload = config_payload(self.cfg)
            args = (payload, self.store) if name == "executor" else (payload,)
            opts = dict(num_cpus=pc.num_cpus, num_gpus=pc.num_gpus, max_restarts=pc.max_restarts,
                        resources=dict(pc.resources) or None)
            self.pools[name] = ActorPool(name, lambda: cls.options(**opts).remote(*args), pc.count,
                                         self.cfg.stream.max_in_flight, self.cfg.stream.group_retries)
            self.pools[name].wait_ready()
        return self.pools[name]

    def release(self, *names: str) -> None:
        for n in names:
            if n in self.pools:
                self.state.counters.update({f"{n}_{k}": v for k, v in self.pools[n].counters.items()})
                self.pools.pop(n).kill()

    def next_seed(self) -> int:
        self.state.calls += 1
        return self.cfg.seed * 1_000_003 + self.state.calls * 7919

    def memory_summary(self) -> dict:
        """Peak RSS and PSS sums so far and what they cover (``MemoryMonitor.summary``)."""
        if self.memory is None:
            return {"peak_memory_gb": 0.0, "peak_memory_pss_gb": 0.0, "memory_scope": "not measured (no monitor)"}
        return self.memory.summary()

    # -- checkpoints ------------------------------------------------------------------
    def checkpoint(self, learner: LearnerGroup | None, name: str) -> Path:
        directory = checkpoint_root(self.run_dir) / name
        if learner is not None:
            learner.checkpoint(directory / "learner")
            self.state.learner_dirs[name] = str(directory / "learner")
        save_state(self.state, self.rng, directory)
        prune(self.run_dir, self.cfg.train.keep_checkpoints, protect={"distill_end", "rl_end", "ablation_end"})
        return directory

    def learner_resume_dir(self, phase: str, start_from: str) -> str:
        """Within a phase: the last checkpoint of it; at its start: the named boundary checkpoint."""
        if self.resumed_from is not None and self.state.phase == phase and self.state.sent[phase]:
            return str(self.resumed_from / "learner")
        return self.state.learner_dirs.get(start_from, "")

    def open_learner(self, phase: str, store, losses: dict[str, float], start_from: str, target: int,
                     threads: int) -> LearnerGroup:
        """A learner group for ``phase`` (resumed where the phase or its start checkpoint left off),
        on the phase's learning-rate schedule. The driver's view of versions restarts there too: the
        loaded checkpoint's version, every batch sent before it applied (checkpoints are written only
        then); without this a resumed RL phase would misjudge staleness until the first report."""
        resume_dir = self.learner_resume_dir(phase, start_from)
        state = Path(resume_dir) / STATE_FILE if resume_dir else None
        self.version = json.loads(state.read_text())["version"] if state and state.is_file() else 0
        self.updates_done[phase] = self.state.sent[phase] - 1
        # The learner (and a DeepSpeed engine's train_batch_size) sees the phase's own batch size.
        phase_cfg = replace(self.cfg, learner=replace(self.cfg.learner, batch_size=self.cfg.learner.batch_for(phase)))
        return LearnerGroup(phase_cfg, store, losses, self.run_dir / "ray_train", phase, resume=resume_dir,
                            schedule=phase_schedule(self.cfg.learner, phase, target), threads=threads)

    # -- the schedule -----------------------------------------------------------------
    def run(self) -> None:
        for phase in PHASES[PHASES.index(self.state.phase):-1]:
            self.state.phase = phase
            started = time.time()
            self._run_phase(phase)
            self.metrics.log({"event": "phase_done", "phase": phase, "seconds": time.time() - started})
            self.state.phase = PHASES[PHASES.index(phase) + 1]
            if phase in ("propose", "eval"):
                self.checkpoint(None, f"{phase}_end")
        self.release(*list(self.pools))  # their counters (calls, failures, replacements) join the run's
        self.metrics.close()

    def _run_phase(self, phase: str) -> None:
        """A phase, restarted from the last complete checkpoint when its learner group dies (a
        preempted node): the driver's state, the learner's weights and optimizer and the batches
        still to send all come back from that checkpoint, so the phase ends with the same update
        counts and no batch is applied twice."""
        for attempt in range(self.cfg.train.learner_restarts + 1):
            try:
                return getattr(self, f"phase_{phase}")()
            except LearnerFailed as e:
                if attempt == self.cfg.train.learner_restarts:
                    raise
                self._rewind(phase, e)

    def _rewind(self, phase: str, error: Exception) -> None:
        loaded = load_latest(self.run_dir)
        if loaded is None:
            raise RuntimeError(f"{phase}: the learner group failed before any checkpoint") from error
        restarts = self.state.counters["learner_restarts"] + 1
        self.release(*list(self.pools))  # in-flight rollouts belong to the failed attempt
        ray.kill(self.store)
        self.store = WeightStoreActor.remote()  # versions published past the checkpoint are gone
        self.state, self.resumed_from = loaded
        self.state.phase = phase
        self.state.counters["learner_restarts"] = restarts
        self.rng = self.state.generator(self.cfg.seed)
        log.warning("%s: learner group failed (%s); restarting from %s", phase, error, self.resumed_from.name)
        self.metrics.log({"event": "learner_restart", "phase": phase, "from": self.resumed_from.name,
                          "updates": dict(self.state.sent), "error": str(error)[:200]})
        print(f"{phase}: learner group lost; restarting from checkpoint {self.resumed_from.name} "
              f"(updates {dict(self.state.sent)})", flush=True)

    def phase_propose(self) -> None:
        ProposeStage(self).run()

    def progress(self, phase: str, total: int) -> tqdm:
        return tqdm(total=total, initial=self.state.sent[phase], desc=phase, unit="upd", file=sys.stdout,
                    mininterval=5, dynamic_ncols=False, ncols=100)

    def wait_for_work(self, refs: list, phase: str, bar: tqdm | None = None, store=None) -> None:
        """Idle until a rollout call finishes (or ``POLL_S``), then collect learner metrics at most
        every ``DRAIN_S``: on 2 cores, a tighter polling loop measurably slowed the learner."""
        if refs:
            ray.wait(refs, num_returns=1, timeout=POLL_S)
        else:
            time.sleep(POLL_S)
        if time.time() - self._drained_at >= DRAIN_S:
            self.drain_learner_metrics(phase, bar, store)

    def drain_learner_metrics(self, phase: str, bar: tqdm | None = None, store=None) -> list[dict]:
        self._drained_at = time.time()
        rows = ray.get((store or self.store).drain.remote())
        for row in rows:
            if "version" in row and (store is None or store is self.store):
                self.version = max(self.version, int(row["version"]))
            if "update" in row:
                self.updates_done[phase] = max(self.updates_done.get(phase, -1), int(row["update"]))
            row.setdefault("phase", phase)
            self.metrics.log(row)
            if "step_s" in row:
                self.metrics.gauge(staleness_mean=row.get("staleness_mean"), sync_s=row.get("publish_s"))
                if row.get("skipped_nan"):
                    self.state.counters["nan_skipped"] += 1
        if rows and bar is not None:
            last = [r for r in rows if "loss" in r]
            if last:
                bar.set_postfix(loss=f"{last[-1]['loss']:.4f}", v=self.version, refresh=False)
        return rows

    def send_batch(self, learner: LearnerGroup, phase: str, batch_ref, target: int, bar: tqdm) -> None:
        """The step every training stage shares: one batch to the learner, counted, and a numbered
        checkpoint every ``train.checkpoint_every`` batches (the phase's end writes its own)."""
        learner.put(batch_ref)
        self.state.sent[phase] += 1
        bar.update(1)
        sent = self.state.sent[phase]
        if sent % self.cfg.train.checkpoint_every == 0 and sent < target:
            self.checkpoint(learner, f"step-{phase}-{sent:06d}")

    def phase_distill(self) -> None:
        DistillStage(self, "distill", self.cfg.train.distill_updates, self.cfg.algorithm.distill_losses,
                     start_from="").run()

    def phase_ablation(self) -> None:
        """Distillation alone for as many more updates as the RL phase had (matched updates)."""
        if self.cfg.train.ablation:
            DistillStage(self, "ablation", self.cfg.train.rl_updates, self.cfg.algorithm.distill_losses,
                         start_from="distill_end").run()

    def task_seed(self, index: int) -> int:
        """Demonstrator rollouts of task ``index`` always use the same seed (a retried group is the same group)."""
        return self.cfg.seed * 1_000_003 + 104_729 * (index + 1)

    def phase_rl(self) -> None:
        RLStage(self).run()

    def phase_eval(self) -> None:
        if self.cfg.train.eval:
            self.release("demonstrator", "judge", "executor")
            run_eval(self)
