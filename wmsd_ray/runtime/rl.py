"""The on-policy phase: Executor actors -> judge (-> Demonstrator r_distill) -> advantages ->
Executor pool -> learner (distillation + RL) -> adapter versions back to the Executor actors.

``stream.mode=async`` keeps every Executor actor busy while the learner trains (bounded by
``max_in_flight`` per actor and by the staleness bound on what the learner may use);
``sync`` alternates strictly: sample with the current adapter, train on it, repeat.
"""
from __future__ import annotations

import time

import numpy as np
import ray

from actors.pool import Call
from wmsd_ray.algorithms import combine_rewards, credit_accepted_only, group_advantages, rows_with_signal

from .buffers import executor_batch
from .stage import Controller


def unpublished(sent: int, last_done: int) -> int:
    """Batches sent to the learner whose update has not been reported yet (update indices start at 0)."""
    return max(0, sent - (last_done + 1))


def keeps_trajectory(cfg) -> bool:
    """Whether Executor rollouts must carry their SDE trajectory (latents, noise, log-probs)."""
    losses = cfg.algorithm.rl_losses
    return bool(losses.get("flow_grpo") or losses.get("on_policy_distill") or cfg.algorithm.lambda_distill)


class RLStage:
    """One RL phase: ``RLStage(driver).run()``."""

    phase = "rl"

    def __init__(self, d: Controller):
        self.d, self.cfg, self.st, self.a = d, d.cfg, d.state, d.cfg.algorithm
        self.target = self.cfg.train.rl_updates
        self.keep = keeps_trajectory(self.cfg)
        self.rows = self.cfg.learner.batch_for(self.phase)
        # Demonstration rows fill part of each batch (not with Flow-GRPO, whose every row needs a
        # stored trajectory); with executor_rows=weighted only rows that carry weight enter.
        flow_grpo = self.keep and self.a.rl_losses.get("flow_grpo")
        self.demonstration_rows = 0 if flow_grpo else int(round(self.a.demonstration_mix * self.rows))
        self.executor_rows = self.rows - self.demonstration_rows
        self.weighted = self.a.executor_rows == "weighted" and self.demonstration_rows > 0
        self.executor_samples = self.st.executor_samples
        self.anchor_refs: dict[int, ray.ObjectRef] = {}  # update -> its batch with the anchor's targets
        self.videos = 0

    # -- rollouts: Executor actors -> judge (-> Demonstrator) -> Executor pool --------------------
    def submit_rollout(self) -> None:
        idx = self.d.rng.choice(len(self.d.tasks), size=self.cfg.train.rl_tasks, replace=False)
        s = self.cfg.sampling
        args = ([self.d.tasks[i] for i in idx], s.group_size, self.d.next_seed(), s.eta, self.keep)
        self.executors.submit(Call("sample_groups", args))

    def pump(self) -> None:
        """Move finished work one stage on: Executor actors -> judge (-> Demonstrator) -> Executor pool."""
        for _, ref, _ in self.executors.done():
            self.judge.submit(Call("score_groups", (ref,)))
        chaos = self.cfg.stream.chaos_kill_after  # chaos testing: one rollout actor killed mid-call
        if chaos and self.executors.counters["completed"] >= chaos and not self.executors.counters["injected_failures"]:
            self.executors.inject_failure()
        for _, _, groups in self.judge.done():
            if self.demo is None:
                self.finish(groups)
            else:
                for g in groups:
                    self.demo.submit(Call("distill_rewards", (g,)))
        self.take_demonstrator_results()

    def take_demonstrator_results(self, timeout: float = 0.0) -> None:
        """r_distill results go on to the Executor pool; anchor targets wait for send() to take them."""
        source = self.demo or self.anchor_pool
        for call, ref, result in source.done(timeout) if source else []:
            if call.method == "anchor_targets":
                self.anchor_refs[call.tag] = ref
            else:
                self.finish([result])

    def finish(self, groups) -> None:
        """Judged groups -> rewards -> group-relative advantages -> the Executor pool."""
        a, st = self.a, self.st
        for g in groups:
            rewards = combine_rewards(g.r_task, g.r_distill if g.r_distill.size else 0 * g.r_task,
                                      g.consistency, a.lambda_task, a.lambda_distill, a.lambda_consistency)
            adv = group_advantages(rewards, a.advantage, a.adv_eps, a.adv_clip)
            if a.credit_accepted_only:
                adv = credit_accepted_only(adv, g.accepted)
            rows = rows_with_signal(adv, a.rl_losses, a.awm_negative_scale, a.grpo_kl) if self.weighted else None
            if not self.executor_samples.add(g, adv, rows):  # a retried call that had in fact finished: counted once
                continue
            self.videos += g.size
            st.counters["executor_videos"] += g.size
            st.counters["executor_accepted"] += int(g.accepted.sum())
            st.counters["judge_errors"] += g.judge_errors
            self.d.metrics.log({"event": "group", "phase": self.phase, "version": g.version,
                                "lag": self.d.version - g.version, "task_rate": float(g.task_ok.mean()),
                                "accept_rate": float(g.accepted.mean()), "reward_mean": float(rewards.mean()),
                                "r_task_mean": float(g.r_task.mean()),
                                "r_distill_mean": float(g.r_distill.mean()) if g.r_distill.size else 0.0,
                                "consistency": float(g.consistency.mean())})
        self.d.metrics.gauge(videos_per_s_executor=self.videos / (time.time() - self.started))

    def rollout_busy(self) -> bool:
        return bool(self.executors.in_flight or self.judge.in_flight or (self.demo is not None and self.demo.in_flight))

    # -- batches to the learner ---------------------------------------------------------
    def horizon(self) -> int:
        """The adapter version the next batch will be trained at: every batch sent before it and
        not yet published (queued or in the learner's hands) applies first. A skipped (NaN) step
        publishes no version, so this can only overestimate: the bound stays strict."""
        return self.d.version + unpublished(self.st.sent[self.phase], self.d.updates_done.get(self.phase, -1))

    def can_send(self) -> bool:
        return self.st.sent[self.phase] < self.target and self.executor_samples.available(self.horizon()) >= self.executor_rows

    def send(self) -> None:
        st, d = self.st, self.d
        picks = self.executor_samples.draw(d.rng, self.executor_rows, self.horizon())
        for gid in self.executor_samples.visited:
            if gid not in st.consumed_groups:
                st.consumed_groups.append(gid)
        demos = st.demonstrations.draw(d.rng, self.rows - len(picks)) if self.demonstration_rows else []
        st.counters["rl_executor_rows"] += len(picks)
        st.counters["rl_demonstration_rows"] += len(demos)
        batch = executor_batch(st.sent[self.phase], picks, demos, d.next_seed(), self.keep)
        if self.anchor_pool is None:
            ref = ray.put(batch)
        else:  # the Demonstrator adds the anchor's targets; the learner's queue keeps it busy meanwhile
            self.anchor_pool.submit(Call("anchor_targets", (batch,), tag=batch.update))
            while batch.update not in self.anchor_refs:
                self.take_demonstrator_results(timeout=0.05)
            ref = self.anchor_refs.pop(batch.update)
            st.counters["rl_anchor_from_demonstrator"] += 1
        d.send_batch(self.learner, self.phase, ref, self.target, self.bar)

    def wait_a_little(self) -> None:
        self.d.metrics.gauge(learner_queue_depth=self.learner.depth())
        waiting = list(self.executors.in_flight) + list(self.judge.in_flight) + (list(self.demo.in_flight) if self.demo else [])
        self.d.wait_for_work(waiting, self.phase, self.bar)

    # -- the two schedules ------------------------------------------------------------
    def async_step(self) -> None:
        while self.executors.has_capacity():
            self.submit_rollout()
        self.pump()
        while self.can_send() and self.learner.has_room():
            self.send()
        self.wait_a_little()

    def sync_round(self) -> None:
        """Every Executor actor samples with the current adapter; then the learner trains on exactly those
        samples (each used ``reuse`` times) and the round waits for it."""
        for _ in range(self.executors.size):
            self.submit_rollout()
        while self.rollout_busy():
            self.pump()
            self.wait_a_little()
        while self.can_send():
            self.send()
        while self.d.updates_done.get(self.phase, -1) < self.st.sent[self.phase] - 1:
            self.wait_a_little()

    def run(self) -> None:
        d, st, phase = self.d, self.st, self.phase
        self.learner = d.open_learner(phase, d.store, self.a.rl_losses, "distill_end", self.target,
                                      self.cfg.learner.threads_for(phase))
        self.executors, self.judge = d.pool("executor"), d.pool("judge")
        self.demo = d.pool("demonstrator") if self.a.lambda_distill else None
        self.anchor_pool = d.pool("demonstrator") if self.a.anchor_on_demonstrator else None
        self.bar = d.progress(phase, self.target)
        self.started = time.time()
        step = self.sync_round if self.cfg.stream.mode == "sync" else self.async_step
        try:
            while st.sent[phase] < self.target:
                step()
            d.checkpoint(self.learner, "rl_end")
            self.log_executor_stats()
        finally:
            self.learner.stop()
            self.bar.close()
        self.wrap_up()

    def log_executor_stats(self) -> None:
        stats = self.executors.broadcast("stats")
        syncs = sum(x["syncs"] for x in stats)
        self.d.metrics.log({"event": "executor_stats", "phase": self.phase, "syncs": syncs,
                            "sync_s_mean": float(sum(x["sync_s_mean"] * x["syncs"] for x in stats) / max(1, syncs)),
                            "sync_s_median": float(np.median([x["sync_s_median"] for x in stats])),
                            "sync_s_first": max(x["sync_s_first"] for x in stats),
                            "transport": sorted({x["transport"] for x in stats}), "joins": sum(x["joins"] for x in stats)})

    def wrap_up(self) -> None:
        d, st = self.d, self.st
        d.drain_learner_metrics(self.phase)
        d.metrics.log({"event": "pool_stats", "phase": self.phase, **self.executor_samples.counters})
        st.counters.update({f"pool_{k}": v for k, v in self.executor_samples.counters.items()})
        self.executor_samples.counters.clear()
        print(f"rl: {st.sent[self.phase]} updates, adapter v{d.version}; Executor videos {st.counters['executor_videos']} "
              f"(judge-accepted {st.counters['executor_accepted']}), stale groups dropped "
              f"{st.counters['pool_stale_dropped_groups']}", flush=True)
