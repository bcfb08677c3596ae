"""Sample stores: judge filtering, staleness bound (drop or keep), reuse limit, duplicate groups."""
import numpy as np

from wmsd_ray.rollouts import RolloutGroup
from wmsd_ray.runtime.buffers import DemonstrationBuffer, ExecutorPool, Sample, executor_batch
from wmsd_ray.runtime.rl import unpublished


def _group(gid: str, version: int, g: int = 4, accepted=None) -> RolloutGroup:
    acc = np.array(accepted if accepted is not None else [True] * g)
    return RolloutGroup(
        group_id=gid, task_id="t", image=np.zeros((8, 8, 3), np.uint8), task="[red circle]: go to the centre",
        solution="The red circle slides one cell up.", family="centre", held_out=False, source="executor",
        version=version, seed=0, x0=np.full((g, 3, 2, 8, 8), version, np.float32),
        videos=np.zeros((g, 2, 8, 8, 3), np.uint8), sigmas=np.linspace(1, 0, 3).astype(np.float32), eta=0.7,
        latents=np.zeros((3, g, 3, 2, 8, 8), np.float32), log_probs=np.zeros((2, g), np.float32),
        task_ok=acc, agent_ok=np.ones(g, bool), consistency=np.ones(g, bool))


def test_teacher_buffer_keeps_only_accepted_once():
    buf = DemonstrationBuffer()
    g = _group("demo-1", -1, accepted=[True, False, True, False])
    assert buf.add(g, judge_filter=True) == 2 and len(buf) == 2
    assert buf.add(g, judge_filter=True) is None and len(buf) == 2  # the same group again (a retried call)
    assert DemonstrationBuffer().add(_group("demo-2", -1, accepted=[False] * 4), judge_filter=False) == 4


def test_policy_pool_drops_stale_groups_and_counts_them():
    pool = ExecutorPool(max_staleness=2, reuse=10)
    pool.add(_group("old", 0), np.zeros(4))
    pool.add(_group("new", 2), np.zeros(4))
    assert pool.available(version=2) == 8  # lags 2 and 0: both within the bound
    picks = pool.draw(np.random.default_rng(0), 4, version=2)
    assert {g.group_id for g, _, _ in picks} == {"new"}  # freshest unused first
    assert pool.available(version=3) == 4 and pool.counters["stale_dropped_groups"] == 1  # "old" lags 3 > 2
    assert pool.counters["stale_dropped_unused"] == 1
    picks = pool.draw(np.random.default_rng(0), 4, version=3)
    assert all(3 - g.version <= 2 for g, _, _ in picks)


def test_policy_pool_importance_policy_keeps_stale_and_reuse_retires():
    pool = ExecutorPool(max_staleness=0, reuse=2, stale_policy="importance")
    pool.add(_group("a", 0), np.arange(4, dtype=np.float32))
    assert not pool.add(_group("a", 0), np.zeros(4)) and pool.counters["duplicate_groups"] == 1
    for _ in range(2):
        picks = pool.draw(np.random.default_rng(1), 4, version=5)
        assert len(picks) == 4
    assert pool.counters["stale_kept_groups"] == 2
    assert pool.available(version=5) == 0 and pool.counters["retired_groups"] == 1
    batch = executor_batch(0, picks, [], seed=1, keep_trajectory=True)
    assert batch.latents.shape[1] == 4 and batch.log_probs.shape == (2, 4)
    assert sorted(batch.advantages.tolist()) == [0.0, 1.0, 2.0, 3.0]


def test_unpublished_counts_batches_the_learner_has_not_reported():
    assert unpublished(sent=0, last_done=-1) == 0
    assert unpublished(sent=5, last_done=-1) == 5  # all queued or in the learner's hands
    assert unpublished(sent=5, last_done=3) == 1
    assert unpublished(sent=5, last_done=4) == 0


def test_weighted_rows_keep_the_pacing_and_take_only_rows_with_signal():
    """A draw visits the same groups with or without a row mask; only masked-in rows enter the batch."""
    plain, weighted = ExecutorPool(max_staleness=5, reuse=2), ExecutorPool(max_staleness=5, reuse=2)
    positive = {}
    for i, accepted in enumerate(([True, False, False, False], [False] * 4, [False, True, True, False])):
        g = _group(f"g{i}", 0, accepted=accepted)
        adv = np.where(g.accepted, 1.0, -0.5).astype(np.float32)
        positive[g.group_id] = set(np.flatnonzero(adv > 0).tolist())
        plain.add(g, adv)
        weighted.add(g, adv, rows=adv > 0)
    assert weighted.counters["no_signal_groups"] == 1 and weighted.available(0) == plain.available(0) == 12
    for _ in range(2):
        assert len(plain.draw(np.random.default_rng(3), 8, version=0)) == 8
        picks = weighted.draw(np.random.default_rng(3), 8, version=0)
        assert weighted.visited == plain.visited and len(weighted.visited) == 2  # 8 rows: two groups
        assert {(g.group_id, r) for g, r, _ in picks} == {(gid, r) for gid in weighted.visited for r in positive[gid]}
        assert all(adv == 1.0 for _, _, adv in picks)
    # Uses 2, 1, 1 after two draws: one group retires in both pools, so the pacing is the same.
    assert weighted.available(0) == plain.available(0) == 8
    teacher = [Sample(np.zeros((8, 8, 3), np.uint8), "t", "s", np.zeros((3, 2, 8, 8), np.float16))] * 3
    batch = executor_batch(0, [], teacher, seed=1, keep_trajectory=True)  # no Executor rows: a Demonstrator batch
    assert batch.size == 3 and batch.latents.size == 0 and batch.kind == "executor"
