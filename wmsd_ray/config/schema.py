"""The typed config tree. One dataclass per section; ``validate`` says what is allowed.

The runtime and training sections live in ``runtime.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import require as _require
from ..names import BACKBONE_NAMES, FAMILY_NAMES, PALETTE_NAMES, SHAPE_NAMES
from .runtime import ActorsConfig, AlgorithmConfig, LearnerConfig, LoggingConfig, RayConfig, StreamConfig, TrainConfig


@dataclass
class WorldConfig:
    """WorldTasks-mini: a grid of coloured shapes, one agent moves one cell per frame."""

    grid: int = 4
    resolution: int = 32
    frames: int = 9
    num_objects: int = 3
    colors: list[str] = field(default_factory=lambda: ["red", "green", "blue", "yellow"])
    shapes: list[str] = field(default_factory=lambda: ["square", "circle"])
    max_segments: int = 3
    still_fraction: float = 0.05
    held_out_families: list[str] = field(default_factory=lambda: ["half"])
    held_out_phrasings: int = 1

    def validate(self) -> None:
        _require(self.grid >= 4, f"world.grid must be >= 4, got {self.grid}")
        _require(
            self.resolution % self.grid == 0,
            f"world.resolution ({self.resolution}) must be a multiple of world.grid ({self.grid})",
        )
        _require(
            self.resolution // self.grid >= 6,
            f"world.resolution/world.grid must give cells of >= 6 px, got {self.resolution // self.grid}",
        )
        _require(self.frames >= 2, f"world.frames must be >= 2, got {self.frames}")
        bad = [c for c in self.colors if c not in PALETTE_NAMES]
        _require(not bad, f"world.colors: unknown colour {bad[0] if bad else ''!r} (allowed: {', '.join(PALETTE_NAMES)})")
        _require(len(set(self.colors)) == len(self.colors), "world.colors must not repeat a colour")
        _require(len(self.colors) >= 4, f"world.colors needs >= 4 colours, got {len(self.colors)}")
        bad = [s for s in self.shapes if s not in SHAPE_NAMES]
        _require(not bad, f"world.shapes: unknown shape {bad[0] if bad else ''!r} (allowed: {', '.join(SHAPE_NAMES)})")
        _require(len(set(self.shapes)) == len(self.shapes) >= 2, "world.shapes needs both shapes, each once")
        n_ids = len(self.colors) * len(self.shapes)
        _require(
            3 <= self.num_objects <= min(n_ids, self.grid * self.grid - 1),
            f"world.num_objects must be in [3, {min(n_ids, self.grid * self.grid - 1)}], got {self.num_objects}",
        )
        _require(self.max_segments >= 1, f"world.max_segments must be >= 1, got {self.max_segments}")
        _require(0.0 <= self.still_fraction < 1.0, f"world.still_fraction must be in [0, 1), got {self.still_fraction}")
        _require(self.held_out_phrasings >= 0, "world.held_out_phrasings must be >= 0")
        bad = [f for f in self.held_out_families if f not in FAMILY_NAMES]
        _require(not bad, f"world.held_out_families: unknown family {bad[0] if bad else ''!r} "
                          f"(allowed: {', '.join(FAMILY_NAMES)})")

    @property
    def cell(self) -> int:
        return self.resolution // self.grid


ROLE_BACKENDS = ("world", "transformers", "vllm", "http")


@dataclass
class VLMConfig:
    """A VLM behind a proposer or judge. ``model``: a local path or hub id (transformers, vLLM),
    or the served model name (http). HTTP keys apply to any OpenAI-compatible endpoint."""

    model: str = ""
    device: str = "auto"  # auto: the GPU Ray gave this actor, if any (wmsd_ray/device.py)
    dtype: str = "float32"
    max_new_tokens: int = 512
    temperature: float = 0.0
    max_attempts: int = 3
    frames: int = 8
    batch_size: int = 24  # judge questions scored in one forward pass (transformers) or engine call (vLLM)
    share_frames: bool = True  # transformers: a video's questions share one encoding of its frames
    top_logprobs: int = 20  # first-token log-probs asked of HTTP servers (OpenAI allows up to 20; vLLM reads yes/no ids)
    text_reward: float = 2.0
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    retries: int = 2
    concurrency: int = 4
    gpu_memory_utilization: float = 0.5
    tensor_parallel: int = 1  # GPUs one vLLM engine spans (a 72B VLM needs several of 80 GB)
    engine_gpus: float = -1.0  # GPUs the vLLM engine actor holds; -1 = tensor_parallel, 0 on a CPU machine
    vllm_dtype: str = "auto"  # the engine's dtype (auto: the checkpoint's; float32 for parity checks on CPU)
    python: str = ""  # the interpreter with vLLM for the engine actor ("" = this one; .venv-vllm/bin/python)

    def validate(self) -> None:
        _require(self.max_attempts >= 1, "vlm.max_attempts must be >= 1")
        _require(self.frames >= 1, "vlm.frames must be >= 1")
        _require(self.batch_size >= 1, "vlm.batch_size must be >= 1")
        _require(self.timeout_s > 0, "vlm.timeout_s must be > 0")
        _require(self.retries >= 0 and self.concurrency >= 1, "vlm.retries must be >= 0 and vlm.concurrency >= 1")


def _check_backend(role: str, backend: str, vlm: VLMConfig) -> None:
    _require(backend in ROLE_BACKENDS, f"{role}.backend must be one of {list(ROLE_BACKENDS)}, got {backend!r}")
    _require(backend == "world" or bool(vlm.model), f"{role}.backend={backend} needs {role}.vlm.model")


@dataclass
class ProposerConfig:
    """Who writes tasks: ``world`` (pixel perception + planner) or a VLM backend."""

    backend: str = "world"
    pairs_per_image: int = 8
    include_held_out: bool = False
    vlm: VLMConfig = field(default_factory=VLMConfig)

    def validate(self) -> None:
        _check_backend("proposer", self.backend, self.vlm)
        _require(self.pairs_per_image >= 1, f"proposer.pairs_per_image must be >= 1, got {self.pairs_per_image}")


@dataclass
class JudgeConfig:
    """Who scores videos: ``world`` (pixel perception) or a VLM backend."""

    backend: str = "world"
    p_min: float = 0.01
    # World judge: the agent's detection in the last frame must be at least this sure for Task
    # (a smear that perception can barely name an object must not pass).
    min_confidence: float = 0.2
    vlm: VLMConfig = field(default_factory=VLMConfig)

    def validate(self) -> None:
        _check_backend("judge", self.backend, self.vlm)
        _require(0.0 < self.p_min < 0.5, f"judge.p_min must be in (0, 0.5), got {self.p_min}")
        _require(0.0 <= self.min_confidence < 1.0, f"judge.min_confidence must be in [0, 1), got {self.min_confidence}")


@dataclass
class DataConfig:
    """Training scenes for the proposer stage (never the benchmark's scenes)."""

    train_scenes: int = 100
    scene_seed: int = 1000
    scenes_dir: str = ""  # a folder of unlabeled scene images (cluster); empty = render WorldTasks-mini scenes

    def validate(self) -> None:
        _require(self.train_scenes >= 1, f"data.train_scenes must be >= 1, got {self.train_scenes}")


@dataclass
class CheckConfig:
    """Corruptions used by ``world check`` to stand in for imperfect generated frames."""

    noise_sigma: float = 0.1
    blur_sigma: float = 1.0
    proposer_scenes: int = 100
    seed: int = 7

    def validate(self) -> None:
        _require(self.noise_sigma >= 0, "check.noise_sigma must be >= 0")
        _require(self.blur_sigma >= 0, "check.blur_sigma must be >= 0")
        _require(self.proposer_scenes >= 1, "check.proposer_scenes must be >= 1")


DTYPES = ("float32", "bfloat16", "float16")
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "net.0.proj", "net.2")  # attention + feed-forward


