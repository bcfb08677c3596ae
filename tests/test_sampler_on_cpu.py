"""The Executor sampler: a newer adapter is picked up between the groups of one call, every
group is tagged with the version that sampled it, and a repeated call repeats its groups."""
import numpy as np
import pytest
import ray
import torch

from actors.models import SamplerWorker
from actors.roles import config_payload
from learners.weights import WeightStoreActor
from wmsd_ray.models.lora import export_adapter
from wmsd_ray.world.benchmark import load_benchmark

from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


class PublishesWhileSampling(SamplerWorker):
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
    still = _sampler(SamplerWorker, None).sample_groups(tasks[:2], 2, seed=5, eta=0.7, keep=True)
    assert [g.version for g in still] == [0, 0]
    assert np.array_equal(still[0].x0, groups[0].x0) and not np.allclose(still[1].x0, groups[1].x0)
    g = groups[0]
    k = g.sigmas.shape[0] - 1
    assert g.latents.shape[:2] == (k + 1, 2) and g.log_probs.shape == (k, 2) and g.log_probs.dtype == np.float32


def test_a_repeated_call_repeats_its_groups(local_ray, tasks):
    sampler = _sampler(SamplerWorker, None)
    first = sampler.sample_groups(tasks[:2], 2, seed=9, eta=0.7, keep=False)
    second = sampler.sample_groups(tasks[:2], 2, seed=9, eta=0.7, keep=False)
    for a, b in zip(first, second):
        assert a.group_id == b.group_id and np.array_equal(a.x0, b.x0)
    assert not np.allclose(first[0].x0, first[1].x0)  # groups of one call get their own noise
