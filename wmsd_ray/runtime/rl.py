"""The on-policy phase: Executor samplers -> judge (-> Demonstrator r_distill) -> advantages ->
policy pool -> learner (distillation + RL) -> adapter versions back to the samplers.

``stream.mode=async`` keeps every sampler busy while the learner trains (bounded by
``max_in_flight`` per actor and by the staleness bound on what the learner may use);
``sync`` alternates strictly: sample with the current adapter, train on it, repeat.
"""
from __future__ import annotations

import time

import ray

from actors.pool import Call
from wmsd_ray.algorithms import combine_rewards, credit_accepted_only, group_advantages, rows_with_signal

from .buffers import policy_batch
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
        # Teacher rows fill part of each batch (not with Flow-GRPO, whose every row needs a
        # stored trajectory); with policy_rows=weighted only rows that carry weight enter.
        self.teacher_rows = 0 if self.keep and self.a.rl_losses.get("flow_grpo") else int(round(self.a.teacher_mix * self.rows))
        self.policy_rows = self.rows - self.teacher_rows
        self.weighted = self.a.policy_rows == "weighted" and self.teacher_rows > 0
        self.policy = self.st.policy
        self.anchor_refs: dict[int, ray.ObjectRef] = {}  # update -> its batch with the anchor's targets
        self.videos, self.started = 0, time.time()

    # -- rollouts: samplers -> judge (-> Demonstrator) -> policy pool --------------------
    def submit_rollout(self) -> None:
        idx = self.d.rng.choice(len(self.d.tasks), size=self.cfg.train.rl_tasks, replace=False)
        s = self.cfg.sampling
        args = ([self.d.tasks[i] for i in idx], s.group_size, self.d.next_seed(), s.eta, self.keep)
        self.samplers.submit(Call("sample_groups", args))

    def pump(self) -> None:
        """Move finished work one stage on: samplers -> judge (-> Demonstrator) -> policy pool."""
        for _, ref, _ in self.samplers.done():
            self.judge.submit(Call("score_groups", (ref,)))
        chaos = self.cfg.stream.chaos_kill_after  # chaos testing: one rollout actor killed mid-call
        if chaos and self.samplers.counters["completed"] >= chaos and not self.samplers.counters["injected_failures"]:
            self.samplers.inject_failure()
        for _, _, groups in self.judge.done():
            if self.demo is None:
                self.finish(groups)
            else:
                for g in groups:
                    self.demo.submit(Call("distill_rewards", (g,)))
        self.take_demonstrator_results()

    def take_demonstrator_results(self, timeout: float = 0.0) -> None:
        """r_distill results go on to the policy pool; anchor targets wait for send() to take them."""
        source = self.demo or self.anchor_pool
        for call, ref, result in source.done(timeout) if source else []:
            if call.method == "anchor_targets":
                self.anchor_refs[call.tag] = ref
            else:
                self.finish([result])

    def finish(self, groups) -> None:
        """Judged groups -> rewards -> group-relative advantages -> the policy pool."""
        a, st = self.a, self.st
        for g in groups:
            rewards = combine_rewards(g.r_task, g.r_distill if g.r_distill.size else 0 * g.r_task,
                                      g.consistency, a.lambda_task, a.lambda_distill, a.lambda_consistency)
            adv = group_advantages(rewards, a.advantage, a.adv_eps, a.adv_clip)
            if a.credit_accepted_only:
                adv = credit_accepted_only(adv, g.accepted)
            rows = rows_with_signal(adv, a.rl_losses, a.awm_negative_scale, a.grpo_kl) if self.weighted else None
            if not self.policy.add(g, adv, rows):  # a retried call that had in fact finished: counted once
                continue
            self.videos += g.size
            st.counters["policy_videos"] += g.size
            st.counters["policy_accepted"] += int(g.accepted.sum())
            st.counters["judge_errors"] += g.judge_errors
            self.d.metrics.log({"event": "group", "phase": self.phase, "version": g.version,
                                "lag": self.d.version - g.version, "task_rate": float(g.task_ok.mean()),
                                "accept_rate": float(g.accepted.mean()), "reward_mean": float(rewards.mean()),
                                "r_task_mean": float(g.r_task.mean()),
                                "r_distill_mean": float(g.r_distill.mean()) if g.r_distill.size else 0.0,
                                "consistency": float(g.consistency.mean())})
        self.d.metrics.gauge(videos_per_s_sampler=self.videos / (time.time() - self.started))

    def rollout_busy(self) -> bool:
        return bool(self.samplers.in_flight or self.judge.in_flight or (self.demo is not None and self.demo.in_flight))

    # -- batches to the learner ---------------------------------------------------------
    def horizon(self) -> int:
        """The adapter version the next batch will be trained at: every batch sent before it and
        not yet published (queued or in the learner's hands) applies first. A skipped (NaN) step
        publishes no version, so this can only overestimate: the bound stays strict."""
        return self.d.version + unpublished(self.st.sent[self.phase], self.d.updates_done.get(self.phase, -1))

    def can_send(self) -> bool:
        return self.st.sent[self.phase] < self.target and self.policy.available(self.horizon()) >= self.policy_rows

    def send(self) -> None:
        st, d = self.st, self.d
        picks = self.policy.draw(d.rng, self.policy_rows, self.horizon())
        for gid in self.policy.visited:
            if gid not in st.consumed_groups:
                st.consumed_groups.append(gid)
        teacher = st.teacher.draw(d.rng, self.rows - len(picks)) if self.teacher_rows else []
        st.counters["rl_policy_rows"] += len(picks)
        st.counters["rl_teacher_rows"] += len(teacher)
        batch = policy_batch(st.sent[self.phase], picks, teacher, d.next_seed(), self.keep)
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
        waiting = list(self.samplers.in_flight) + list(self.judge.in_flight) + (list(self.demo.in_flight) if self.demo else [])
        self.d.wait_for_work(waiting, self.phase, self.bar)

    # -- the two schedules ------------------------------------------------------------
    def async_step(self) -> None:
        while self.samplers.has_capacity():
            self.submit_rollout()
        self.pump()
        while self.can_send() and self.learner.has_room():
            self.send()
        self.wait_a_little()

    def sync_round(self) -> None:
        """Every sampler samples with the current adapter; then the learner trains on exactly those
        samples (each used ``reuse`` times) and the round waits for it."""
        for _ in range(self.samplers.size):
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
        self.samplers, self.judge = d.pool("sampler"), d.pool("judge")
        self.demo = d.pool("demonstrator") if self.a.lambda_distill else None
        self.anchor_pool = d.pool("demonstrator") if self.a.anchor_on_demonstrator else None
        self.bar = d.progress(phase, self.target)
        self.started = time.time()
        step = self.sync_round if self.cfg.stream.mode == "sync" else self.async_step
        try:
            while st.sent[phase] < self.target:
                step()
            d.checkpoint(self.learner, "rl_end")
            self.log_sampler_stats()
        finally:
            self.learner.stop()
            self.bar.close()
        self.wrap_up()

    def log_sampler_stats(self) -> None:
        stats = self.samplers.broadcast("stats")
        syncs = sum(x["syncs"] for x in stats)
        self.d.metrics.log({"event": "sampler_stats", "phase": self.phase, "syncs": syncs,
                            "sync_s_mean": float(sum(x["sync_s_mean"] * x["syncs"] for x in stats) / max(1, syncs))})

    def wrap_up(self) -> None:
        d, st = self.d, self.st
        d.drain_learner_metrics(self.phase)
        d.metrics.log({"event": "pool_stats", "phase": self.phase, **self.policy.counters})
        st.counters.update({f"pool_{k}": v for k, v in self.policy.counters.items()})
        self.policy.counters.clear()
        print(f"rl: {st.sent[self.phase]} updates, adapter v{d.version}; policy videos {st.counters['policy_videos']} "
              f"(judge-accepted {st.counters['policy_accepted']}), stale groups dropped "
              f"{st.counters['pool_stale_dropped_groups']}", flush=True)
