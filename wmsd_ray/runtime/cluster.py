"""Connecting to Ray: a local cluster with its dashboard, or an existing one by address.

Locally Ray 2.60's token auth is switched off (``RAY_AUTH_MODE=disabled``) so the dashboard
opens in a browser without a token; on a cluster the address (``--address`` / ``RAY_ADDRESS``)
decides and the cluster's own auth applies. A background sampler records peak memory of
this process tree (driver, Ray's own processes and every worker).
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
    """Peak memory of this process and all its descendants, sampled in a background thread.

    Two sums: RSS counts a shared page (torch's libraries, the object store) once in every
    process that maps it, so it is an upper bound; PSS splits each shared page among the
    processes that map it, so its sum is what the process tree really holds. RSS is read
    every ``every`` s; PSS every ``pss_every`` s, because the kernel walks a process's page
    tables to count it (~5 ms for a process that has imported torch, against 0.01 ms for RSS)."""

    def __init__(self, every: float = 1.0, pss_every: float = 5.0):
        self.peak_bytes = 0  # RSS sum
        self.peak_pss_bytes = 0
        self._pss_period = max(1, round(pss_every / every))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def sample(self, pss: bool = True) -> int:
        """One reading of the tree (with PSS when asked); returns the RSS sum."""
        me = psutil.Process()
        rss_sum = pss_sum = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                if pss:  # one read gives both; PSS is Linux-only, elsewhere RSS stands in
                    full = p.memory_full_info()
                    rss_sum += full.rss
                    pss_sum += getattr(full, "pss", full.rss)
                else:
                    rss_sum += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.peak_bytes = max(self.peak_bytes, rss_sum)
        if pss:
            self.peak_pss_bytes = max(self.peak_pss_bytes, pss_sum)
        return rss_sum

    @property
    def peak_gb(self) -> float:
        return self.peak_bytes / 2 ** 30

    @property
    def peak_pss_gb(self) -> float:
        return self.peak_pss_bytes / 2 ** 30

    def _run(self, every: float) -> None:
        tick = 0
        while not self._stop.is_set():
            self.sample(pss=tick % self._pss_period == 0)
            tick += 1
            time.sleep(every)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak_gb
