"""Build a backbone from config: tiny random init, our own checkpoint, or a real diffusers pipeline.

Our checkpoints are folders: ``transformer/`` (diffusers ``save_pretrained``, safetensors)
and ``model.yaml`` (the model and world keys it was trained with). Loading compares those
keys with the config first, so a mismatch names the key instead of a tensor shape.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml
from diffusers import FlowMatchEulerDiscreteScheduler

from ..config import ModelConfig, WorldConfig, to_dict
from ..device import assigned_device, place
from ..errors import ConfigError
from .backbones import BACKBONES, Backbone
from .codec import PixelCodec
from .text import TextEncoder

# Keys that fix the network's shape or meaning; a checkpoint must agree on all of them.
SHAPE_KEYS = ("backbone", "text_encoder", "prediction", "layers", "heads", "head_dim", "ffn_dim", "patch",
              "max_text_tokens")
WORLD_KEYS = ("resolution", "frames")
PACKAGED_DEMONSTRATOR = Path(__file__).resolve().parents[1] / "data" / "demonstrator"


def resolve_checkpoint(path: str) -> Path:
    """``packaged`` names the Demonstrator shipped in the package; anything else is a path."""
    return PACKAGED_DEMONSTRATOR if path == "packaged" else Path(path)


def checkpoint_keys(model: ModelConfig, world: WorldConfig) -> dict:
    return {"model": {k: getattr(model, k) for k in SHAPE_KEYS}, "world": {k: getattr(world, k) for k in WORLD_KEYS}}


def check_checkpoint(path: Path, model: ModelConfig, world: WorldConfig) -> None:
    meta_path = path / "model.yaml"
    if not path.is_dir():
        raise ConfigError(f"model.checkpoint: no checkpoint folder at {path}")
    if not meta_path.is_file() or not (path / "transformer").is_dir():
        raise ConfigError(f"model.checkpoint: {path} is not a wmsd-ray checkpoint (needs model.yaml and transformer/)")
    saved = yaml.safe_load(meta_path.read_text()) or {}
    want = checkpoint_keys(model, world)
    for section in ("model", "world"):
        for key, value in want[section].items():
            have = saved.get(section, {}).get(key)
            if have != value:
                raise ConfigError(
                    f"model.checkpoint {path} was trained with {section}.{key}={have!r}, "
                    f"but the config asks for {section}.{key}={value!r}"
                )


def check_model(model: ModelConfig, world: WorldConfig) -> None:
    """What the driver checks before Ray starts any work: the checkpoint or hub folder is there,
    complete, of the right kind, and its weights fit its config (no weights are loaded)."""
    if model.hub:
        from .hub import check_hub

        check_hub(model)
        if model.backbone == "ltx2" and model.ltx2.image_crf:
            import importlib.util

            if importlib.util.find_spec("av") is None:
                raise ConfigError(f"model.ltx2.image_crf={model.ltx2.image_crf} re-compresses the first frame with "
                                  "PyAV, which is not installed: pip install av, or set model.ltx2.image_crf=0")
    elif model.checkpoint:
        check_checkpoint(resolve_checkpoint(model.checkpoint), model, world)


def build_backbone(model: ModelConfig, world: WorldConfig, text: TextEncoder | None = None) -> Backbone:
    cls = BACKBONES[model.backbone]
    if model.hub:
        from .hub import load_pipeline

        backbone = cls.from_pipeline(load_pipeline(model), model, world)
    else:
        backbone = _embedded(cls, model, world, text)
    place(backbone, assigned_device(), model.dtype, model.offload_encoders)
    return backbone.eval()


def _embedded(cls, model: ModelConfig, world: WorldConfig, text: TextEncoder | None) -> Backbone:
    """Our own pixel-space Wan: the shipped checkpoint, another of ours, or a tiny random init."""
    path = resolve_checkpoint(model.checkpoint) if model.checkpoint else None
    if path is not None:
        check_checkpoint(path, model, world)
    if model.backbone != "wan":
        raise ConfigError(f"model.backbone={model.backbone} runs from a diffusers pipeline: set model.hub "
                          "(the embedded world's own checkpoints are tiny pixel-space Wan models)")
    text = text or TextEncoder(model.text_encoder, model.max_text_tokens, model.text_cache)
    codec = PixelCodec()
    if path is not None:
        try:
            transformer = cls.transformer_class.from_pretrained(path / "transformer")
        except (OSError, ValueError, RuntimeError) as e:
            raise ConfigError(f"model.checkpoint: cannot load {path / 'transformer'}: {e}") from e
    else:
        transformer = cls.tiny_transformer(model, codec.channels, text.dim)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=model.timestep_shift)
    return cls(transformer, codec, text, model, world.frames, world.resolution, scheduler)


def save_checkpoint(backbone: Backbone, path: str | os.PathLike, world: WorldConfig, extra: dict | None = None) -> None:
    """Write ``transformer/`` + ``model.yaml`` (tmp folder then rename: a kill never leaves half a checkpoint)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    backbone.transformer.save_pretrained(tmp / "transformer", safe_serialization=True)
    meta = checkpoint_keys(backbone.cfg, world) | {"config": to_dict(backbone.cfg)} | (extra or {})
    (tmp / "model.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    if path.exists():
        import shutil

        shutil.rmtree(path)
    os.replace(tmp, path)
