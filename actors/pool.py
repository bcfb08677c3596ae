"""A fault-tolerant actor pool: bounded in-flight calls per actor, restarts, whole-call retries.

Each call is a unit of work (a rollout group batch, a judge batch). When its actor dies the
call fails with a Ray actor error; the pool counts it and resubmits the same call, with the same
seed, so a retried group is the group it would have been. Whether the actor is gone for good
is read from Ray's actor table (no call to the actor, so a busy one is never taken for dead):
a restarting actor is kept (Ray's ``max_restarts``) and waited for only while its restart lasts,
a dead one is killed (its resources released) and replaced by a fresh one. In the spirit of
RLlib's FaultTolerantActorManager, kept to what the driver needs.
"""
from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

log = logging.getLogger(__name__)
ACTOR_ERRORS = (RayActorError, ActorDiedError, ActorUnavailableError)
RESTART_WAIT_S = 120.0  # longest wait for Ray to restart an actor (its constructor loads models) before replacing it


@dataclass
class Call:
    method: str
    args: tuple
    tag: Any = None  # the caller's bookkeeping (what to do with the result)
    attempts: int = 0


@dataclass
class ActorPool:
    """``make()`` builds one actor; ``size`` of them; at most ``max_in_flight`` calls each."""

    name: str
    make: Callable[[], Any]
    size: int
    max_in_flight: int = 2
    retries: int = 3
    actors: list = field(default_factory=list)
    in_flight: dict = field(default_factory=dict)  # ObjectRef -> (actor index, Call)
    counters: Counter = field(default_factory=Counter)
    _rr: Any = None

    def __post_init__(self):
        self.actors = [self.make() for _ in range(self.size)]
        self._rr = itertools.cycle(range(self.size))

    def wait_ready(self) -> None:
        ray.get([a.ready.remote() for a in self.actors])

    def load(self, i: int) -> int:
        return sum(1 for a, _ in self.in_flight.values() if a == i)

    def has_capacity(self) -> bool:
        return len(self.in_flight) < self.size * self.max_in_flight

    def submit(self, call: Call) -> ray.ObjectRef:
        i = min(range(self.size), key=lambda k: (self.load(k), next(self._rr)))
        ref = getattr(self.actors[i], call.method).remote(*call.args)
        self.in_flight[ref] = (i, call)
        self.counters["submitted"] += 1
        return ref

    def broadcast(self, method: str, *args) -> list:
        """The same call on every actor; one that is restarting is waited for (or replaced)."""
        out = []
        for i in range(self.size):
            for attempt in range(self.retries + 1):
                try:
                    out.append(ray.get(getattr(self.actors[i], method).remote(*args)))
                    break
                except ACTOR_ERRORS as e:
                    self.counters["actor_failures"] += 1
                    if attempt == self.retries:
                        raise RuntimeError(f"{self.name}: {method} failed on actor {i}: {e}") from e
                    self._replace_if_dead(i)
        return out

    def done(self, timeout: float = 0.0) -> list[tuple[Call, ray.ObjectRef, Any]]:
        """Finished calls as (call, ref, result): the ref can be handed on to the next actor
        without a copy. Failed calls are retried (or raised once out of retries)."""
        if not self.in_flight:
            return []
        ready, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=timeout)
        out = []
        for ref in ready:
            i, call = self.in_flight.pop(ref)
            try:
                out.append((call, ref, ray.get(ref)))
                self.counters["completed"] += 1
            except ACTOR_ERRORS as e:
                self._recover(i, call, e)
        return out

    def _recover(self, i: int, call: Call, error: Exception) -> None:
        self.counters["actor_failures"] += 1
        call.attempts += 1
        log.warning("%s actor %d failed on %s (attempt %d): %s", self.name, i, call.method, call.attempts,
                    type(error).__name__)
        if call.attempts > self.retries:
            raise RuntimeError(f"{self.name}: {call.method} failed {call.attempts} times; last error: {error}") from error
        self._replace_if_dead(i)
        self.counters["retried"] += 1
        self.submit(call)

    def _replace_if_dead(self, i: int) -> None:
        """A restarting actor is waited for (Ray fails calls sent to it meanwhile, so resubmitting at
        once would spend every retry in milliseconds); a dead one (its restarts spent) is replaced."""
        state, deadline = actor_state(self.actors[i]), time.monotonic() + RESTART_WAIT_S
        while state not in ("ALIVE", "DEAD") and time.monotonic() < deadline:
            time.sleep(0.1)
            state = actor_state(self.actors[i])
        if state != "ALIVE":
            ray.kill(self.actors[i], no_restart=True)  # release whatever the handle still holds
            self.actors[i] = self.make()
            self.counters["replaced"] += 1

    def inject_failure(self) -> bool:
        """Chaos testing: kill (Ray may restart) the actor of an in-flight call, as a crash would."""
        if not self.in_flight:
            return False
        i, _ = next(iter(self.in_flight.values()))
        ray.kill(self.actors[i], no_restart=False)
        self.counters["injected_failures"] += 1
        return True

    def kill(self) -> None:
        for a in self.actors:
            ray.kill(a, no_restart=True)


def actor_state(actor) -> str:
    """ALIVE, RESTARTING, DEAD, ... from Ray's actor table (the GCS; no call to the actor)."""
    from ray._private.state import actors

    try:
        return str(actors(actor._actor_id.hex()).get("State", "DEAD"))
    except Exception:  # the table does not know it: treat as gone
        return "DEAD"
