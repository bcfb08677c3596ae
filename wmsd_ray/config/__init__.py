"""Typed configuration: ``load_config`` reads a YAML preset plus dotted overrides."""
from __future__ import annotations

from pathlib import Path

from .loader import dump_yaml, from_dict, load, to_dict
from .runtime import (
    ActorsConfig,
    AlgorithmConfig,
    LearnerConfig,
    LoggingConfig,
    PoolConfig,
    RayConfig,
    StreamConfig,
    TrainConfig,
)
from .schema import (
    CheckConfig,
    Config,
    DataConfig,
    EvalConfig,
    JudgeConfig,
    LoraConfig,
    ModelConfig,
    PretrainConfig,
    ProposerConfig,
    SamplingConfig,
    WorldConfig,
)

DEFAULT_PRESET = Path(__file__).resolve().parents[2] / "configs" / "embedded.yaml"


def load_config(path: str | None = None, overrides: list[str] | None = None) -> Config:
    """Load ``path`` (default: configs/embedded.yaml when present) and apply overrides."""
    if path is None and DEFAULT_PRESET.is_file():
        path = str(DEFAULT_PRESET)
    return load(Config, path, overrides)


__all__ = [
    "CheckConfig", "Config", "DataConfig", "EvalConfig", "JudgeConfig", "LoraConfig", "ModelConfig",
    "PretrainConfig", "ProposerConfig", "SamplingConfig", "WorldConfig", "ActorsConfig", "AlgorithmConfig",
    "LearnerConfig", "LoggingConfig", "PoolConfig", "RayConfig", "StreamConfig", "TrainConfig",
    "dump_yaml", "from_dict", "load", "load_config", "to_dict",
]
