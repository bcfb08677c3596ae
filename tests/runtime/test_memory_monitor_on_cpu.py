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
