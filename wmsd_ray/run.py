"""``python -m wmsd_ray.run``: the main job (single controller).

Phases, in data-flow order: propose (training scenes -> proposer actors -> tasks) ->
Demonstrator rollouts, judge-filtered, streamed into off-policy distillation -> on-policy
distillation + RL with Executor actors -> distillation-only ablation at matched updates ->
evaluation on the WorldTasks-mini benchmark (report.md, scores.json, PNG curves, GIF grid).

With no address it starts a local Ray cluster with its dashboard on 127.0.0.1; with
``--address`` or ``RAY_ADDRESS`` it joins an existing cluster (``ray job submit`` sets it).
``--resume RUN_DIR`` continues a run from its last complete checkpoint.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

import ray

from .cli_util import config_parser, exits_cleanly_on_user_error
from .config import Config, dump_yaml, load_config
from .errors import ConfigError
from .models.loading import check_model
from .runtime.cluster import MemoryMonitor, connect


def _run_dir(cfg: Config) -> Path:
    name = cfg.run_name or time.strftime("run-%Y%m%d-%H%M%S")
    # Absolute: Ray Train workers run in their own working directory, so a relative
    # checkpoint path would land there instead of in the run folder.
    run_dir = (Path(cfg.output_dir) / name).resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"output folder {run_dir} already holds a run; pick another run_name or pass --resume {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def absolute_local_paths(cfg: Config) -> None:
    """Local paths in the config made absolute where the driver runs: Ray workers (Ray Train's
    above all) run in their own working directories, where a relative path names nothing.
    Hub ids and the packaged Demonstrator are left as they are."""
    for holder, key in ((cfg.model, "checkpoint"), (cfg.model, "hub"), (cfg.data, "scenes_dir"),
                        (cfg.proposer.vlm, "model"), (cfg.judge.vlm, "model")):
        value = getattr(holder, key)
        if value and value != "packaged" and Path(value).exists():
            setattr(holder, key, str(Path(value).resolve()))


class Interrupted(BaseException):
    """SIGINT or SIGTERM (``ray job stop`` sends SIGTERM). A BaseException, so no retry loop
    that catches Exception swallows it; the run stops, Ray shuts down, no processes linger."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interruption_in(exc: BaseException) -> Interrupted | None:
    """The Interrupted behind ``exc``, if any. A signal that lands inside a Ray call (``ray.wait``
    runs Python signal handlers from C) comes back wrapped, e.g. as a SystemError caused by it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Interrupted):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _stop_on_signals() -> None:
    def handler(signum, frame):
        for s in (signal.SIGINT, signal.SIGTERM):  # a second signal stops at once
            signal.signal(s, signal.SIG_DFL)
        raise Interrupted(signum)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, handler)


def _last_checkpoint(run_dir: Path) -> str:
    latest = run_dir / "checkpoints" / "LATEST"
    return latest.read_text().strip() if latest.is_file() else "none yet"


def _parser() -> argparse.ArgumentParser:
    ap = config_parser("python -m wmsd_ray.run", __doc__, "train.rl_updates=100 seed=3")
    ap.add_argument("--address", default="", help="join this Ray cluster (default: $RAY_ADDRESS, else start one)")
    ap.add_argument("--resume", metavar="RUN_DIR", help="continue this run folder from its last checkpoint")
    return ap


@exits_cleanly_on_user_error
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.resume:
        run_dir = Path(args.resume).resolve()
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"--resume {run_dir}: no config.yaml there (not a run folder)")
        cfg = load_config(str(run_dir / "config.yaml"), args.overrides)
    else:
        cfg = load_config(args.config, args.overrides)
    # The model is checked here, before a run folder or Ray exists: a missing checkpoint or a
    # broken hub folder is one error line, not an actor's traceback after the propose phase.
    check_model(cfg.model, cfg.world)
    absolute_local_paths(cfg)
    if not args.resume:
        run_dir = _run_dir(cfg)
        dump_yaml(cfg, run_dir / "config.yaml")
    monitor = MemoryMonitor()
    cluster = connect(cfg, args.address)
    if not cluster["local"]:
        monitor.watch_job()  # the workers Ray runs for a joined job are not the driver's children
    _stop_on_signals()  # after ray.init, which installs its own SIGTERM handler (a bare sys.exit)
    print(f"wmsd-ray: run folder {run_dir} (resolved config in config.yaml)")
    print(f"Ray: {cluster['address']} cluster, dashboard http://{cluster['dashboard']}" if cluster["dashboard"]
          else f"Ray: {cluster['address']} cluster (no dashboard)", flush=True)
    from .runtime.driver import Driver  # after ray.init: actor classes register with this cluster

    started = time.time()
    driver = Driver(cfg, run_dir, resume=bool(args.resume), memory=monitor)
    if driver.resumed_from is not None:
        print(f"resuming from {driver.resumed_from} (phase {driver.state.phase}, updates {dict(driver.state.sent)})")
    stopped: Interrupted | None = None
    try:
        driver.run()
    except BaseException as exc:
        stopped = interruption_in(exc)
        if stopped is None:
            raise
    finally:
        peak = monitor.stop()
        summary = {"seconds": round(time.time() - started, 1), **monitor.summary(),
                   "updates": dict(driver.state.sent), "phase": driver.state.phase,
                   "counters": dict(driver.state.counters)}
        if stopped is not None:
            summary["interrupted"] = str(stopped)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        ray.shutdown()
    if stopped is not None:
        print(f"stopped by {stopped} in phase {driver.state.phase} (updates sent {dict(driver.state.sent)}); "
              f"last complete checkpoint: {_last_checkpoint(run_dir)}; continue with: "
              f"python -m wmsd_ray.run --resume {run_dir}", file=sys.stderr)
        return 128 + stopped.signum
    print(f"done in {summary['seconds'] / 60:.1f} min, peak memory {peak:.2f} GB "
          f"(RSS sum; PSS sum {monitor.peak_pss_gb:.2f} GB) of {summary['memory_scope']}; report: {run_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