@dataclass
class LoraConfig:
    """The Executor's adapter: peft LoRA on attention and feed-forward projections (teacher = adapter off).
    Rank 32 with the text/time embedders added (``linear_1``, ``linear_2``) fit slightly better
    here but made every learner step ~30% slower, which the 20-minute embedded run cannot pay."""

    rank: int = 16
    alpha: float = 16.0
    targets: list[str] = field(default_factory=lambda: list(LORA_TARGETS))

    def validate(self) -> None:
        _require(self.rank >= 1, f"model.lora.rank must be >= 1, got {self.rank}")
        _require(self.alpha > 0, f"model.lora.alpha must be > 0, got {self.alpha}")
        _require(bool(self.targets), "model.lora.targets must name at least one module")


@dataclass
class GuidanceConfig:
    """Classifier-free guidance, as the diffusers pipelines apply it (``scale`` 1 = off).

    The guided velocity is what the ODE, the SDE and their log-probs use; flow-matching terms
    (distillation, AWM, the anchor) train the conditional prediction, as diffusion models are
    trained. LTX-2 guides in x0 space with its extra terms (spatio-temporal guidance on
    ``stg_blocks``, modality isolation, rescale); ``audio_*`` of 0 means "as for video", as in
    its pipeline. ``scale_2`` is Wan2.2 A14B's low-noise expert (0 = ``scale``)."""

    scale: float = 1.0
    negative_prompt: str = ""
    scale_2: float = 0.0
    rescale: float = 0.0
    stg_scale: float = 0.0
    stg_blocks: list[int] = field(default_factory=list)
    modality_scale: float = 1.0
    audio_scale: float = 0.0
    audio_rescale: float = 0.0
    audio_stg_scale: float = 0.0
    audio_modality_scale: float = 0.0

    @property
    def active(self) -> bool:
        """Whether any guidance term needs an extra forward pass."""
        return (self.scale > 1.0 or self.audio_scale > 1.0 or self.stg_scale > 0 or self.audio_stg_scale > 0
                or self.modality_scale > 1.0 or self.audio_modality_scale > 1.0 or self.scale_2 > 1.0)

    def validate(self) -> None:
        for key in ("scale", "scale_2", "rescale", "stg_scale", "modality_scale", "audio_scale", "audio_rescale",
                    "audio_stg_scale", "audio_modality_scale"):
            _require(getattr(self, key) >= 0, f"model.guidance.{key} must be >= 0, got {getattr(self, key)}")
        _require(not (self.stg_scale > 0 or self.audio_stg_scale > 0) or bool(self.stg_blocks),
                 "model.guidance.stg_scale > 0 needs model.guidance.stg_blocks (the perturbed transformer blocks)")


