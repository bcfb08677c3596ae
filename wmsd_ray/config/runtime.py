"""Config sections of the Ray runtime and WMSD training: actor pools, learner, stream, algorithm, phases."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..errors import require as _require
from ..names import ADVANTAGE_NAMES, LOSS_NAMES


@dataclass
class PoolConfig:
    """One actor pool: how many, and what each reserves (fractions allowed)."""

    count: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    threads: int = 1  # torch intra-op threads inside each actor
    cpu_affinity: list[int] = field(default_factory=list)  # cores each actor is pinned to (Linux); [] = any
    max_restarts: int = 3
    resources: dict[str, float] = field(default_factory=dict)  # custom node resources, e.g. {rollout_node: 0.01}

    def validate(self) -> None:
        _require(self.count >= 1, f"pool count must be >= 1, got {self.count}")
        _require(self.num_cpus >= 0 and self.num_gpus >= 0, "pool num_cpus/num_gpus must be >= 0")
        _require(self.threads >= 1, "pool threads must be >= 1")
        _require(all(c >= 0 for c in self.cpu_affinity), "pool cpu_affinity lists core numbers >= 0")


def _pool(count: int, cpus: float, threads: int = 1) -> PoolConfig:
    return PoolConfig(count=count, num_cpus=cpus, threads=threads)


@dataclass
class ActorsConfig:
    """Pools scale independently: rollout workers grow without touching the learner.

    CPU reservations are Ray's logical bookkeeping: on the 2-core embedded machine each pool
    reserves a quarter so that the learner's whole core plus every pool of a phase fit;
    ``threads`` sets what each actor actually computes with.
    """

    proposer: PoolConfig = field(default_factory=lambda: _pool(1, 0.25))
    demonstrator: PoolConfig = field(default_factory=lambda: _pool(1, 0.25))
    executor: PoolConfig = field(default_factory=lambda: _pool(1, 0.25))
    judge: PoolConfig = field(default_factory=lambda: _pool(1, 0.25))


@dataclass
class LearnerConfig:
    """The learner group: Ray Train TorchTrainer workers with DDP or DeepSpeed."""

    engine: str = "ddp"  # ddp | deepspeed
    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    threads: int = 1
    # Per-phase override, taken once the phase's Demonstrator rollouts are all in: distillation and
    # its ablation then have the machine to themselves (0.64 -> 0.43 s per step with 2 threads
    # here); RL shares it with the Executor actors and the judge.
    phase_threads: dict[str, int] = field(default_factory=lambda: {"distill": 2, "ablation": 2})
    cpu_affinity: list[int] = field(default_factory=list)  # cores every worker is pinned to (Linux); [] = any
    zero_stage: int = 0  # DeepSpeed ZeRO stage 0-3
    dtype: str = "float32"  # float32 | bfloat16 (DeepSpeed bf16 / autocast)
    lr: float = 2.0e-3  # peak rate of the distillation phase
    rl_lr: float = 1.0e-3  # peak rate of the RL phase and of its distillation-only ablation
    schedule: str = "cosine"  # constant | cosine (learners/schedule.py), per phase
    warmup_updates: int = 20
    decay_fraction: float = 0.5  # cosine: the last share of each phase over which the rate decays
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    batch_size: int = 16  # samples per update, split over workers
    # Per-phase override of batch_size. Distillation on the six-family mix is limited by learner
    # steps, not samples: batch 8 x 3,000 updates reached Task 0.295 against batch 16 x 1,500's
    # 0.245 in the same time (docs/EXPERIMENTS.md). The ablation always uses RL's batch.
    phase_batch: dict[str, int] = field(default_factory=lambda: {"distill": 8})
    backend: str = ""  # torch.distributed backend; "" = gloo on CPU, nccl on GPU
    # How adapter versions reach the Executor actors: object_store (numpy through Ray), collective
    # (a process group per actor: NCCL on GPU, gloo on CPU; learners/collective.py), or auto:
    # collective when the learner holds GPUs.
    weight_sync: str = "auto"
    weight_sync_timeout_s: float = 60.0  # how long an actor waits for a version it was told of
    resources: dict[str, float] = field(default_factory=dict)  # custom node resources per worker

    def threads_for(self, phase: str) -> int:
        """Torch threads for a phase once it has the machine to itself (``phase_threads`` or ``threads``)."""
        return self.phase_threads.get(phase, self.threads)

    def batch_for(self, phase: str) -> int:
        """Samples per update in a phase; the ablation matches RL's (its updates are compared with RL's)."""
        return self.phase_batch.get("rl" if phase == "ablation" else phase, self.batch_size)

    def validate(self) -> None:
        _require(self.engine in ("ddp", "deepspeed"), f"learner.engine must be 'ddp' or 'deepspeed', got {self.engine!r}")
        _require(self.weight_sync in ("auto", "object_store", "collective"),
                 f"learner.weight_sync must be auto, object_store or collective, got {self.weight_sync!r}")
        _require(self.weight_sync_timeout_s > 0, "learner.weight_sync_timeout_s must be positive")
        _require(self.workers >= 1, f"learner.workers must be >= 1, got {self.workers}")
        _require(0 <= self.zero_stage <= 3, f"learner.zero_stage must be in 0..3, got {self.zero_stage}")
        _require(self.dtype in ("float32", "bfloat16"), f"learner.dtype must be float32 or bfloat16, got {self.dtype!r}")
        _require(self.lr > 0 and self.rl_lr > 0 and self.batch_size >= self.workers,
                 "learner.lr and learner.rl_lr must be > 0 and learner.batch_size >= learner.workers")
        _require(self.threads >= 1 and all(t >= 1 for t in self.phase_threads.values()),
                 "learner.threads and learner.phase_threads values must be >= 1")
        _known_phases("learner.phase_threads", self.phase_threads, ("distill", "rl", "ablation"))
        _known_phases("learner.phase_batch", self.phase_batch, ("distill", "rl"), "; the ablation uses RL's batch")
        _require(all(b >= self.workers for b in self.phase_batch.values()),
                 "learner.phase_batch values must be >= learner.workers")
        from learners.schedule import SCHEDULES

        _require(self.schedule in SCHEDULES, f"learner.schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        _require(self.warmup_updates >= 0 and 0 <= self.decay_fraction <= 1 and 0 <= self.min_lr_ratio <= 1,
                 "learner.warmup_updates must be >= 0; learner.decay_fraction and min_lr_ratio in [0, 1]")


def _known_phases(key: str, per_phase: dict, phases: tuple[str, ...], note: str = "") -> None:
    bad = [k for k in per_phase if k not in phases]
    if bad:
        raise ConfigError(f"{key}: unknown phase {bad[0]!r} (phases: {', '.join(phases)}{note})")


@dataclass
class StreamConfig:
    """Trajectory streaming: bounded in-flight work, staleness bound, whole-group retries.

    ``mode``: ``async`` (Executor actors run ahead of the learner, bounded by ``max_staleness``)
    or ``sync`` (sample, then train, then sample: the baseline the benchmark compares).
    """

    mode: str = "async"
    max_in_flight: int = 2  # rollout calls outstanding per actor (4 over-produced: 82 of 196 RL groups went stale unused)
    queue_size: int = 4  # train batches waiting for the learner (backpressure)
    max_staleness: int = 16  # updates a Executor sample may lag the learner
    stale_policy: str = "drop"  # drop | importance (keep; Flow-GRPO's ratio corrects it)
    reuse: int = 4  # updates a Executor sample may serve before it is retired
    group_retries: int = 3
    chaos_kill_after: int = 0  # chaos testing: kill one rollout actor mid-call after N completed calls (0 = off)

    def validate(self) -> None:
        _require(self.mode in ("async", "sync"), f"stream.mode must be 'async' or 'sync', got {self.mode!r}")
        _require(self.max_in_flight >= 1 and self.queue_size >= 1, "stream.max_in_flight and stream.queue_size must be >= 1")
        _require(self.max_staleness >= 0, "stream.max_staleness must be >= 0")
        _require(self.stale_policy in ("drop", "importance"), "stream.stale_policy must be 'drop' or 'importance'")
        _require(self.reuse >= 1 and self.group_retries >= 0, "stream.reuse must be >= 1, stream.group_retries >= 0")


@dataclass
class AlgorithmConfig:
    """Rewards, advantages and the loss weights of each phase (names from the loss registry)."""

    lambda_task: float = 1.0
    lambda_distill: float = 0.0
    lambda_consistency: float = 1.0
    advantage: str = "grpo"  # grpo | mean | rloo
    adv_eps: float = 1.0e-4
    adv_clip: float = 5.0
    # No anchor while distilling: it cost 0.24 s of a 0.72 s step, and the flow term already
    # regresses onto the Demonstrator's accepted videos. The RL phase keeps it (beta_d 0.01).
    distill_losses: dict[str, float] = field(default_factory=lambda: {"off_policy_distill": 1.0})
    rl_losses: dict[str, float] = field(default_factory=lambda: {"awm": 1.0, "anchor": 0.01})
    credit_accepted_only: bool = True  # positive advantage only for judge-accepted samples (RAFT-style)
    awm_negative_scale: float = 0.0  # positive-only AWM: 0.5 cost 0.16 Consistency in one round here
    grpo_clip: float = 1.0e-3
    grpo_kl: float = 0.0
    grpo_timesteps: int = 4
    demonstration_mix: float = 0.25  # least share of each RL batch drawn from the judge-filtered demonstration buffer
    # weighted: of the scored groups a batch uses, only the rows the RL loss learns from enter it
    # and demonstration rows fill the rest (rows_with_signal); all: every row, whatever its weight.
    # Either way the same groups pace the learner. Flow-GRPO batches (no demonstration rows) take all.
    executor_rows: str = "weighted"
    # Where the RL anchor's teacher prediction is computed: in the learner with its adapter off,
    # or on the Demonstrator actor, off the learner's step (benchmarks/demonstrator_velocities.py).
    anchor_on: str = "learner"

    def validate(self) -> None:
        _require(self.advantage in ADVANTAGE_NAMES,
                 f"algorithm.advantage must be one of {sorted(ADVANTAGE_NAMES)}, got {self.advantage!r}")
        for key in ("distill_losses", "rl_losses"):
            losses = getattr(self, key)
            bad = [k for k in losses if k not in LOSS_NAMES]
            _require(not bad, f"algorithm.{key}: unknown loss {bad[0] if bad else ''!r} (known: {', '.join(sorted(LOSS_NAMES))})")
            _require(any(v for v in losses.values()), f"algorithm.{key} needs a non-zero weight")
        _require(0 <= self.demonstration_mix < 1, "algorithm.demonstration_mix must be in [0, 1)")
        _require(self.executor_rows in ("weighted", "all"),
                 f"algorithm.executor_rows must be weighted or all, got {self.executor_rows!r}")
        _require(self.adv_eps > 0 and self.adv_clip > 0, "algorithm.adv_eps and adv_clip must be > 0")
        _require(self.anchor_on in ("learner", "demonstrator"),
                 f"algorithm.anchor_on must be learner or demonstrator, got {self.anchor_on!r}")
        _require(self.anchor_on == "learner" or self.rl_losses.get("anchor"),
                 "algorithm.anchor_on=demonstrator needs an anchor term in algorithm.rl_losses")

    @property
    def anchor_on_demonstrator(self) -> bool:
        return self.anchor_on == "demonstrator"


@dataclass
class TrainConfig:
    """The phase schedule: propose -> Demonstrator rollouts (judge-filtered) -> distill -> RL -> eval."""

    demonstrator_samples: int = 2  # Demonstrator rollouts per task
    demonstrator_eta: float = 0.0  # 0 = ODE
    judge_filter: bool = True
    min_buffer: int = 128  # accepted Demonstrator samples before distillation starts
    distill_updates: int = 1500  # at learner.phase_batch["distill"] = 8: the main job in 17-18 min (docs/EXPERIMENTS.md)
    rl_updates: int = 200
    rl_tasks: int = 4  # tasks per Executor call (each G samples)
    ablation: bool = True  # also train distillation-only for rl_updates more (the paper's ablation)
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    learner_restarts: int = 2  # a lost learner worker (a preempted node): rewind to the last checkpoint, this often
    eval: bool = True

    def validate(self) -> None:
        _require(self.demonstrator_samples >= 1, "train.demonstrator_samples must be >= 1")
        _require(self.distill_updates >= 0 and self.rl_updates >= 0, "train.*_updates must be >= 0")
        _require(self.checkpoint_every >= 1, "train.checkpoint_every must be >= 1")


@dataclass
class RayConfig:
    """Where to run: empty ``address`` starts a local cluster (dashboard on 127.0.0.1)."""

    address: str = ""
    num_cpus: int = 0  # 0 = all of this machine's
    dashboard: bool = True
    dashboard_port: int = 8265
    object_store_mb: int = 1024


@dataclass
class LoggingConfig:
    wandb: str = "offline"  # offline | online | disabled
    project: str = "wmsd-ray"
