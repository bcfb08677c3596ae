"""The typed config tree. One dataclass per section; ``validate`` says what is allowed.

Later stages (models, samplers, learner) add their own sections here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

PALETTE_NAMES = ("red", "green", "blue", "yellow", "purple", "cyan", "orange")
SHAPE_NAMES = ("square", "circle")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


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
        from ..world.tasks import FAMILY_NAMES  # local import: the world depends on config, not the reverse

        bad = [f for f in self.held_out_families if f not in FAMILY_NAMES]
        _require(not bad, f"world.held_out_families: unknown family {bad[0] if bad else ''!r} (allowed: {', '.join(FAMILY_NAMES)})")

    @property
    def cell(self) -> int:
        return self.resolution // self.grid


@dataclass
class ProposerConfig:
    """Who writes tasks: ``world`` (pixel perception + planner) or a VLM backend (later)."""

    backend: str = "world"
    pairs_per_image: int = 8
    include_held_out: bool = False

    def validate(self) -> None:
        _require(self.backend in ("world",), f"proposer.backend must be one of ['world'], got {self.backend!r}")
        _require(self.pairs_per_image >= 1, f"proposer.pairs_per_image must be >= 1, got {self.pairs_per_image}")


@dataclass
class JudgeConfig:
    """Who scores videos: ``world`` (pixel perception) or a VLM backend (later)."""

    backend: str = "world"
    p_min: float = 0.01

    def validate(self) -> None:
        _require(self.backend in ("world",), f"judge.backend must be one of ['world'], got {self.backend!r}")
        _require(0.0 < self.p_min < 0.5, f"judge.p_min must be in (0, 0.5), got {self.p_min}")


@dataclass
class DataConfig:
    """Training scenes for the proposer stage (never the benchmark's scenes)."""

    train_scenes: int = 64
    scene_seed: int = 1000

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
