"""Adapter sync over per-actor process groups (gloo here, NCCL on GPUs): every Executor actor
gets each version bit-exactly, a killed actor breaks only its own pair, a new actor is sent the
newest version first, and a version that cannot arrive (or another adapter layout) fails the
call with a clear error."""
import os
import time

import psutil
import pytest
import ray
import torch

from actors.models import ExecutorActor, ExecutorWorker
from actors.roles import config_payload
from learners.collective import AdapterSender, flatten
from learners.weights import WeightStoreActor
from tests.conftest import tiny_config
from wmsd_ray.models.lora import lora_parameters

COLLECTIVE = ["learner.weight_sync=collective", "learner.weight_sync_timeout_s=5"]


def _actor(store, *overrides: str):
    return ExecutorActor.options(max_restarts=0).remote(config_payload(tiny_config(*COLLECTIVE, *overrides)), store)


def _adapter(actor) -> torch.Tensor:
    return ray.get(actor.__ray_call__.remote(lambda self: flatten(self.backbone)))


@torch.no_grad()
def _next_version(sender: AdapterSender, store, backbone, version: int) -> None:
    """What learner rank 0 does after an update: new weights offered, the version announced."""
    for p in lora_parameters(backbone):
        p.add_(0.01 * torch.randn_like(p))
    sender.offer(version, backbone)
    ray.get(store.publish.remote(version, None, {"version": version}))  # metrics only: no arrays
    assert _wait(lambda: ray.get(store.newest_version.remote()) == version), "the sender did not announce it"


def _wait(condition, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_actors_get_every_version_over_their_own_pair_and_a_dead_one_breaks_only_its_own(local_ray):
    threads = torch.get_num_threads()
    learner = ExecutorWorker(config_payload(tiny_config(*COLLECTIVE)), None)  # the same LoRA the learner builds
    torch.set_num_threads(threads)
    store = WeightStoreActor.remote()
    sender = AdapterSender(learner.backbone, store, timeout_s=5)
    a, b = _actor(store), _actor(store)
    for version in (1, 2):
        _next_version(sender, store, learner.backbone, version)
        assert ray.get([a.sync.remote(), b.sync.remote()]) == [version, version]
        expected = flatten(learner.backbone)
        assert torch.equal(_adapter(a), expected) and torch.equal(_adapter(b), expected)

    pid = ray.get(a.__ray_call__.remote(lambda self: os.getpid()))
    ray.kill(a, no_restart=True)
    assert _wait(lambda: not psutil.pid_exists(pid)), "the killed actor's process lives on"
    for version in (3, 4):
        _next_version(sender, store, learner.backbone, version)
        assert ray.get(b.sync.remote()) == version
    assert _wait(lambda: sender.dropped == 1), "the killed actor's pair was not dropped"
    c = _actor(store)  # a replacement joins mid-run and is sent the newest version first
    assert ray.get(c.sync.remote()) == 4
    assert torch.equal(_adapter(c), flatten(learner.backbone)) and torch.equal(_adapter(b), flatten(learner.backbone))
    stats = ray.get(c.stats.remote())
    assert stats["transport"] == "collective" and stats["joins"] == 1 and stats["syncs"] == 1
    other = _actor(store, "model.lora.rank=2")  # an Executor built with another LoRA is refused, clearly
    with pytest.raises(ray.exceptions.RayTaskError, match="adapter layout .* differs from the learner's"):
        ray.get(other.sync.remote())

    figures = sender.close()
    assert figures["collective_sends"] == 2 + 4 + 1 and figures["collective_dropped"] == 1, figures  # a: 1-2, b: 1-4, c: 4
    assert ray.get(store.sender.remote()) is None
    ray.get(store.announce.remote(5))  # announced, but no sender is left to send it
    with pytest.raises(ray.exceptions.RayTaskError, match="v5 was announced but not received"):
        ray.get(b.sync.remote())
