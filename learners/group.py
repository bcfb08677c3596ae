"""The learner group seen from the driver: a Ray Train TorchTrainer fed through a bounded queue.

``fit()`` runs in a background thread; the driver ``put``s train batches (blocking when
the queue is full: backpressure), asks for checkpoints (acknowledged through the weight
store once every earlier batch is applied) and finally stops it.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict
from pathlib import Path

import ray
from ray.util.queue import Full, Queue

from wmsd_ray.config import Config, to_dict

from .schedule import LRSchedule
from .worker import train_loop


class LearnerFailed(RuntimeError):
    """The learner group died (a worker or its node lost): the driver rewinds to its last checkpoint."""


class LearnerGroup:
    def __init__(self, cfg: Config, store, losses: dict[str, float], storage: Path, name: str, resume: str = "",
                 schedule: LRSchedule | None = None, threads: int = 0):
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.1")
        lc = cfg.learner
        self.store = store
        # One queue per rank, fed the same items in the same order: ObjectRefs must travel through
        # Ray (so every rank is a registered borrower), never through torch collectives.
        self.queues = [Queue(maxsize=cfg.stream.queue_size, actor_options={"num_cpus": 0}) for _ in range(lc.workers)]
        use_gpu = lc.gpus_per_worker > 0
        resources = {"CPU": lc.cpus_per_worker, **({"GPU": lc.gpus_per_worker} if use_gpu else {}), **lc.resources}
        self.trainer = TorchTrainer(
            train_loop,
            train_loop_config={"cfg": to_dict(cfg), "losses": dict(losses), "queues": self.queues, "store": store,
                               "resume": str(Path(resume).resolve()) if resume else "",
                               "schedule": asdict(schedule) if schedule else None,
                               "threads": threads or lc.threads},
            torch_config=TorchConfig(backend=lc.backend or ("nccl" if use_gpu else "gloo")),
            scaling_config=ScalingConfig(num_workers=lc.workers, use_gpu=use_gpu, resources_per_worker=resources),
            run_config=RunConfig(name=name, storage_path=str(Path(storage).resolve())),
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._fit, daemon=True, name=f"learner-{name}")
        self.thread.start()

    def _fit(self) -> None:
        try:
            self.trainer.fit()
        except BaseException as e:  # surfaced to the driver on its next call
            self.error = e

    def _check(self) -> None:
        if self.error is not None:
            raise LearnerFailed(f"learner group failed: {self.error}") from self.error
        if not self.thread.is_alive():
            raise LearnerFailed("learner group exited unexpectedly")

    def has_room(self) -> bool:
        return not self.queues[-1].full()

    def depth(self) -> int:
        return self.queues[-1].size()

    def _put(self, item: dict) -> None:
        """Blocks while a queue is full (checking the learner is still alive)."""
        for q in self.queues:
            while True:
                self._check()
                try:
                    q.put(item, block=True, timeout=1.0)
                    break
                except Full:  # still full after the timeout: check the learner, wait again
                    pass

    def put(self, batch_ref) -> None:
        self._put({"batch": [batch_ref]})

    def set_threads(self, threads: int) -> None:
        """From the next batch on, every rank trains with this many torch threads (in queue order)."""
        self._put({"threads": int(threads)})

    def checkpoint(self, directory: Path, timeout: float = 600.0) -> None:
        tag = str(Path(directory).resolve())  # the workers' working directory is not the driver's
        self._put({"checkpoint": tag})
        deadline = time.time() + timeout
        while not ray.get(self.store.acked.remote(tag)):
            self._check()
            if time.time() > deadline:
                raise TimeoutError(f"learner did not checkpoint to {tag} within {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.thread.is_alive() and self.error is None:
            self._put({"stop": True})
            self.thread.join()
        for q in self.queues:
            ray.kill(q.actor)
        if self.error is not None:
            raise LearnerFailed(f"learner group failed: {self.error}") from self.error
