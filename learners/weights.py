"""The weight store: where the learner publishes adapter versions and Executor actors pick them up.

Rank 0 of the learner sends the adapter (numpy, adapter only when LoRA) with its version;
the store puts it into the object store itself, so the store owns it and it outlives the
learner workers of a phase. Executor actors ask for anything newer than what they hold, between
groups, and read it zero-copy. The store also carries the
learner's per-update metrics and checkpoint acknowledgements back to the driver. With
``learner.weight_sync=collective`` the arrays travel over a process group instead
(``learners/collective.py``): the store then only announces versions and introduces the two ends.
"""
from __future__ import annotations

import ray


class WeightStore:
    def __init__(self):
        self.version = 0
        self.ref = None  # [ObjectRef]: wrapped so Ray never resolves it on the way in
        self.metrics: list[dict] = []
        self.acks: set[str] = set()  # checkpoints written and not yet asked about
        self.announced = 0  # the newest version an Executor can have now (stored, or sent by the sender)
        self.sender_info: dict | None = None  # the collective sender's address, while it runs
        self.joins: list[str] = []  # Executor actors waiting for the sender to connect them

    def ready(self) -> bool:
        return True

    def publish(self, version: int, arrays: dict | None, metrics: dict | None = None) -> None:
        if arrays is not None and (self.ref is None or version > self.version):
            self.version, self.ref = version, [ray.put(arrays)]
            self.announced = max(self.announced, version)
        if metrics:
            self.metrics.append(metrics)

    def latest(self, have: int):
        """(version, [ref]) if newer than ``have``, else None."""
        if self.ref is None or self.version <= have:
            return None
        return self.version, self.ref

    def newest_version(self) -> int:
        return self.announced

    def announce(self, version: int) -> None:
        """The collective sender: ``version`` has been sent to every connected actor."""
        self.announced = max(self.announced, version)

    def set_sender(self, info: dict) -> None:
        self.sender_info, self.joins = info, []

    def clear_sender(self, sender_id: str) -> None:
        if self.sender_info is not None and self.sender_info["id"] == sender_id:
            self.sender_info, self.joins = None, []

    def sender(self) -> dict | None:
        return self.sender_info

    def join(self, actor_id: str) -> None:
        self.joins.append(actor_id)

    def take_joins(self) -> list[str]:
        out, self.joins = self.joins, []
        return out

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
