"""Connecting to Ray: a local cluster with its dashboard, or an existing one by address.

Locally Ray 2.60's token auth is switched off (``RAY_AUTH_MODE=disabled``) so the dashboard
opens in a browser without a token; on a cluster the address (``--address`` / ``RAY_ADDRESS``)
decides and the cluster's own auth applies. A background sampler records peak memory of
the processes that run the job (``MemoryMonitor``).
"""
from __future__ import annotations

import json
import os
import threading
import time

import psutil
import ray

from ..config import Config


def connect(cfg: Config, address: str = "") -> dict:
    address = address or cfg.ray.address or os.environ.get("RAY_ADDRESS", "")
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.1")
    runtime_env = {"env_vars": {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1", "TOKENIZERS_PARALLELISM": "false"}}
    if address:
        # A submitted job's runtime env applies to its driver; Ray refuses to merge a second
        # ``env_vars`` into one that has them (cluster/runtime_env.yaml sets these same variables).
        job = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}")
        has_vars = "env_vars" in (job.get("runtime_env") or {})
        info = ray.init(address=address, runtime_env=None if has_vars else runtime_env, log_to_driver=True)
        return {"address": address, "dashboard": info.dashboard_url, "local": False}
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    kwargs = dict(address="local", include_dashboard=cfg.ray.dashboard, dashboard_host="127.0.0.1",
                  dashboard_port=cfg.ray.dashboard_port, object_store_memory=cfg.ray.object_store_mb * 2 ** 20,
                  runtime_env=runtime_env, log_to_driver=False)
    if cfg.ray.num_cpus:
        kwargs["num_cpus"] = cfg.ray.num_cpus
    info = ray.init(**kwargs)
    return {"address": "local", "dashboard": info.dashboard_url, "local": True}


class MemoryMonitor:
    """Peak memory of the processes that run this job, sampled in a background thread.

    On a local cluster those are this process and its descendants (Ray's own processes and
    every worker). Joined to a cluster (``ray job submit``, ``--address``) Ray's workers are
    the raylet's children, not ours: ``watch_job`` finds this job's workers through Ray's state
    API and measures those on this node; workers on other nodes cannot be read from here, and
    ``scope()`` says how many were left out rather than pretend the sum holds them.

    Two sums: RSS counts a shared page (torch's libraries, the object store) once in every
    process that maps it, so it is an upper bound; PSS splits each shared page among the
    processes that map it, so its sum is what the process tree really holds. RSS is read
    every ``every`` s; PSS every ``pss_every`` s, because the kernel walks a process's page
    tables to count it (~5 ms for a process that has imported torch, against 0.01 ms for RSS)."""

    def __init__(self, every: float = 1.0, pss_every: float = 5.0, workers_every: float = 5.0):
        self.peak_bytes = 0  # RSS sum
        self.peak_pss_bytes = 0
        self.peak_processes = 0
        self._pss_period = max(1, round(pss_every / every))
        self._workers_period = max(1, round(workers_every / every))
        self._job: tuple[str, str, str] | None = None  # (job id, this node's id, GCS address) once watched
        self._job_pids: set[int] = set()
        self.remote_workers: set[tuple[str, int]] = set()  # (node id, pid) of this job's workers elsewhere
        self.workers_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def watch_job(self) -> None:
        """Measure this job's Ray workers too (call after ``ray.init`` joined a cluster)."""
        ctx = ray.get_runtime_context()
        self._job = (ctx.get_job_id(), ctx.get_node_id(), ctx.gcs_address)
        self.find_job_workers()

    def find_job_workers(self) -> None:
        """Refresh the job's actor processes from Ray's state API: local PIDs to read, remote ones counted."""
        if self._job is None:
            return
        job, node, gcs = self._job
        try:
            from ray.util.state import list_actors

            # Every process of the job's is an actor's (pools, learner workers, Ray Train's
            # controller, queues). The address named: left out, the state API reads /tmp/ray's
            # last-started cluster, which may be another (or a dead) one.
            workers = list_actors(address=gcs, filters=[("job_id", "=", job), ("state", "=", "ALIVE")],
                                  limit=10_000, timeout=5, raise_on_missing_output=False)
        except Exception as e:  # no dashboard / state API on this cluster: say so, keep the driver's figure
            self.workers_error = f"{type(e).__name__}: {e}"[:200]
            return
        self.workers_error = ""
        self._job_pids = {w.pid for w in workers if w.node_id == node and w.pid}
        self.remote_workers |= {(w.node_id, w.pid) for w in workers if w.node_id != node}

    def _processes(self) -> list[psutil.Process]:
        me = psutil.Process()
        found = {p.pid: p for p in [me, *me.children(recursive=True)]}
        for pid in self._job_pids - found.keys():
            try:
                p = psutil.Process(pid)
                found.update({q.pid: q for q in [p, *p.children(recursive=True)]})
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return list(found.values())

    def sample(self, pss: bool = True) -> int:
        """One reading of the job's processes (with PSS when asked); returns the RSS sum."""
        rss_sum = pss_sum = counted = 0
        for p in self._processes():
            try:
                if pss:  # one read gives both; PSS is Linux-only, elsewhere RSS stands in
                    full = p.memory_full_info()
                    rss_sum += full.rss
                    pss_sum += getattr(full, "pss", full.rss)
                else:
                    rss_sum += p.memory_info().rss
                counted += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.peak_bytes = max(self.peak_bytes, rss_sum)
        self.peak_processes = max(self.peak_processes, counted)
        if pss:
            self.peak_pss_bytes = max(self.peak_pss_bytes, pss_sum)
        return rss_sum

    @property
    def peak_gb(self) -> float:
        return self.peak_bytes / 2 ** 30

    @property
    def peak_pss_gb(self) -> float:
        return self.peak_pss_bytes / 2 ** 30

    def scope(self) -> str:
        """What the peak figures cover, in words for the report (and what they leave out)."""
        if self._job is None:
            return f"this process tree: the driver, Ray's local processes and every worker ({self.peak_processes} processes)"
        text = f"the driver and this job's Ray workers on the driver's node ({self.peak_processes} processes)"
        if self.remote_workers:
            nodes = len({n for n, _ in self.remote_workers})
            text += (f"; not measured: {len(self.remote_workers)} worker processes on {nodes} other node(s) "
                     "(see the Ray dashboard's per-node memory)")
        if self.workers_error:
            text += f"; Ray's state API failed ({self.workers_error}), so workers found before it may be missing"
        return text

    def summary(self) -> dict:
        return {"peak_memory_gb": round(self.peak_gb, 3), "peak_memory_pss_gb": round(self.peak_pss_gb, 3),
                "memory_scope": self.scope()}

    def _run(self, every: float) -> None:
        tick = 0
        while not self._stop.is_set():
            if tick and tick % self._workers_period == 0:
                self.find_job_workers()
            self.sample(pss=tick % self._pss_period == 0)
            tick += 1
            time.sleep(every)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak_gb
