"""The Executor = base backbone + a peft LoRA adapter; the teacher = the same base, adapter off.

One copy of the base weights serves both roles. Adapters save and load in the diffusers
LoRA format (``pytorch_lora_weights.safetensors``, keys prefixed ``transformer.``), and
travel to samplers as plain numpy arrays (adapter only: a few hundred KB at the embedded size).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from diffusers.loaders import HunyuanVideoLoraLoaderMixin, LTX2LoraLoaderMixin, WanLoraLoaderMixin
from peft import LoraConfig as PeftLoraConfig
from peft.utils import get_peft_model_state_dict

from ..config import LoraConfig
from ..errors import ConfigError
from .backbones import Backbone

ADAPTER = "executor"
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
# The diffusers pipeline mixin whose file format each backbone uses.
LORA_MIXINS = {"wan": WanLoraLoaderMixin, "ltx2": LTX2LoraLoaderMixin, "hunyuan15": HunyuanVideoLoraLoaderMixin}


def add_lora(backbone: Backbone, cfg: LoraConfig, seed: int = 0) -> None:
    """Attach a fresh adapter (B = 0, so the Executor starts as the Demonstrator) and train only it."""
    transformer = backbone.transformer
    transformer.requires_grad_(False)
    torch.manual_seed(seed)
    try:
        transformer.add_adapter(
            PeftLoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=list(cfg.targets), init_lora_weights=True),
            adapter_name=ADAPTER,
        )
    except ValueError as e:
        raise ConfigError(f"model.lora.targets {cfg.targets}: {e}") from e
    transformer.set_adapter(ADAPTER)


def lora_parameters(backbone: Backbone) -> list[torch.nn.Parameter]:
    return [p for n, p in backbone.transformer.named_parameters() if "lora_" in n]


@contextmanager
def adapter_disabled(backbone: Backbone):
    """The frozen teacher (Demonstrator) inside the Executor's weights."""
    backbone.transformer.disable_adapters()
    try:
        yield backbone
    finally:
        backbone.transformer.enable_adapters()


def save_lora(backbone: Backbone, directory: str | os.PathLike) -> Path:
    state = get_peft_model_state_dict(backbone.transformer, adapter_name=ADAPTER)
    LORA_MIXINS[backbone.name].save_lora_weights(directory, transformer_lora_layers=state, weight_name=LORA_WEIGHT_NAME)
    return Path(directory) / LORA_WEIGHT_NAME


def load_lora(backbone: Backbone, directory: str | os.PathLike) -> None:
    """Load a diffusers-format adapter saved by ``save_lora`` (or any pipeline's save_lora_weights)."""
    path = Path(directory)
    if not (path / LORA_WEIGHT_NAME).is_file():
        raise ConfigError(f"no LoRA adapter at {path / LORA_WEIGHT_NAME}")
    transformer = backbone.transformer
    if ADAPTER in getattr(transformer, "peft_config", {}):
        transformer.delete_adapters(ADAPTER)
    transformer.load_lora_adapter(str(path), prefix="transformer", weight_name=LORA_WEIGHT_NAME, adapter_name=ADAPTER)
    transformer.set_adapter(ADAPTER)


def export_adapter(backbone: Backbone) -> dict[str, np.ndarray]:
    """Adapter-only weights as numpy (what the learner broadcasts to samplers)."""
    return {n: p.detach().cpu().float().numpy().copy() for n, p in backbone.transformer.named_parameters() if "lora_" in n}


@torch.no_grad()
def apply_adapter(backbone: Backbone, arrays: dict[str, np.ndarray]) -> None:
    params = dict(backbone.transformer.named_parameters())
    missing = sorted(set(params_lora := [n for n in params if "lora_" in n]) - set(arrays))
    extra = sorted(set(arrays) - set(params_lora))
    if missing or extra:
        raise ValueError(f"adapter mismatch: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, arr in arrays.items():
        p = params[name]
        if tuple(arr.shape) != tuple(p.shape):
            raise ValueError(f"adapter {name}: shape {tuple(arr.shape)} != {tuple(p.shape)}")
        # torch.tensor copies, so a read-only (zero-copy object-store) array needs no warning.
        p.copy_(torch.tensor(arr, dtype=p.dtype))
