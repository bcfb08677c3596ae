"""The Executor = base backbone + a peft LoRA adapter; the Demonstrator = the same base, adapter off.

One copy of the base weights serves both roles. Every denoiser gets the adapter (Wan2.2 A14B's
two experts each get their own). Adapters save in the diffusers LoRA format with their peft
config as metadata, so the rank/alpha scale survives: ``pytorch_lora_weights.safetensors``
(keys prefixed ``transformer.``) for ``transformer`` and
``pytorch_lora_weights_transformer_2.safetensors`` for ``transformer_2``, which a plain
diffusers pipeline loads with ``pipe.load_lora_weights(dir)`` (``weight_name=...,
load_into_transformer_2=True`` for the second expert; HunyuanVideo-1.5's pipeline has no LoRA
loader: ``pipe.transformer.load_lora_adapter(dir, prefix="transformer")``). Adapters travel
to samplers as plain numpy arrays (a few hundred KB at the embedded size).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from diffusers.loaders import LTX2LoraLoaderMixin, WanLoraLoaderMixin
from peft import LoraConfig as PeftLoraConfig
from peft.utils import get_peft_model_state_dict

from ..config import LoraConfig
from ..device import to_numpy
from ..errors import ConfigError
from .backbones import Backbone

ADAPTER = "executor"
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
# The diffusers pipeline mixin whose file format each backbone uses (HunyuanVideo-1.5 has none:
# Wan's writer gives the same ``transformer.``-prefixed layout).
LORA_MIXINS = {"wan": WanLoraLoaderMixin, "ltx2": LTX2LoraLoaderMixin, "hunyuan15": WanLoraLoaderMixin}


def weight_name(expert: str) -> str:
    return LORA_WEIGHT_NAME if expert == "transformer" else f"pytorch_lora_weights_{expert}.safetensors"


def _param_name(expert: str, name: str) -> str:
    return name if expert == "transformer" else f"{expert}.{name}"


def add_lora(backbone: Backbone, cfg: LoraConfig, seed: int = 0) -> None:
    """Attach a fresh adapter (B = 0, so the Executor starts as the Demonstrator) and train only it."""
    torch.manual_seed(seed)
    for module in backbone.experts.values():
        module.requires_grad_(False)
        try:
            module.add_adapter(PeftLoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=list(cfg.targets),
                                              init_lora_weights=True), adapter_name=ADAPTER)
        except ValueError as e:
            raise ConfigError(f"model.lora.targets {cfg.targets}: {e}") from e
        module.set_adapter(ADAPTER)


def lora_parameters(backbone: Backbone) -> list[torch.nn.Parameter]:
    return [p for module in backbone.experts.values() for n, p in module.named_parameters() if "lora_" in n]


@contextmanager
def adapter_disabled(backbone: Backbone):
    """The frozen teacher (Demonstrator) inside the Executor's weights."""
    for module in backbone.experts.values():
        module.disable_adapters()
    try:
        yield backbone
    finally:
        for module in backbone.experts.values():
            module.enable_adapters()


def save_lora(backbone: Backbone, directory: str | os.PathLike) -> Path:
    """One diffusers LoRA file per expert, its peft config (rank, alpha, targets) as metadata."""
    for expert, module in backbone.experts.items():
        config = module.peft_config[ADAPTER].to_dict()
        config = {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
        LORA_MIXINS[backbone.name].save_lora_weights(
            directory, transformer_lora_layers=get_peft_model_state_dict(module, adapter_name=ADAPTER),
            weight_name=weight_name(expert), transformer_lora_adapter_metadata=config)
    return Path(directory) / LORA_WEIGHT_NAME


def load_lora(backbone: Backbone, directory: str | os.PathLike) -> None:
    """Load adapters saved by ``save_lora`` (or any pipeline's save_lora_weights) at their saved scale."""
    path = Path(directory)
    for expert, module in backbone.experts.items():
        if not (path / weight_name(expert)).is_file():
            raise ConfigError(f"no LoRA adapter for {expert} at {path / weight_name(expert)}")
        if ADAPTER in getattr(module, "peft_config", {}):
            module.delete_adapters(ADAPTER)
        module.load_lora_adapter(str(path), prefix="transformer", weight_name=weight_name(expert),
                                 adapter_name=ADAPTER)
        module.set_adapter(ADAPTER)


def lora_named(backbone: Backbone) -> dict[str, torch.nn.Parameter]:
    return {_param_name(expert, n): p for expert, module in backbone.experts.items()
            for n, p in module.named_parameters() if "lora_" in n}


def export_adapter(backbone: Backbone) -> dict[str, np.ndarray]:
    """Adapter-only weights as numpy (what the learner broadcasts to samplers)."""
    return {n: to_numpy(p).copy() for n, p in lora_named(backbone).items()}


@torch.no_grad()
def apply_adapter(backbone: Backbone, arrays: dict[str, np.ndarray]) -> None:
    params = lora_named(backbone)
    missing = sorted(set(params) - set(arrays))
    extra = sorted(set(arrays) - set(params))
    if missing or extra:
        raise ValueError(f"adapter mismatch: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, arr in arrays.items():
        p = params[name]
        if tuple(arr.shape) != tuple(p.shape):
            raise ValueError(f"adapter {name}: shape {tuple(arr.shape)} != {tuple(p.shape)}")
        # torch.tensor copies, so a read-only (zero-copy object-store) array needs no warning.
        p.copy_(torch.tensor(arr, dtype=p.dtype))
