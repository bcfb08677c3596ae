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


def unpublished(sent: int, last_done: int) -> int:
    """Batches sent to the learner whose update has not been reported yet (update indices start at 0)."""
    return max(0, sent - (last_done + 1))


def _keeps_trajectory(cfg) -> bool:
    losses = cfg.algorithm.rl_losses
    return bool(losses.get("flow_grpo") or losses.get("on_policy_distill") or cfg.algorithm.lambda_distill)


def run_rl(d) -> None:
    cfg, st, phase = d.cfg, d.state, "rl"
    target, a = cfg.train.rl_updates, cfg.algorithm
    keep, rows = _keeps_trajectory(cfg), cfg.learner.batch_for(phase)
    teacher_rows = 0 if keep and a.rl_losses.get("flow_grpo") else int(round(a.teacher_mix * rows))
    policy_rows = rows - teacher_rows
    # Only rows that carry weight enter a batch, where teacher rows can fill the rest (not with
    # Flow-GRPO, whose every row needs a stored trajectory).
    weighted = a.policy_rows == "weighted" and teacher_rows > 0
    learner = d.open_learner(phase, d.store, a.rl_losses, "distill_end", target, cfg.learner.threads_for(phase))
    samplers, judge = d.pool("sampler"), d.pool("judge")
    demo = d.pool("demonstrator") if a.lambda_distill else None
    anchor_pool = d.pool("demonstrator") if a.anchor_on_demonstrator else None
    anchor_refs: dict[int, ray.ObjectRef] = {}  # update -> its batch with the anchor's targets
    pool = st.policy
    bar = d._progress(phase, target)
    started, videos, sync_mode = time.time(), 0, cfg.stream.mode == "sync"
    G = cfg.sampling.group_size

    def finish(groups) -> None:
        nonlocal videos
        for g in groups:
            rewards = combine_rewards(g.r_task, g.r_distill if g.r_distill.size else 0 * g.r_task,
                                      g.consistency, a.lambda_task, a.lambda_distill, a.lambda_consistency)
            adv = group_advantages(rewards, a.advantage, a.adv_eps, a.adv_clip)
            if a.credit_accepted_only:
                adv = credit_accepted_only(adv, g.accepted)
            rows = rows_with_signal(adv, a.rl_losses, a.awm_negative_scale, a.grpo_kl) if weighted else None
            if not pool.add(g, adv, rows):  # a retried call that had in fact finished: counted once
                continue
            videos += g.size
            st.counters["policy_videos"] += g.size
            st.counters["policy_accepted"] += int(g.accepted.sum())
            st.counters["judge_errors"] += g.judge_errors
            d.metrics.log({"event": "group", "phase": phase, "version": g.version, "lag": d.version - g.version,
                           "task_rate": float(g.task_ok.mean()), "accept_rate": float(g.accepted.mean()),
                           "reward_mean": float(rewards.mean()), "r_task_mean": float(g.r_task.mean()),
                           "r_distill_mean": float(g.r_distill.mean()) if g.r_distill.size else 0.0,
                           "consistency": float(g.consistency.mean())})
        d.metrics.gauge(videos_per_s_sampler=videos / (time.time() - started))

    def pump() -> None:
        """Move finished work one stage on: samplers -> judge (-> Demonstrator) -> policy pool."""
        for _, ref, _ in samplers.done():
            judge.submit(Call("score_groups", (ref,)))
        chaos = cfg.stream.chaos_kill_after
        if chaos and samplers.counters["completed"] >= chaos and not samplers.counters["injected_failures"]:
            samplers.inject_failure()
        for _, _, groups in judge.done():
            if demo is None:
                finish(groups)
            else:
                for g in groups:
                    demo.submit(Call("distill_rewards", (g,)))
        take_demonstrator_results()

    def take_demonstrator_results(timeout: float = 0.0) -> None:
        """r_distill results go on to the pool; anchor targets wait for send_batch to take them."""
        for call, ref, result in (demo or anchor_pool).done(timeout) if (demo or anchor_pool) else []:
            if call.method == "anchor_targets":
                anchor_refs[call.tag] = ref
            else:
                finish([result])

    def rollout_busy() -> bool:
        return bool(samplers.in_flight or judge.in_flight or (demo is not None and demo.in_flight))

    def submit_rollout() -> None:
        idx = d.rng.choice(len(d.tasks), size=cfg.train.rl_tasks, replace=False)
        samplers.submit(Call("sample_groups", ([d.tasks[i] for i in idx], G, d.next_seed(), cfg.sampling.eta, keep)))

    def horizon() -> int:
        """The adapter version the next batch will be trained at: every batch sent before it and
        not yet published (queued or in the learner's hands) applies first. A skipped (NaN) step
        publishes no version, so this can only overestimate: the bound stays strict."""
        return d.version + unpublished(st.sent[phase], d.updates_done.get(phase, -1))

    def send_batch() -> None:
        picks = pool.draw(d.rng, policy_rows, horizon())
        for gid in pool.visited:
            if gid not in st.consumed_groups:
                st.consumed_groups.append(gid)
        teacher = st.teacher.draw(d.rng, rows - len(picks)) if teacher_rows else []
        st.counters["rl_policy_rows"] += len(picks)
        st.counters["rl_teacher_rows"] += len(teacher)
        batch = policy_batch(st.sent[phase], picks, teacher, d.next_seed(), keep)
        if anchor_pool is None:
            learner.put(ray.put(batch))
        else:  # the Demonstrator adds the anchor's targets; the learner's queue keeps it busy meanwhile
            anchor_pool.submit(Call("anchor_targets", (batch,), tag=batch.update))
            while batch.update not in anchor_refs:
                take_demonstrator_results(timeout=0.05)
            learner.put(anchor_refs.pop(batch.update))
            st.counters["rl_anchor_from_demonstrator"] += 1
        st.sent[phase] += 1
        bar.update(1)
        if st.sent[phase] % cfg.train.checkpoint_every == 0 and st.sent[phase] < target:
            d.checkpoint(learner, f"step-{phase}-{st.sent[phase]:06d}")

    def wait_a_little() -> None:
        d.metrics.gauge(learner_queue_depth=learner.depth())
        waiting = list(samplers.in_flight) + list(judge.in_flight) + (list(demo.in_flight) if demo else [])
        d.wait_for_work(waiting, phase, bar)

    try:
        while st.sent[phase] < target:
            if sync_mode:
                # One round: every sampler samples with the current adapter; then the learner trains
                # on exactly those samples (each used ``reuse`` times) and the round waits for it.
                for _ in range(samplers.size):
                    submit_rollout()
                while rollout_busy():
                    pump()
                    wait_a_little()
                while st.sent[phase] < target and pool.available(horizon()) >= policy_rows:
                    send_batch()
                while d.updates_done.get(phase, -1) < st.sent[phase] - 1:
                    wait_a_little()
                continue
            while samplers.has_capacity():
                submit_rollout()
            pump()
            while st.sent[phase] < target and learner.has_room() and pool.available(horizon()) >= policy_rows:
                send_batch()
            wait_a_little()
        d.checkpoint(learner, "rl_end")
        stats = samplers.broadcast("stats")
        d.metrics.log({"event": "sampler_stats", "phase": phase, "syncs": sum(x["syncs"] for x in stats),
                       "sync_s_mean": float(sum(x["sync_s_mean"] * x["syncs"] for x in stats) /
                                            max(1, sum(x["syncs"] for x in stats)))})
    finally:
        learner.stop()
        bar.close()
    d._drain_learner_metrics(phase)
    d.metrics.log({"event": "pool_stats", "phase": phase, **pool.counters})
    st.counters.update({f"pool_{k}": v for k, v in pool.counters.items()})
    pool.counters.clear()
    print(f"rl: {st.sent[phase]} updates, adapter v{d.version}; policy videos {st.counters['policy_videos']} "
          f"(judge-accepted {st.counters['policy_accepted']}), stale groups dropped "
          f"{st.counters['pool_stale_dropped_groups']}", flush=True)
