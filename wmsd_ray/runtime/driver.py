"""The single controller: phase schedule, actor pools, streaming, checkpoints, metrics.

Data flows one way: scenes -> proposer -> Demonstrator (solution) -> judge -> teacher buffer
-> learner (off-policy distillation); then Executor samplers (task, adapter vN) -> judge
(-> Demonstrator for r_distill) -> advantages -> policy pool -> learner (distillation + RL)
-> adapter vN+1 -> samplers. Actors exchange records through the object store; the driver
only routes ObjectRefs, enforces the bounds, and decides what the learner trains on next.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np
import ray
from tqdm import tqdm

from actors.models import DemonstratorActor, SamplerActor
from actors.pool import ActorPool, Call
from actors.roles import JudgeActor, ProposerActor, config_payload
from learners.group import LearnerFailed, LearnerGroup
from learners.schedule import phase_schedule
from learners.weights import WeightStoreActor
from learners.worker import STATE_FILE
from wmsd_ray.config import Config
from wmsd_ray.records import TaskSpec, read_parquet, write_parquet
from wmsd_ray.world.benchmark import benchmark_scene_keys
from wmsd_ray.world.render import Renderer
from wmsd_ray.world.scene import random_scene

from .buffers import PolicyPool, teacher_batch
from .metrics import Metrics
from .state import PHASES, DriverState, checkpoint_root, load_latest, prune, save_state

log = logging.getLogger(__name__)
POLL_S = 0.2  # longest idle wait of the controller loop
DRAIN_S = 0.5  # learner metrics are collected at most this often


class Driver:
    def __init__(self, cfg: Config, run_dir: Path, resume: bool = False, memory=None):
        self.cfg, self.run_dir, self.memory = cfg, run_dir, memory  # memory: a MemoryMonitor (peak RSS and PSS sums)
        loaded = load_latest(run_dir) if resume else None
        self.state, self.resumed_from = (loaded if loaded else (DriverState(), None))
        self.rng = self.state.generator(cfg.seed)
        if self.state.policy is None:
            s = cfg.stream
            self.state.policy = PolicyPool(s.max_staleness, s.reuse, s.stale_policy)
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
            cls = {"proposer": ProposerActor, "demonstrator": DemonstratorActor, "sampler": SamplerActor,
                   "judge": JudgeActor}[name]
            payload = config_payload(self.cfg)
            args = (payload, self.store) if name == "sampler" else (payload,)
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

    def peak_memory_gb(self) -> float:
        return self.memory.peak_gb if self.memory is not None else 0.0

    def peak_pss_gb(self) -> float:
        return self.memory.peak_pss_gb if self.memory is not None else 0.0

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
        """Training scenes (never benchmark layouts) rendered to pixels -> proposer actors -> TaskSpecs."""
        world, data = self.cfg.world, self.cfg.data
        if data.scenes_dir:  # a cluster's unlabeled images; unreadable files are counted and skipped
            from wmsd_ray.datasets import load_image_folder

            loaded = load_image_folder(data.scenes_dir, world.resolution)
            self.state.counters.update({f"scenes_skipped/{k}": v for k, v in loaded.skipped.items()})
            images = [img for _, img in loaded.items][: data.train_scenes]
        else:
            scene_rng = np.random.default_rng([self.cfg.seed, data.scene_seed])
            renderer, exclude = Renderer(world), benchmark_scene_keys(world)
            images = [renderer.render(random_scene(world, scene_rng, exclude)) for _ in range(data.train_scenes)]
        proposers = self.pool("proposer")
        pending = deque(range(len(images)))
        results: dict[int, list[TaskSpec]] = {}
        while pending or proposers.in_flight:
            while pending and proposers.has_capacity():
                i = pending.popleft()
                proposers.submit(Call("propose", (images[i], f"train-{i:04d}", self.cfg.seed * 7919 + i), tag=i))
            for call, _, proposal in proposers.done(timeout=0.5):
                results[call.tag] = proposal.specs
                self.state.counters.update({f"proposer_rejected/{k}": v for k, v in proposal.rejected.items()})
        self.tasks = [s for i in sorted(results) for s in results[i]]
        if not self.tasks:
            raise RuntimeError("the proposer produced no tasks from the training scenes")
        write_parquet(self.run_dir / "tasks.parquet", self.tasks, TaskSpec)
        self.release("proposer")
        self.metrics.log({"event": "proposed", "scenes": len(images), "tasks": len(self.tasks)})
        print(f"propose: {len(self.tasks)} task/solution pairs from {len(images)} training scenes", flush=True)

    def _progress(self, phase: str, total: int) -> tqdm:
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
            self._drain_learner_metrics(phase, bar, store)

    def _drain_learner_metrics(self, phase: str, bar: tqdm | None = None, store=None) -> list[dict]:
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

    def phase_distill(self) -> None:
        self._teacher_then_learn("distill", self.cfg.train.distill_updates, self.cfg.algorithm.distill_losses,
                                 start_from="")

    def phase_ablation(self) -> None:
        """Distillation alone for as many more updates as the RL phase had (matched updates)."""
        if not self.cfg.train.ablation:
            return
        self._teacher_then_learn("ablation", self.cfg.train.rl_updates, self.cfg.algorithm.distill_losses,
                                 start_from="distill_end")

    def _teacher_then_learn(self, phase: str, target: int, losses: dict, start_from: str) -> None:
        """Demonstrator rollouts -> judge -> teacher buffer, while the learner trains on the buffer."""
        cfg, st = self.cfg, self.state
        store = self.store if phase == "distill" else WeightStoreActor.remote()
        todo = deque(i for i in range(len(self.tasks)) if i not in st.teacher_done)
        # While Demonstrator rollouts run, the learner keeps to learner.threads; once they are all
        # in, it takes the phase's own count (2 threads beside a busy Demonstrator: 2.3 s per step,
        # against 0.7 s with 1 thread; 0.43 s with 2 threads once it is alone).
        alone_threads = cfg.learner.threads_for(phase)
        learner = self.open_learner(phase, store, losses, start_from, target,
                                    threads=cfg.learner.threads if todo else alone_threads)
        threads_raised = not todo
        demo = self.pool("demonstrator") if todo else None
        judge = self.pool("judge")
        bar = self._progress(phase, target)
        started, videos = time.time(), 0

        def collect(timeout: float = 0.0) -> None:
            """Demonstrator rollouts on to the judge; judged groups into the teacher buffer."""
            nonlocal videos
            for call, ref, _ in demo.done(timeout) if demo is not None else []:
                judge.submit(Call("score_groups", (ref,), tag=call.tag))
            for call, _, groups in judge.done(timeout):
                for g in groups:
                    kept = st.teacher.add(g, cfg.train.judge_filter)
                    if kept is None:  # a retried call that had in fact finished: counted once
                        st.counters["duplicate_groups"] += 1
                        continue
                    st.counters["teacher_videos"] += g.size
                    st.counters["teacher_accepted"] += kept
                    st.counters["judge_errors"] += g.judge_errors
                    videos += g.size
                st.teacher_done.update(call.tag)
                self.metrics.gauge(videos_per_s_demonstrator=videos / (time.time() - started),
                                   judge_accept_rate=st.counters["teacher_accepted"] / max(1, st.counters["teacher_videos"]))

        try:
            while st.sent[phase] < target:
                while todo and demo is not None and demo.has_capacity():
                    chunk = [todo.popleft() for _ in range(min(cfg.train.rl_tasks, len(todo)))]
                    demo.submit(Call("rollouts", ([self.tasks[i] for i in chunk], cfg.train.teacher_samples,
                                                  self._task_seed(chunk[0]), cfg.train.teacher_eta), tag=chunk))
                collect()
                teacher_busy = bool(todo or judge.in_flight or (demo is not None and demo.in_flight))
                if not teacher_busy and not threads_raised:
                    learner.set_threads(alone_threads)
                    threads_raised = True
                if not teacher_busy and len(st.teacher) < cfg.train.min_buffer:
                    raise RuntimeError(f"the judge accepted only {len(st.teacher)} teacher samples "
                                       f"(< train.min_buffer={cfg.train.min_buffer}); nothing to distil")
                while (st.sent[phase] < target and len(st.teacher) >= cfg.train.min_buffer and learner.has_room()):
                    batch = teacher_batch(st.sent[phase], st.teacher.draw(self.rng, cfg.learner.batch_for(phase)),
                                          self.next_seed())
                    learner.put(ray.put(batch))
                    st.sent[phase] += 1
                    bar.update(1)
                    if st.sent[phase] % cfg.train.checkpoint_every == 0 and st.sent[phase] < target:
                        self.checkpoint(learner, f"step-{phase}-{st.sent[phase]:06d}")
                self.metrics.gauge(learner_queue_depth=learner.depth())
                waiting = list(judge.in_flight) + (list(demo.in_flight) if demo is not None else [])
                self.wait_for_work(waiting, phase, bar, store)
            # Rollouts still in flight are finished work (the learner is still on its queue
            # meanwhile): into the teacher buffer now, not into the next phase's pools.
            while judge.in_flight or (demo is not None and demo.in_flight):
                collect(timeout=POLL_S)
            self.checkpoint(learner, f"{phase}_end")
        finally:
            learner.stop()
            bar.close()
        if not (self.cfg.algorithm.lambda_distill or self.cfg.algorithm.anchor_on_demonstrator):
            self.release("demonstrator")  # the RL phase needs it only for r_distill or the anchor
        self._drain_learner_metrics(phase, store=store)
        print(f"{phase}: {st.sent[phase]} updates; teacher videos {st.counters['teacher_videos']}, "
              f"judge-accepted {st.counters['teacher_accepted']} (buffer {len(st.teacher)})", flush=True)

    def _task_seed(self, index: int) -> int:
        """Teacher rollouts of task ``index`` always use the same seed (a retried group is the same group)."""
        return self.cfg.seed * 1_000_003 + 104_729 * (index + 1)

    def phase_rl(self) -> None:
        from .rl import run_rl

        run_rl(self)

    def phase_eval(self) -> None:
        if not self.cfg.train.eval:
            return
        from .evaluate import run_eval

        self.release("demonstrator", "judge", "sampler")
        run_eval(self)
