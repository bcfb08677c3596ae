"""The actor pool, on small stand-in actors: the in-flight bound, retries after a crash, a dead
actor replaced (and its handle killed), a busy actor never taken for dead, bounded retries."""
import os
import time

import pytest
import ray

from actors.pool import ActorPool, Call, actor_state


@ray.remote(num_cpus=0)
class Doubler:
    def ready(self) -> bool:
        return True

    def work(self, x: int, sleep: float = 0.0, crash_once: str = "", crash_always: bool = False) -> int:
        if crash_always or (crash_once and not os.path.exists(crash_once)):
            if crash_once:
                open(crash_once, "w").close()
            os._exit(1)  # a crash, as a segfault or an OOM kill would end it
        time.sleep(sleep)
        return 2 * x


def pool(size: int, restarts: int, retries: int = 3, in_flight: int = 2) -> ActorPool:
    p = ActorPool("test", lambda: Doubler.options(max_restarts=restarts).remote(), size, in_flight, retries)
    p.wait_ready()
    return p


def results(p: ActorPool, timeout: float = 60) -> dict:
    out, start = {}, time.time()
    while p.in_flight and time.time() - start < timeout:
        for call, _, value in p.done(timeout=0.2):
            out[call.tag] = value
    return out


def test_in_flight_is_bounded_and_every_call_completes(local_ray):
    p = pool(2, restarts=0)
    for i in range(4):
        assert p.has_capacity()
        p.submit(Call("work", (i, 0.2), tag=i))
    assert not p.has_capacity() and {p.load(0), p.load(1)} == {2}
    assert results(p) == {i: 2 * i for i in range(4)} and p.counters["completed"] == 4
    p.kill()


def test_a_crashed_call_is_retried_on_the_restarted_actor(local_ray, tmp_path):
    p = pool(1, restarts=1)
    first = p.actors[0]
    p.submit(Call("work", (21, 0.0, str(tmp_path / "crashed")), tag="x"))
    assert results(p) == {"x": 42}
    assert p.counters["retried"] == 1 and p.counters["replaced"] == 0 and p.actors[0] is first
    p.kill()


@ray.remote(num_cpus=0)
class SlowStart(Doubler.__ray_actor_class__):
    def __init__(self):
        time.sleep(1.5)  # a constructor that loads models: a restart takes a while


def test_calls_sent_while_an_actor_restarts_wait_for_it_instead_of_spending_their_retries(local_ray, tmp_path):
    p = ActorPool("test", lambda: SlowStart.options(max_restarts=1).remote(), 1, max_in_flight=3, retries=1)
    p.wait_ready()
    p.submit(Call("work", (1, 0.0, str(tmp_path / "crashed")), tag="crashes"))
    for i in (2, 3):
        p.submit(Call("work", (i, 0.3), tag=i))
    assert results(p) == {"crashes": 2, 2: 4, 3: 6}
    assert p.counters["replaced"] == 0 and actor_state(p.actors[0]) == "ALIVE"
    p.kill()


def test_a_dead_actor_is_replaced_and_its_handle_killed(local_ray, tmp_path):
    p = pool(2, restarts=0)
    dead = p.actors[0]
    p.submit(Call("work", (5, 0.0, str(tmp_path / "crashed")), tag="y"))  # least loaded: actor 0
    assert results(p) == {"y": 10}
    assert p.counters["replaced"] == 1 and p.actors[0] is not dead and actor_state(dead) == "DEAD"
    assert ray.get(p.actors[0].ready.remote())
    p.kill()


def test_a_busy_actor_is_not_taken_for_dead(local_ray):
    p = pool(1, restarts=0)
    p.submit(Call("work", (1, 5.0), tag="slow"))
    time.sleep(0.5)
    started = time.time()
    p._replace_if_dead(0)  # the check reads Ray's actor table: no waiting on the busy actor
    assert time.time() - started < 1.0 and p.counters["replaced"] == 0
    assert results(p) == {"slow": 2}
    p.kill()


def test_retries_are_bounded(local_ray):
    p = pool(1, restarts=0, retries=1)
    p.submit(Call("work", (1, 0.0, "", True), tag="doomed"))
    with pytest.raises(RuntimeError, match="failed 2 times"):
        results(p)
    assert p.counters["replaced"] == 1  # the retry ran on a fresh actor; the last failure ends the call
    p.kill()
