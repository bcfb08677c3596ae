"""The learner group on CPU over gloo: DDP and DeepSpeed, 1 and 2 workers; NaN skip; backpressure."""
import threading
import time

import numpy as np
import pytest
import ray

from learners.group import LearnerGroup
from learners.schedule import LRSchedule
from learners.weights import WeightStoreActor
from tests.conftest import tiny_config
from wmsd_ray.rollouts import TrainBatch


def _batch(cfg, update: int, n: int, nan: bool = False) -> TrainBatch:
    rng = np.random.default_rng(update)
    res, frames = cfg.world.resolution, cfg.world.frames
    images = rng.integers(0, 255, size=(n, res, res, 3), dtype=np.uint8)
    x0 = rng.uniform(-1, 1, size=(n, 3, frames, res, res)).astype(np.float32)
    if nan:  # a corrupted batch: every rank's loss is non-finite
        x0[:] = np.nan
    tasks = ["[red circle]: go to the top-left corner"] * n
    return TrainBatch(update, "demonstrator", images, tasks, ["The red circle slides one cell left."] * n, x0,
                      np.ones(n, np.float32), np.full(n, -1), np.zeros(0, np.float32), seed=update)


# DDP with one worker is the learner of every main-job test (tests/runtime/test_cli_on_cpu.py),
# DeepSpeed with one the GPU smoke's on the CPU (tests/config/test_memory_plan_on_cpu.py).
@pytest.mark.parametrize("engine,workers", [("ddp", 2), ("deepspeed", 2)])
def test_learner_trains_publishes_checkpoints_and_skips_nan(local_ray, tmp_path, engine, workers):
    cfg = tiny_config(f"learner.engine={engine}", f"learner.workers={workers}", "learner.batch_size=4",
                      "learner.zero_stage=2", "stream.queue_size=2")
    store = WeightStoreActor.remote()
    schedule = LRSchedule(peak=1e-3, total=3, kind="cosine", warmup=1, decay_fraction=1.0, min_ratio=0.1)
    group = LearnerGroup(cfg, store, {"off_policy_distill": 1.0, "anchor": 0.01}, tmp_path / "train", f"t-{engine}",
                         schedule=schedule)
    for u in range(3):
        if u == 2:
            group.set_threads(2)  # as the driver does once the Demonstrator's rollouts are all in
        group.put(ray.put(_batch(cfg, u, 4, nan=(u == 1))))
    group.checkpoint(tmp_path / "ckpt")
    group.stop()
    rows = [r for r in ray.get(store.drain.remote()) if "step_s" in r]
    assert [r["steps"] for r in rows] == [1, 2, 3]
    assert [r["version"] for r in rows] == [1, 1, 2]  # the NaN step is skipped, not applied
    assert rows[1].get("skipped_nan") == 1.0 and rows[-1]["skipped"] == 1
    # the optimizer holds the phase schedule's rate for each applied update (warm-up, then cosine)
    assert [r["lr"] for r in rows if "lr" in r] == pytest.approx([schedule.at(0), schedule.at(2)])
    assert [r["threads"] for r in rows] == [1, 1, 2]
    version, (ref,) = ray.get(store.latest.remote(0))
    adapter = ray.get(ref)
    assert version == 2 and adapter and all(np.isfinite(a).all() for a in adapter.values())
    assert any(np.abs(a).max() > 0 for k, a in adapter.items() if "lora_B" in k)  # it learned something
    digests = {p.read_text() for p in (tmp_path / "ckpt").glob("digest_rank*.txt")}
    assert len(list((tmp_path / "ckpt").glob("digest_rank*.txt"))) == workers and len(digests) == 1  # ranks agree
    assert (tmp_path / "ckpt" / "pytorch_lora_weights.safetensors").is_file()
    assert (tmp_path / "ckpt" / ("deepspeed" if engine == "deepspeed" else "optimizer.pt")).exists()


def test_resumed_learner_continues_from_its_checkpoint(local_ray, tmp_path):
    cfg = tiny_config("learner.batch_size=2")
    store = WeightStoreActor.remote()
    first = LearnerGroup(cfg, store, {"off_policy_distill": 1.0}, tmp_path / "train", "a")
    for u in range(2):
        first.put(ray.put(_batch(cfg, u, 2)))
    first.checkpoint(tmp_path / "ckpt")
    first.put(ray.put(_batch(cfg, 2, 2)))
    first.stop()
    straight = ray.get(ray.get(store.latest.remote(0))[1][0])
    store2 = WeightStoreActor.remote()
    second = LearnerGroup(cfg, store2, {"off_policy_distill": 1.0}, tmp_path / "train", "b", resume=str(tmp_path / "ckpt"))
    second.put(ray.put(_batch(cfg, 2, 2)))
    second.stop()
    version, (ref,) = ray.get(store2.latest.remote(0))
    resumed = ray.get(ref)
    assert version == 3
    for k in straight:  # same adapter and optimizer state + same batch -> the same update, exactly
        np.testing.assert_array_equal(straight[k], resumed[k])


def test_queue_bounds_what_waits_for_the_learner(local_ray, tmp_path):
    cfg = tiny_config("learner.batch_size=2", "stream.queue_size=2")
    store = WeightStoreActor.remote()
    group = LearnerGroup(cfg, store, {"off_policy_distill": 1.0}, tmp_path / "train", "bp")
    depths, put_times = [], []

    def produce():
        for u in range(6):
            group.put(ray.put(_batch(cfg, u, 2)))
            put_times.append(time.time())

    t = threading.Thread(target=produce)
    t.start()
    while t.is_alive():
        depths.append(group.depth())
        time.sleep(0.02)
    group.stop()
    assert max(depths) <= 2  # never more than queue_size batches waiting
    assert len(put_times) == 6
    rows = [r for r in ray.get(store.drain.remote()) if "step_s" in r]
    assert len(rows) == 6
