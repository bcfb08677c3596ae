"""Run metrics: a JSON-lines log, Ray dashboard gauges, and wandb (offline by default).

The dashboard gets per-role throughput, learner queue depth, staleness and weight-sync
time as Ray metrics (``ray.util.metrics``); wandb gets every learner update and, at evaluation,
the benchmark's sample videos.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
from ray.util import metrics as ray_metrics

from ..config import Config, to_dict

log = logging.getLogger(__name__)
GAUGES = ("videos_per_s_demonstrator", "videos_per_s_executor", "learner_queue_depth", "staleness_mean", "sync_s",
          "judge_accept_rate")


class Metrics:
    def __init__(self, cfg: Config, run_dir: Path, resume: bool):
        self.path = run_dir / "metrics.jsonl"
        self.started = time.time()
        self.gauges = {n: ray_metrics.Gauge(f"wmsd_{n}", description=n.replace("_", " ")) for n in GAUGES}
        self.wandb = None
        if cfg.logging.wandb != "disabled":
            try:
                import wandb

                os.environ.setdefault("WANDB_SILENT", "true")
                self.wandb = wandb.init(project=cfg.logging.project, dir=str(run_dir), mode=cfg.logging.wandb,
                                        config=to_dict(cfg), name=run_dir.name, resume="allow" if resume else None,
                                        id=run_dir.name.replace("/", "-"))
            except Exception as e:  # a broken wandb never stops training
                log.warning("wandb disabled: %s", e)

    def gauge(self, **values: float) -> None:
        for k, v in values.items():
            if k in self.gauges and v is not None and np.isfinite(v):
                self.gauges[k].set(float(v))

    def log(self, row: dict) -> None:
        row = {"time_s": round(time.time() - self.started, 3), **row}
        with open(self.path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in row.items() if isinstance(v, (int, float))})

    def video(self, name: str, gif_path: Path) -> None:
        if self.wandb is not None:
            try:
                import wandb

                self.wandb.log({name: wandb.Video(str(gif_path), format="gif")})
            except Exception as e:
                log.warning("wandb video not logged: %s", e)

    def close(self) -> None:
        if self.wandb is not None:
            self.wandb.finish()


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
