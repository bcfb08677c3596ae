"""HunyuanVideo-1.5 image-to-video (``HunyuanVideo15Transformer3DModel``), driven as
``HunyuanVideo15ImageToVideoPipeline`` does.

- Prompts: Qwen2.5-VL text model over the pipeline's chat template, ``hidden_states[-3]``,
  the template's first 108 tokens cropped; a ByT5 stream for quoted glyph text (zeros and a
  zero mask when the prompt quotes nothing).
- The first frame: SigLIP tokens of the bucket-cropped image, and the channel condition
  [noisy latents | image latent then zeros | mask]; every frame is denoised.
- Schedule: ``linspace(1, 0, N + 1)[:-1]`` through the checkpoint's scheduler (its shift).
- The step-distilled checkpoints (``use_meanflow``) also take ``timestep_r``: the step's target
  timestep (0 at the last step); at a single noise level (training) r = t.
"""
from __future__ import annotations

import numpy as np
import torch
from diffusers import HunyuanVideo15Transformer3DModel

from ...errors import ConfigError
from ..codec import VaeCodec
from ..text import PromptCache, PromptEmbeds
from .base import Backbone, Condition, check_size, euler_scheduler


def _pipeline():
    """The reference pipeline class (imported late: its module pulls in the SigLIP processors)."""
    from diffusers import HunyuanVideo15ImageToVideoPipeline

    return HunyuanVideo15ImageToVideoPipeline


class Hunyuan15Backbone(Backbone):
    name = "hunyuan15"
    transformer_class = HunyuanVideo15Transformer3DModel
    first_frame = "denoise"

    def __init__(self, *args, pipe=None, **kwargs):
        super().__init__(*args, **kwargs)
        if pipe is None:
            raise ConfigError("model.backbone=hunyuan15 runs from a diffusers HunyuanVideo-1.5 pipeline: set model.hub")
        self.pipe = pipe
        self.text = PromptCache(self._encode_text, self.cfg.text_cache)
        h, w = pipe.video_processor.calculate_default_height_width(self.resolution, self.resolution,
                                                                   pipe.target_size)
        if (h, w) != (self.resolution, self.resolution):
            raise ConfigError(f"HunyuanVideo-1.5 makes {h}x{w} videos from a {self.resolution}px square image "
                              f"(its {pipe.target_size}px buckets): set world.resolution={h}")

    @classmethod
    def from_pipeline(cls, pipe, cfg, world) -> "Hunyuan15Backbone":
        """Latents scaled by the VAE's scaling factor only, as the pipeline does. Decoding goes one
        video at a time: diffusers 0.42.1's AutoencoderKLHunyuanVideo15 mid-block attention builds
        its causal mask as (B, N, N) against (B, 1, N, N) queries, which fails for B > 1."""
        guider = pipe.guider.config
        if guider.get("use_original_formulation") or guider.get("start", 0.0) != 0.0 or guider.get("stop", 1.0) != 1.0:
            raise ConfigError("model.hub: this HunyuanVideo-1.5 guider guides only part of the steps or uses the "
                              "original CFG formulation, which wmsd-ray's guidance does not reproduce")
        sf = pipe.vae.config.scaling_factor
        st, ss = pipe.vae_scale_factor_temporal, pipe.vae_scale_factor_spatial
        check_size(world, st, ss * pipe.transformer.config.patch_size, "HunyuanVideo-1.5")
        codec = VaeCodec(pipe.vae, lambda z: z * sf, lambda z: z / sf, (st, ss, ss), max_batch=1)
        return cls(pipe.transformer, codec, None, cfg, world.frames, world.resolution,
                   euler_scheduler(pipe.scheduler, shift_from_config=False), pipe=pipe)

    # -- conditioning -------------------------------------------------------------------
    def _encode_text(self, texts: list[str]) -> PromptEmbeds:
        pipe, device, P = self.pipe, self.encoder_device, _pipeline()
        with torch.no_grad():
            hidden, mask = P._get_mllm_prompt_embeds(
                pipe.text_encoder, pipe.tokenizer, texts, device,
                tokenizer_max_length=self.cfg.max_text_tokens or pipe.tokenizer_max_length,
                system_message=pipe.system_message, crop_start=pipe.prompt_template_encode_start_idx)
            glyph, glyph_mask = P._get_byt5_prompt_embeds(pipe.tokenizer_2, pipe.text_encoder_2, texts, device,
                                                          tokenizer_max_length=pipe.tokenizer_2_max_length)
        return PromptEmbeds(hidden, mask, {"hidden_2": glyph, "mask_2": glyph_mask})

    def encode_prompt(self, texts: list[str]) -> PromptEmbeds:
        return self.text(list(texts))

    def encoders(self) -> list[torch.nn.Module]:
        return [self.pipe.text_encoder, self.pipe.text_encoder_2, self.pipe.image_encoder]

    def _images(self, images: np.ndarray) -> list:
        from PIL import Image

        return [self.pipe.video_processor.resize(Image.fromarray(im), height=self.resolution, width=self.resolution,
                                                 resize_mode="crop") for im in np.asarray(images)]

    def condition(self, images: np.ndarray, texts: list[str]) -> Condition:
        pipe, P = self.pipe, _pipeline()
        pil = self._images(images)
        with torch.no_grad():
            embeds = P._get_image_embeds(pipe.image_encoder, pipe.feature_extractor, pil, self.encoder_device)
            latents = torch.cat([P._get_image_latents(pipe.vae, pipe.video_processor, im, self.resolution,
                                                      self.resolution, self.codec.device) for im in pil])
        return self.on_device(Condition(self.encode_prompt(texts), latents.float(), self.negative(len(texts)),
                                        {"image_embeds": embeds.float()}))

    # -- the schedule -------------------------------------------------------------------
    def set_timesteps(self, steps: int) -> None:
        sigmas = list(self.cfg.sigmas) if self.cfg.sigmas else np.linspace(1.0, 0.0, steps + 1)[:-1]
        self.scheduler.set_timesteps(sigmas=sigmas)

    # -- the network --------------------------------------------------------------------
    def _forward(self, x, sigma, cond, prompt, sigma_next, **variant) -> torch.Tensor:
        b, _, t, h, w = x.shape
        cond_video = torch.zeros(b, cond.image.shape[1], t, h, w, device=x.device)
        cond_video[:, :, :1] = cond.image
        mask = torch.zeros(b, 1, t, h, w, device=x.device)
        mask[:, :, 0] = 1.0
        dtype = self.dtype
        timestep = self.timestep(sigma).to(dtype)
        timestep_r = None
        if self.transformer.config.use_meanflow:
            timestep_r = timestep if sigma_next is None else self.timestep(sigma_next).to(dtype)
        return self.call_expert(
            0, hidden_states=torch.cat([x, cond_video, mask], dim=1).to(dtype), image_embeds=cond.extra["image_embeds"].to(dtype),
            timestep=timestep, timestep_r=timestep_r, encoder_hidden_states=prompt.hidden.to(dtype),
            encoder_attention_mask=prompt.mask.to(dtype), encoder_hidden_states_2=prompt.extra["hidden_2"].to(dtype),
            encoder_attention_mask_2=prompt.extra["mask_2"].to(dtype), return_dict=False,
        )[0].float()