@dataclass
class LTX2Config:
    """What the LTX-2 image-to-video pipeline takes beyond the common keys (its call defaults)."""

    frame_rate: float = 24.0
    image_crf: int = 0  # H.264 re-compression of the first frame (the pipeline's default is 33; needs PyAV)
    cross_timestep: bool = True

    def validate(self) -> None:
        _require(self.frame_rate > 0, f"model.ltx2.frame_rate must be > 0, got {self.frame_rate}")
        _require(self.image_crf >= 0, f"model.ltx2.image_crf must be >= 0, got {self.image_crf}")


@dataclass
class ModelConfig:
    """The video backbone. ``checkpoint``: ``packaged`` (the shipped Demonstrator), a folder, or
    empty = random init from the tiny shape below.

    ``hub`` loads a real diffusers pipeline (a repo folder or hub id) exactly as its pipeline
    does: its own text and image encoders, VAE, scheduler config; the tiny shape keys are then
    ignored. ``prediction`` is what the network outputs: ``x0`` (the embedded model; decisive at
    this size) or ``velocity`` (real checkpoints). ``max_text_tokens`` 0 takes the pipeline's
    own prompt length (Wan 512, LTX-2 1024, HunyuanVideo-1.5 1000). ``sigmas``: the pipeline's
    ``sigmas`` argument (e.g. the distilled LTX-2 list); empty = its default schedule for
    ``sample_steps``. ``timestep_shift`` shapes the embedded model's schedule and every
    backbone's training noise levels; a hub checkpoint samples with its own scheduler config.
    ``text_cache``: prompts whose embeddings are kept (they repeat across groups).
    """

    backbone: str = "wan"
    checkpoint: str = "packaged"
    hub: str = ""
    text_encoder: str = "minilm"
    prediction: str = "x0"
    layers: int = 6
    heads: int = 4
    head_dim: int = 32
    ffn_dim: int = 512
    patch: int = 8
    max_text_tokens: int = 48
    timestep_shift: float = 5.0
    sample_steps: int = 16
    sigmas: list[float] = field(default_factory=list)
    dtype: str = "float32"
    offload_encoders: bool = False  # keep the frozen text/image encoders on the CPU (GPU memory)
    gradient_checkpointing: bool = False  # recompute activations in the learner's backward pass
    text_cache: int = 20000
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    ltx2: LTX2Config = field(default_factory=LTX2Config)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def validate(self) -> None:
        _require(self.backbone in BACKBONE_NAMES,
                 f"model.backbone must be one of {list(BACKBONE_NAMES)}, got {self.backbone!r}")
        _require(self.prediction in ("x0", "velocity"),
                 f"model.prediction must be 'x0' or 'velocity', got {self.prediction!r}")
        for key in ("layers", "heads", "head_dim", "ffn_dim", "patch", "sample_steps"):
            _require(getattr(self, key) >= 1, f"model.{key} must be >= 1, got {getattr(self, key)}")
        _require(self.max_text_tokens >= 1 or (self.max_text_tokens == 0 and bool(self.hub)),
                 f"model.max_text_tokens must be >= 1 (0 = the pipeline's own, with model.hub), got {self.max_text_tokens}")
        _require(self.timestep_shift > 0, f"model.timestep_shift must be > 0, got {self.timestep_shift}")
        _require(not self.sigmas or len(self.sigmas) == self.sample_steps,
                 f"model.sigmas has {len(self.sigmas)} values but model.sample_steps is {self.sample_steps}")
        _require(self.dtype in DTYPES, f"model.dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        _require(self.text_cache >= 0, f"model.text_cache must be >= 0, got {self.text_cache}")
        _require(not (self.hub and self.prediction != "velocity"),
                 "model.hub pipelines predict velocity: set model.prediction=velocity")
        _require(not (self.hub and self.checkpoint),
                 "model.hub and model.checkpoint are exclusive: a hub pipeline is the base, set model.checkpoint=''")


@dataclass
class SamplingConfig:
    """Rollouts: Flow-GRPO SDE noise level ``eta`` (0 = the ODE), G samples per task.

    The embedded default samples RL groups with the ODE: AWM learns from any sampler, and ODE
    samples are what evaluation sees (run full9: RL kept Consistency, 0.835 -> 0.855, where at
    eta 0.7 it had lost 0.045-0.11 in three of four runs). Flow-GRPO needs eta > 0."""

    eta: float = 0.0
    group_size: int = 8
    shared_noise: bool = False
    batch_size: int = 32

    def validate(self) -> None:
        _require(self.eta >= 0, f"sampling.eta must be >= 0, got {self.eta}")
        _require(self.group_size >= 1, f"sampling.group_size must be >= 1, got {self.group_size}")
        _require(self.batch_size >= 1, f"sampling.batch_size must be >= 1, got {self.batch_size}")


@dataclass
class PretrainConfig:
    """``python -m wmsd_ray.pretrain``: the embedded Demonstrator on the caption corpus."""

    steps: int = 11000
    batch_size: int = 16
    lr: float = 1.0e-3
    min_lr_fraction: float = 0.05
    warmup: int = 300
    decay_start: float = 0.6
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema: float = 0.995
    checkpoint_every: int = 500
    eval_every: int = 2000
    eval_videos: int = 64
    corpus_seed: int = 4242
    # Caption registers of the corpus (world/outcomes.py): step-by-step motion, where the agent
    # ends, or both; goal-directed items draw relational goal families with this weight each.
    registers: dict[str, float] = field(default_factory=lambda: {"motion": 0.4, "outcome": 0.3, "both": 0.3})
    relational_weight: float = 2.0
    init: str = ""  # "" = random init; "packaged" or a Demonstrator folder = continue from its weights
    threads: int = 2
    output: str = "outputs/pretrain"

    def validate(self) -> None:
        _require(self.steps >= 1, f"pretrain.steps must be >= 1, got {self.steps}")
        _require(self.batch_size >= 1, f"pretrain.batch_size must be >= 1, got {self.batch_size}")
        _require(self.lr > 0, f"pretrain.lr must be > 0, got {self.lr}")
        _require(0 <= self.decay_start <= 1, f"pretrain.decay_start must be in [0, 1], got {self.decay_start}")
        _require(0 <= self.ema < 1, f"pretrain.ema must be in [0, 1), got {self.ema}")
        _require(self.checkpoint_every >= 1, "pretrain.checkpoint_every must be >= 1")
        bad = sorted(set(self.registers) - {"motion", "outcome", "both"})
        _require(not bad, f"pretrain.registers: unknown register {bad[0] if bad else ''!r} (allowed: motion, outcome, both)")
        _require(all(v >= 0 for v in self.registers.values()) and sum(self.registers.values()) > 0,
                 "pretrain.registers needs non-negative shares with a positive sum")
        _require(self.relational_weight > 0, f"pretrain.relational_weight must be > 0, got {self.relational_weight}")


@dataclass
class EvalConfig:
    """``python -m wmsd_ray.eval``: which model, which prompt, how many samples."""

    prompt: str = "solution"
    tasks: int = 200
    seed: int = 11
    gif_tasks: int = 16

    def validate(self) -> None:
        _require(self.prompt in ("solution", "task", "outcome"),
                 f"eval.prompt must be 'solution', 'task' or 'outcome', got {self.prompt!r}")
        _require(1 <= self.tasks <= 200, f"eval.tasks must be in [1, 200], got {self.tasks}")


@dataclass
class Config:
    """The whole run. ``configs/embedded.yaml`` is the default preset."""

    seed: int = 0
    run_name: str = ""
    output_dir: str = "outputs"
    world: WorldConfig = field(default_factory=WorldConfig)
    proposer: ProposerConfig = field(default_factory=ProposerConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    actors: ActorsConfig = field(default_factory=ActorsConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def validate(self) -> None:
        _require(not (self.algorithm.rl_losses.get("flow_grpo") and self.sampling.eta <= 0),
                 "algorithm.rl_losses has flow_grpo, which needs SDE sampling: set sampling.eta > 0 (e.g. 0.7)")
