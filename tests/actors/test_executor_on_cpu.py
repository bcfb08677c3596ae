"""The Executor sampler: a newer adapter is picked up between the groups of one call, every
group is tagged with the version that sampled it, and a repeated call repeats its groups."""
import numpy as np
import pytest
import ray
import torch

from actors.models import ExecutorWorker
from actors.roles import config_payload
from learners.weights import WeightStoreActor
from tests.conftest import tiny_config
from wmsd_ray.models.lora import export_adapter
from wmsd_ray.world.benchmark import load_benchmark


class PublishesWhileSampling(ExecutorWorker):
    """After each weight check, a 'learner' publishes the next version (a perturbed adapter):
    the real store, the real load path; only the timing is arranged."""

    def sync(self) -> int:
        version = super().sync()
        arrays = {k: v + 0.05 for k, v in export_adapter(self.backbone).items()}
        ray.get(self.store.publish.remote(version + 1, arrays))
        return version


@pytest.fixture(scope="module")
def tasks():
    return load_benchmark(tiny_config().world)[:3]


def _sampler(cls, store):
    threads = torch.get_num_threads()
    try:
        return cls(config_payload(tiny_config()), store)
    finally:
        torch.set_num_threads(threads)  # the worker limits its own process; this is the test's


def test_sampler_loads_a_newer_adapter_between_groups_of_one_call(local_ray, tasks):
    sampler = _sampler(PublishesWhileSampling, WeightStoreActor.remote())
    groups = sampler.sample_groups(tasks, 2, seed=5, eta=0.7, keep=True)
    assert [g.version for g in groups] == [0, 1, 2]
    assert [g.group_id for g in groups] == ["executor-5-0", "executor-5-1", "executor-5-2"]
    assert sampler.stats()["syncs"] == 2
    # The same call on a sampler that never updates: group 0 matches (same adapter, same noise);
    # group 1 differs, because the adapter it met did.
    still = _sampler(ExecutorWorker, None).sample_groups(tasks[:2], 2, seed=5, eta=0.7, keep=True)
    assert [g.version for g in still] == [0, 0]
    assert np.array_equal(still[0].x0, groups[0].x0) and not np.allclose(still[1].x0, groups[1].x0)
    g = groups[0]
    k = g.sigmas.shape[0] - 1
    assert g.latents.shape[:2] == (k + 1, 2) and g.log_probs.shape == (k, 2) and g.log_probs.dtype == np.float32


def test_a_repeated_call_repeats_its_groups(local_ray, tasks):
    sampler = _sampler(ExecutorWorker, None)
    first = sampler.sample_groups(tasks[:2], 2, seed=9, eta=0.7, keep=False)
    second = sampler.sample_groups(tasks[:2], 2, seed=9, eta=0.7, keep=False)
    for a, b in zip(first, second):
        assert a.group_id == b.group_id and np.array_equal(a.x0, b.x0)
    assert not np.allclose(first[0].x0, first[1].x0)  # groups of one call get their own noise


def test_evaluation_calls_carry_their_adapter_through_a_killed_sampler(local_ray, tasks):
    """Executor videos sampled with the adapter each call carries: killing a sampler during
    evaluation (Ray restarts it bare, or the pool replaces it) gives the very same videos."""
    from actors.models import ExecutorActor
    from actors.pool import ActorPool, Call

    probe = _sampler(ExecutorWorker, None)
    arrays = {k: v + 0.3 * np.random.default_rng(0).standard_normal(v.shape).astype(np.float32)
              for k, v in export_adapter(probe.backbone).items()}
    adapter = ray.put(arrays)
    all_tasks = load_benchmark(tiny_config().world)[:8]

    def evaluate(kill: bool) -> tuple:
        pool = ActorPool("executor", lambda: ExecutorActor.options(max_restarts=1).remote(config_payload(tiny_config())),
                         2, 2, 3)
        pool.wait_ready()
        for start in range(0, 8, 2):
            pool.submit(Call("sample_videos", (all_tasks[start:start + 2], "task", 11 + start, adapter, "rl_end"),
                             tag=start))
        if kill:
            assert pool.inject_failure()
        parts = {}
        while pool.in_flight:
            for call, _, videos in pool.done(timeout=0.2):
                parts[call.tag] = videos
        pool.kill()
        return np.concatenate([parts[k] for k in sorted(parts)]), pool.counters

    calm, _ = evaluate(kill=False)
    disturbed, counters = evaluate(kill=True)
    assert counters["injected_failures"] == 1 and counters["retried"] >= 1
    assert np.array_equal(calm, disturbed)
    bare = probe.sample_videos(all_tasks[:2], "task", 11)  # the Demonstrator's weights: other videos
    assert not np.array_equal(bare, calm[:2])
