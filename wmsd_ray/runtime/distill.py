"""Off-policy distillation (and its matched-updates ablation): Demonstrator rollouts -> judge ->
demonstration buffer, while the learner trains on the buffer."""
from __future__ import annotations

import time
from collections import deque

import ray

from actors.pool import Call
from learners.weights import WeightStoreActor

from .buffers import demonstration_batch
from .stage import POLL_S, Controller


class DistillStage:
    """``DistillStage(driver, "distill", updates, losses, start_from="").run()``; the ablation is the
    same stage under its own phase name, continuing from ``distill_end`` with its own weight store."""

    def __init__(self, d: Controller, phase: str, target: int, losses: dict, start_from: str):
        self.d, self.cfg, self.st = d, d.cfg, d.state
        self.phase, self.target, self.losses, self.start_from = phase, target, losses, start_from
        self.store = d.store if phase == "distill" else WeightStoreActor.remote()
        self.todo = deque(i for i in range(len(d.tasks)) if i not in self.st.demonstrated_tasks)
        self.videos = 0

    def run(self) -> None:
        d, cfg, st, phase = self.d, self.cfg, self.st, self.phase
        # While Demonstrator rollouts run, the learner keeps to learner.threads; once they are all
        # in, it takes the phase's own count (2 threads beside a busy Demonstrator: 2.3 s per step,
        # against 0.7 s with 1 thread; 0.43 s with 2 threads once it is alone).
        self.alone_threads = cfg.learner.threads_for(phase)
        self.learner = d.open_learner(phase, self.store, self.losses, self.start_from, self.target,
                                      threads=cfg.learner.threads if self.todo else self.alone_threads)
        self.threads_raised = not self.todo
        self.demo = d.pool("demonstrator") if self.todo else None
        self.judge = d.pool("judge")
        self.bar = d.progress(phase, self.target)
        self.started = time.time()
        try:
            while st.sent[phase] < self.target:
                self.step()
            # Rollouts still in flight are finished work (the learner is still on its queue
            # meanwhile): into the demonstration buffer now, not into the next phase's pools.
            while self.in_flight():
                self.collect(timeout=POLL_S)
            d.checkpoint(self.learner, f"{phase}_end")
        finally:
            self.learner.stop()
            self.bar.close()
        if not (cfg.algorithm.lambda_distill or cfg.algorithm.anchor_on_demonstrator):
            d.release("demonstrator")  # the RL phase needs it only for r_distill or the anchor
        d.drain_learner_metrics(phase, store=self.store)
        if self.store is not d.store:
            ray.kill(self.store)  # the ablation's own store: its adapter lives on in the checkpoint
        print(f"{phase}: {st.sent[phase]} updates; Demonstrator videos {st.counters['demonstrator_videos']}, "
              f"judge-accepted {st.counters['demonstrator_accepted']} (buffer {len(st.demonstrations)})", flush=True)

    def step(self) -> None:
        """Keep the Demonstrator busy, collect, feed the learner, then idle until something finishes."""
        cfg, st, phase = self.cfg, self.st, self.phase
        self.submit_rollouts()
        self.collect()
        busy = self.rollouts_busy()
        if not busy and not self.threads_raised:
            self.learner.set_threads(self.alone_threads)
            self.threads_raised = True
        if not busy and len(st.demonstrations) < cfg.train.min_buffer:
            raise RuntimeError(f"the judge accepted only {len(st.demonstrations)} Demonstrator samples "
                               f"(< train.min_buffer={cfg.train.min_buffer}); nothing to distil")
        while st.sent[phase] < self.target and len(st.demonstrations) >= cfg.train.min_buffer and self.learner.has_room():
            rows = st.demonstrations.draw(self.d.rng, cfg.learner.batch_for(phase))
            batch = demonstration_batch(st.sent[phase], rows, self.d.next_seed())
            self.d.send_batch(self.learner, phase, ray.put(batch), self.target, self.bar)
        self.d.metrics.gauge(learner_queue_depth=self.learner.depth())
        waiting = list(self.judge.in_flight) + (list(self.demo.in_flight) if self.demo is not None else [])
        self.d.wait_for_work(waiting, phase, self.bar, self.store)

    def in_flight(self) -> bool:
        return bool(self.judge.in_flight or (self.demo is not None and self.demo.in_flight))

    def rollouts_busy(self) -> bool:
        """Demonstrator rollouts still to submit or to finish."""
        return bool(self.todo) or self.in_flight()

    def submit_rollouts(self) -> None:
        cfg, tasks = self.cfg, self.d.tasks
        while self.todo and self.demo is not None and self.demo.has_capacity():
            chunk = [self.todo.popleft() for _ in range(min(cfg.train.rl_tasks, len(self.todo)))]
            t = cfg.train
            args = ([tasks[i] for i in chunk], t.demonstrator_samples, self.d.task_seed(chunk[0]), t.demonstrator_eta)
            self.demo.submit(Call("rollouts", args, tag=chunk))

    def collect(self, timeout: float = 0.0) -> None:
        """Demonstrator rollouts on to the judge; judged groups into the demonstration buffer."""
        st = self.st
        for call, ref, _ in self.demo.done(timeout) if self.demo is not None else []:
            self.judge.submit(Call("score_groups", (ref,), tag=call.tag))
        for call, _, groups in self.judge.done(timeout):
            for g in groups:
                kept = st.demonstrations.add(g, self.cfg.train.judge_filter)
                if kept is None:  # a retried call that had in fact finished: counted once
                    st.counters["duplicate_groups"] += 1
                    continue
                st.counters["demonstrator_videos"] += g.size
                st.counters["demonstrator_accepted"] += kept
                st.counters["judge_errors"] += g.judge_errors
                self.videos += g.size
            st.demonstrated_tasks.update(call.tag)
            accept_rate = st.counters["demonstrator_accepted"] / max(1, st.counters["demonstrator_videos"])
            self.d.metrics.gauge(videos_per_s_demonstrator=self.videos / (time.time() - self.started),
                                 judge_accept_rate=accept_rate)
