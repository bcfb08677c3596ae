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
from learners.group import LearnerGroup
from wmsd_ray.algorithms import combine_rewards, group_advantages

from .buffers import policy_batch


def _keeps_trajectory(cfg) -> bool:
    losses = cfg.algorithm.rl_losses
    return bool(losses.get("flow_grpo") or losses.get("on_policy_distill") or cfg.algorithm.lambda_distill)


def run_rl(d) -> None:
    cfg, st, phase = d.cfg, d.state, "rl"
    target, a = cfg.train.rl_updates, cfg.algorithm
    keep = _keeps_trajectory(cfg)
    teacher_rows = 0 if keep and a.rl_losses.get("flow_grpo") else int(round(a.teacher_mix * cfg.learner.batch_size))
    policy_rows = cfg.learner.batch_size - teacher_rows
    learner = LearnerGroup(cfg, d.store, a.rl_losses, d.run_dir / "ray_train", phase,
                           resume=d.learner_resume_dir(phase, "distill_end"))
    samplers, judge = d.pool("sampler"), d.pool("judge")
    demo = d.pool("demonstrator") if a.lambda_distill else None
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
            pool.add(g, adv)
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

    def learner_idle() -> bool:
        return learner.depth() == 0 and d.version >= st.counters["rl_applied_target"]

    try:
        while st.sent[phase] < target:
            want_more = pool.available(d.version) < policy_rows
            may_sample = (not sync_mode) or (want_more and learner_idle() and not samplers.in_flight)
            while may_sample and samplers.has_capacity() and (not sync_mode or pool.available(d.version) < policy_rows):
                idx = d.rng.choice(len(d.tasks), size=cfg.train.rl_tasks, replace=False)
                samplers.submit(Call("sample_groups", ([d.tasks[i] for i in idx], G, d.next_seed(),
                                                       cfg.sampling.eta, keep)))
                if sync_mode:
                    break
            for _, ref, _ in samplers.done():
                judge.submit(Call("score_groups", (ref,)))
            for _, _, groups in judge.done():
                if demo is None:
                    finish(groups)
                else:
                    for g in groups:
                        demo.submit(Call("distill_rewards", (g,)))
            if demo is not None:
                for _, _, g in demo.done():
                    finish([g])
            busy = bool(samplers.in_flight or judge.in_flight or (demo and demo.in_flight))
            while (st.sent[phase] < target and learner.has_room() and pool.available(d.version) >= policy_rows
                   and not (sync_mode and busy)):
                picks = pool.draw(d.rng, policy_rows, d.version)
                for gid in dict.fromkeys(g.group_id for g, _, _ in picks):
                    if gid not in st.consumed_groups:
                        st.consumed_groups.append(gid)
                teacher = st.teacher.draw(d.rng, teacher_rows) if teacher_rows else []
                batch = policy_batch(st.sent[phase], picks, teacher, d.next_seed(), keep)
                learner.put(ray.put(batch))
                st.sent[phase] += 1
                st.counters["rl_applied_target"] = d.version + 1 if sync_mode else 0
                bar.update(1)
                if st.sent[phase] % cfg.train.checkpoint_every == 0 and st.sent[phase] < target:
                    d.checkpoint(learner, f"step-{phase}-{st.sent[phase]:06d}")
                if sync_mode:
                    break
            d.metrics.gauge(learner_queue_depth=learner.depth())
            d._drain_learner_metrics(phase, bar)
            waiting = list(samplers.in_flight) + list(judge.in_flight) + (list(demo.in_flight) if demo else [])
            ray.wait(waiting or [d.store.ready.remote()], num_returns=1, timeout=0.05)
        d.checkpoint(learner, "rl_end")
    finally:
        learner.stop()
        bar.close()
    d._drain_learner_metrics(phase)
    st.counters.update({f"pool_{k}": v for k, v in pool.counters.items()})
    pool.counters.clear()
    print(f"rl: {st.sent[phase]} updates, adapter v{d.version}; policy videos {st.counters['policy_videos']} "
          f"(judge-accepted {st.counters['policy_accepted']}), stale groups dropped "
          f"{st.counters['pool_stale_dropped_groups']}", flush=True)
