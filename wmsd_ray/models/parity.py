"""Our sampler against the diffusers pipeline on the same checkpoint, image, prompt, seed and steps.

``pipeline_call`` turns a config into the pipeline's own arguments (guidance scales, sigma
list, prompt length, frame rate); ``load_adapter`` loads a saved Executor adapter through each
pipeline's documented LoRA API. The tests run this on tiny real-layout checkpoints; on a GPU
machine the same command checks a real one:

    python -m wmsd_ray.models.parity --config configs/ltx2_paper.yaml model.sample_steps=4

One deliberate departure: Wan repos ship a UniPC multistep scheduler; wmsd-ray integrates with
the Euler scheduler at the same ``flow_shift`` (RL needs a one-step transition kernel), so the
reference pipeline is given that scheduler too.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from .backbones import Backbone
from .lora import ADAPTER, weight_name
from .sampling import initial_noise, ode_sample


def pipeline_call(cfg: Config, pipe) -> dict:
    """The pipeline keyword arguments that match ``cfg`` (beyond image, prompt and generator)."""
    m, g = cfg.model, cfg.model.guidance
    kw = dict(num_frames=cfg.world.frames, num_inference_steps=m.sample_steps, output_type="latent",
              negative_prompt=g.negative_prompt)
    if m.backbone == "wan":
        kw.update(height=cfg.world.resolution, width=cfg.world.resolution, guidance_scale=g.scale,
                  max_sequence_length=m.max_text_tokens or 512)
        if pipe.config.boundary_ratio is not None:
            kw["guidance_scale_2"] = g.scale_2 or g.scale
    elif m.backbone == "ltx2":
        kw.update(height=cfg.world.resolution, width=cfg.world.resolution, frame_rate=m.ltx2.frame_rate,
                  max_sequence_length=m.max_text_tokens or 1024, image_crf=m.ltx2.image_crf,
                  use_cross_timestep=m.ltx2.cross_timestep, guidance_scale=g.scale,
                  audio_guidance_scale=g.audio_scale or g.scale, stg_scale=g.stg_scale,
                  audio_stg_scale=g.audio_stg_scale or g.stg_scale, modality_scale=g.modality_scale,
                  audio_modality_scale=g.audio_modality_scale or g.modality_scale, guidance_rescale=g.rescale,
                  audio_guidance_rescale=g.audio_rescale or g.rescale,
                  spatio_temporal_guidance_blocks=list(g.stg_blocks) or None)
        if m.sigmas:
            kw["sigmas"] = list(m.sigmas)
    else:
        if m.sigmas:
            kw["sigmas"] = list(m.sigmas)
    return kw


def prepare_reference(cfg: Config, pipe) -> None:
    """Set what the pipeline reads from itself rather than from its call: Wan's Euler scheduler,
    HunyuanVideo-1.5's guider scale and prompt length."""
    m = cfg.model
    if m.backbone == "wan":
        from .backbones.base import euler_scheduler

        pipe.scheduler = euler_scheduler(pipe.scheduler)
    elif m.backbone == "hunyuan15":
        from diffusers.guiders import ClassifierFreeGuidance

        pipe.guider = ClassifierFreeGuidance(guidance_scale=m.guidance.scale, guidance_rescale=m.guidance.rescale)
        if m.max_text_tokens:
            pipe.tokenizer_max_length = m.max_text_tokens


def reference_latents(cfg: Config, pipe, image: np.ndarray, prompt: str, seed: int) -> tuple[torch.Tensor, ...]:
    """The pipeline's ``output_type="latent"`` output for one (H, W, 3) uint8 image: (video[, audio])."""
    from PIL import Image

    prepare_reference(cfg, pipe)
    out = pipe(image=Image.fromarray(image), prompt=prompt, generator=torch.Generator().manual_seed(seed),
               **pipeline_call(cfg, pipe))
    return (out.frames, out.audio) if cfg.model.backbone == "ltx2" else (out.frames,)


def our_latents(backbone: Backbone, image: np.ndarray, prompt: str, seed: int) -> tuple[torch.Tensor, ...]:
    """Our ODE sampler's final state for the same inputs, in the pipeline's output form."""
    cond = backbone.condition(image[None], [prompt])
    x = initial_noise(backbone, cond, torch.Generator().manual_seed(seed))
    return backbone.pipeline_latents(ode_sample(backbone, cond, x))


def max_abs_diff(ours: tuple[torch.Tensor, ...], ref: tuple[torch.Tensor, ...]) -> float:
    if [tuple(a.shape) for a in ours] != [tuple(b.shape) for b in ref]:
        raise ValueError(f"shapes differ: ours {[tuple(a.shape) for a in ours]}, pipeline {[tuple(b.shape) for b in ref]}")
    return max(float((a.float() - b.float()).abs().max()) for a, b in zip(ours, ref))


def load_adapter(pipe, backbone_name: str, directory: str | Path, experts: list[str]) -> None:
    """An adapter saved by ``save_lora`` into a plain pipeline, through its documented API."""
    directory = str(directory)
    for expert in experts:
        if backbone_name == "hunyuan15":  # its pipeline has no LoRA loader
            pipe.transformer.load_lora_adapter(directory, prefix="transformer", weight_name=weight_name(expert),
                                               adapter_name=ADAPTER)
        elif expert == "transformer":
            pipe.load_lora_weights(directory, weight_name=weight_name(expert), adapter_name=ADAPTER)
        else:
            pipe.load_lora_weights(directory, weight_name=weight_name(expert), adapter_name=ADAPTER,
                                   load_into_transformer_2=True)


def main(argv: list[str] | None = None) -> int:
    from ..cli_util import config_parser, exits_cleanly_on_user_error
    from ..config import load_config
    from .loading import build_backbone

    @exits_cleanly_on_user_error
    def run() -> int:
        ap = config_parser("python -m wmsd_ray.models.parity", __doc__, "model.sample_steps=4")
        ap.add_argument("--prompt", default="The red circle slides two cells left.")
        ap.add_argument("--seed", type=int, default=0)
        args = ap.parse_args(argv)
        cfg = load_config(args.config, args.overrides)
        backbone = build_backbone(cfg.model, cfg.world)
        image = (np.random.default_rng(args.seed).random((cfg.world.resolution,) * 2 + (3,)) * 255).astype(np.uint8)
        ours = our_latents(backbone, image, args.prompt, args.seed)
        ref = reference_latents(cfg, type(backbone.pipe).from_pretrained(cfg.model.hub, dtype=backbone.dtype),
                                image, args.prompt, args.seed)
        print(f"{cfg.model.backbone} {cfg.model.hub}: max abs diff {max_abs_diff(ours, ref):.3g} "
              f"over {', '.join(str(tuple(t.shape)) for t in ref)}")
        return 0

    return run()


if __name__ == "__main__":
    sys.exit(main())
