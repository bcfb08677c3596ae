"""The run's memory figure: RSS counts a shared page in every process, PSS splits it."""
import mmap
import multiprocessing as mp

import pytest

from wmsd_ray.runtime.cluster import MemoryMonitor

MB = 2 ** 20


def _touch_and_wait(buf, ready, done):
    _ = sum(buf[i] for i in range(0, len(buf), mmap.PAGESIZE))  # map every shared page
    ready.set()
    done.wait(30)


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_shared_pages_count_once_in_the_pss_sum_and_in_every_process_in_the_rss_sum():
    size = 192 * MB
    buf = mmap.mmap(-1, size)  # anonymous shared memory, inherited by forked children
    for i in range(0, size, mmap.PAGESIZE):
        buf[i] = 1
    ctx = mp.get_context("fork")
    done = ctx.Event()
    children = []
    for _ in range(2):
        ready = ctx.Event()
        p = ctx.Process(target=_touch_and_wait, args=(buf, ready, done))
        p.start()
        assert ready.wait(30)
        children.append(p)
    monitor = MemoryMonitor(every=3600)  # one sample at start; take ours explicitly below
    try:
        monitor.sample()
    finally:
        done.set()
        for p in children:
            p.join(30)
        monitor.stop()
    rss, pss = monitor.peak_bytes, monitor.peak_pss_bytes
    # Three processes map the same 192 MB: RSS sees it three times, PSS once.
    assert rss - pss > 1.5 * size, (rss / MB, pss / MB)
    assert pss <= rss
    assert monitor.peak_pss_gb == pss / 2 ** 30 and monitor.peak_gb == rss / 2 ** 30


JOINED_DRIVER = """
import json, os, sys
import ray
from wmsd_ray.runtime.cluster import MemoryMonitor
MB = 2 ** 20
ray.init(address=sys.argv[1], log_to_driver=False)

@ray.remote(num_cpus=0)
class Holder:
    def __init__(self, mb):
        self.block = bytearray(mb * MB)  # resident: bytearray zero-fills its pages

    def pid(self):
        return os.getpid()

here = Holder.options(resources={"here": 1}).remote(256)
there = Holder.options(resources={"elsewhere": 1}).remote(8)
ray.get([here.pid.remote(), there.pid.remote()])
monitor = MemoryMonitor(every=3600)
before = monitor.sample(pss=False)
monitor.watch_job()
after = monitor.sample(pss=False)
monitor.stop()
print(json.dumps({"before": before, "after": after, "scope": monitor.scope()}))
"""


@pytest.mark.slow
def test_a_joined_job_measures_its_workers_on_this_node_and_names_those_elsewhere():
    """A driver that joins a cluster (as ``ray job submit`` runs it) is not the parent of the
    workers Ray starts for it. Two raylets on one machine stand for two nodes: the monitor reads
    the actor on the driver's node, and names the one on the other node as not measured."""
    import json
    import os
    import subprocess
    import sys

    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": True,
                                                            "resources": {"here": 1}})
    try:
        cluster.add_node(num_cpus=1, resources={"elsewhere": 1})
        proc = subprocess.run([sys.executable, "-c", JOINED_DRIVER, cluster.address], capture_output=True,
                              text=True, timeout=180)
    finally:
        cluster.shutdown()
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["after"] - out["before"] > 200 * MB, out  # the actor on this node is counted
    assert "not measured: 1 worker processes on 1 other node(s)" in out["scope"], out
    assert "state API failed" not in out["scope"], out
