"""A real diffusers pipeline repo, read as its pipeline reads it.

``model_index.json`` names the pipeline class and its components (``transformer/``,
``transformer_2/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``image_encoder/``,
``image_processor/``, ``scheduler/``, ...); the pipeline's own ``from_pretrained`` then loads
every component with its saved config, the scheduler's included. ``check_hub`` is the cheap
part, run by the driver before Ray starts: the layout, the pipeline class, and each denoiser's
weight shapes against its config (a meta-device model against the safetensors headers, so a
19B checkpoint costs a few header reads). Each problem is one ``ConfigError`` line.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import ModelConfig
from ..device import DTYPES, META
from ..errors import ConfigError

CONFIG_FILES = ("config.json", "scheduler_config.json", "tokenizer_config.json", "preprocessor_config.json", "guider_config.json",
                "tokenizer.json", "spiece.model")


@dataclass(frozen=True)
class PipelineSpec:
    pipeline: str  # the diffusers class wmsd-ray drives
    accepts: tuple[str, ...]  # model_index.json classes whose components fit it
    required: tuple[str, ...]


SPECS = {
    "wan": PipelineSpec("WanImageToVideoPipeline", ("WanImageToVideoPipeline", "WanPipeline"),
                        ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")),
    "ltx2": PipelineSpec("LTX2ImageToVideoPipeline", ("LTX2ImageToVideoPipeline", "LTX2Pipeline"),
                         ("transformer", "vae", "audio_vae", "text_encoder", "tokenizer", "connectors", "vocoder",
                          "scheduler")),
    "hunyuan15": PipelineSpec("HunyuanVideo15ImageToVideoPipeline", ("HunyuanVideo15ImageToVideoPipeline",),
                              ("transformer", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2",
                               "image_encoder", "feature_extractor", "scheduler", "guider")),
}
DENOISERS = ("transformer", "transformer_2")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def local_folder(hub: str) -> Path:
    """The repo folder: ``hub`` itself, or for a hub id its configs fetched (no weights)."""
    path = Path(hub).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or hub.startswith((".", "~")) or not re.fullmatch(r"[\w.-]+/[\w.-]+", hub):
        raise ConfigError(f"model.hub: no pipeline folder at {path}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub, allow_patterns=["*.json", "*.txt", "*.model", "*.jinja"]))
    except Exception as e:  # offline, unknown repo, gated: all one answer for the user
        raise ConfigError(f"model.hub {hub}: cannot fetch its configs from the model hub ({_first_line(e)}); "
                          "on a machine without access, download the repo and pass its folder") from e


def read_index(folder: Path, backbone: str) -> dict:
    spec = SPECS[backbone]
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise ConfigError(f"model.hub {folder}: not a diffusers pipeline folder (no model_index.json)")
    index = json.loads(index_path.read_text())
    name = index.get("_class_name", "?")
    if name not in spec.accepts:
        raise ConfigError(f"model.hub {folder} holds a {name}; model.backbone={backbone} needs one of "
                          f"{', '.join(spec.accepts)}")
    return index


def components(index: dict) -> list[str]:
    """Components the repo names (entries that are [library, class] pairs, not null)."""
    return [k for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0] is not None]


def check_hub(model: ModelConfig) -> Path:
    """Layout, pipeline class and denoiser weight shapes; returns the folder."""
    folder = local_folder(model.hub)
    index = read_index(folder, model.backbone)
    named = components(index)
    for name in SPECS[model.backbone].required:
        if name not in named:
            raise ConfigError(f"model.hub {folder}: model_index.json names no {name} "
                              f"(the {SPECS[model.backbone].pipeline} needs it)")
    for name in named:
        sub = folder / name
        if not sub.is_dir() or not any((sub / f).is_file() for f in CONFIG_FILES):
            raise ConfigError(f"model.hub {folder}: missing subfolder {name}/ (model_index.json names it)")
    for name in DENOISERS:
        if name in named:
            check_weights(folder / name, index[name][1])
    return folder


def _weight_shapes(sub: Path) -> dict[str, tuple[int, ...]] | None:
    from safetensors import safe_open

    files = sorted(sub.glob("*.safetensors"))
    index = sorted(sub.glob("*.safetensors.index.json"))
    if index:
        files = sorted({sub / f for f in json.loads(index[0].read_text())["weight_map"].values()})
    if not files:
        return None  # a .bin checkpoint: from_pretrained checks it when it loads
    shapes = {}
    for f in files:
        if not f.is_file():
            raise ConfigError(f"model.hub: {f} is missing (its index names it)")
        with safe_open(str(f), "pt") as handle:
            for key in handle.keys():
                shapes[key] = tuple(handle.get_slice(key).get_shape())
    return shapes


def check_weights(sub: Path, class_name: str) -> None:
    """The denoiser's config, built on the meta device, against the shapes in its weight files."""
    import diffusers

    cls = getattr(diffusers, class_name, None)
    if cls is None:
        raise ConfigError(f"model.hub: {sub.name}/ is a {class_name}, which this diffusers does not have")
    shapes = _weight_shapes(sub)
    if shapes is None:
        return
    try:
        with META:
            model = cls.from_config(cls.load_config(sub))
    except Exception as e:
        raise ConfigError(f"model.hub: {sub}/config.json does not build a {class_name}: {_first_line(e)}") from e
    for key, tensor in model.state_dict().items():
        if key not in shapes:
            raise ConfigError(f"model.hub: {sub.name}/ weights lack {key}, which its config.json implies "
                              "(config and weights do not match)")
        if tuple(tensor.shape) != shapes[key]:
            raise ConfigError(f"model.hub: {sub.name}/ weight {key} has shape {list(shapes[key])} but its "
                              f"config.json implies {list(tensor.shape)} (config and weights do not match)")


def load_pipeline(model: ModelConfig):
    """The diffusers pipeline, every component loaded by its own ``from_pretrained``; denoisers and
    encoders in ``model.dtype``, autoencoders (and the rest) in float32."""
    import diffusers

    folder = check_hub(model)
    spec = SPECS[model.backbone]
    dtype = DTYPES[model.dtype]
    dtypes = {name: dtype for name in ("transformer", "transformer_2", "text_encoder", "text_encoder_2",
                                       "image_encoder", "connectors")}
    try:
        pipe = getattr(diffusers, spec.pipeline).from_pretrained(str(folder) if Path(model.hub).is_dir() else model.hub,
                                                                 dtype={**dtypes, "default": torch.float32})
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, AttributeError) as e:
        raise ConfigError(f"model.hub {model.hub}: cannot load the {spec.pipeline}: {_first_line(e)}") from e
    pipe.set_progress_bar_config(disable=True)
    for name, module in pipe.components.items():  # encoders and autoencoders are frozen; add_lora freezes the rest
        if isinstance(module, torch.nn.Module):
            module.eval().requires_grad_(name in DENOISERS)
    return pipe
