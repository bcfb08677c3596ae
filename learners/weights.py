"""The weight store: where the learner publishes adapter versions and Executor actors pick them up.

Rank 0 of the learner sends the adapter (numpy, adapter only when LoRA) with its version;
the store puts it into the object store itself, so the store owns it and it outlives the
learner workers of a phase. Executor actors ask for anything newer than what they hold, between
groups, and read it zero-copy. The store also carries the
learner's per-update metrics and checkpoint acknowledgements back to the driver.
"""
from __future__ import annotations

import ray


class WeightStore:
    def __init__(self):
        self.version = 0
        self.ref = None  # [ObjectRef]: wrapped so Ray never resolves it on the way in
        self.metrics: list[dict] = []
        self.acks: set[str] = set()  # checkpoints written and not yet asked about

    def ready(self) -> bool:
        return True

    def publish(self, version: int, arrays: dict | None, metrics: dict | None = None) -> None:
        if arrays is not None and (self.ref is None or version > self.version):
            self.version, self.ref = version, [ray.put(arrays)]
        if metrics:
            self.metrics.append(metrics)

    def latest(self, have: int):
        """(version, [ref]) if newer than ``have``, else None."""
        if self.ref is None or self.version <= have:
            return None
        return self.version, self.ref

    def report(self, metrics: dict) -> None:
        self.metrics.append(metrics)

    def drain(self) -> list[dict]:
        out, self.metrics = self.metrics, []
        return out

    def ack(self, tag: str) -> None:
        self.acks.add(tag)

    def acked(self, tag: str) -> bool:
        """True once the checkpoint ``tag`` is written; the answer is given once, then forgotten."""
        if tag in self.acks:
            self.acks.discard(tag)
            return True
        return False


WeightStoreActor = ray.remote(num_cpus=0)(WeightStore)
