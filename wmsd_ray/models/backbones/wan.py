"""Wan2.x image-to-video (``WanTransformer3DModel``), driven as ``WanImageToVideoPipeline`` does.

Three real variants share the code, told apart by their pipeline config and transformer:
- Wan2.1 I2V: condition channels [noisy latents | mask x t_scale | VAE latents of (image, zeros)]
  plus CLIP image tokens (``hidden_states[-2]``); every frame is denoised.
- Wan2.2 I2V-A14B: the same without CLIP, and two experts: ``transformer`` at timesteps
  >= boundary_ratio * 1000, ``transformer_2`` below, each with its own guidance scale.
- Wan2.2 TI2V-5B (``expand_timesteps``): no channel condition; frame 0 is the image latent and
  its tokens get timestep 0 (per-token timesteps).
The embedded model is a tiny pixel-space Wan in the Wan2.1 layout (identity codec, so the mask
has one channel) whose frame 0 is replaced by the clean image, as it was trained.
"""
from __future__ import annotations

import numpy as np
import torch
from diffusers import WanTransformer3DModel

from ..codec import VaeCodec, frames_to_tensor
from ..text import PromptCache, PromptEmbeds
from .base import Backbone, Condition, check_size, euler_scheduler


class WanBackbone(Backbone):
    name = "wan"
    transformer_class = WanTransformer3DModel

    def __init__(self, *args, pipe=None, expand_timesteps: bool = False, boundary_ratio: float | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.pipe, self.expand_timesteps = pipe, expand_timesteps
        self.boundary = None if boundary_ratio is None else boundary_ratio * self.scheduler.config.num_train_timesteps
        # Our own (embedded) checkpoints were trained with frame 0 replaced; so is TI2V.
        self.first_frame = "replace" if (pipe is None or expand_timesteps) else "denoise"
        if pipe is not None:
            self.text = PromptCache(self._encode_t5, self.cfg.text_cache)

    @classmethod
    def from_pipeline(cls, pipe, cfg, world) -> "WanBackbone":
        """Wan's latents: (z - mean) * (1 / std) with the VAE config's statistics, as prepare_latents does."""
        vae = pipe.vae
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(shape)
        st, ss = pipe.vae_scale_factor_temporal, pipe.vae_scale_factor_spatial
        check_size(world, st, ss * pipe.transformer.config.patch_size[1], "Wan")
        codec = VaeCodec(vae, lambda z: (z - mean.to(z.device)) * inv_std.to(z.device),
                         lambda z: z / inv_std.to(z.device) + mean.to(z.device), (st, ss, ss))
        return cls(pipe.transformer, codec, None, cfg, world.frames, world.resolution, euler_scheduler(pipe.scheduler),
                   transformer_2=pipe.transformer_2, pipe=pipe, expand_timesteps=bool(pipe.config.expand_timesteps),
                   boundary_ratio=pipe.config.boundary_ratio)

    @staticmethod
    def tiny_transformer(cfg, channels: int, text_dim: int) -> WanTransformer3DModel:
        return WanTransformer3DModel(
            patch_size=(1, cfg.patch, cfg.patch), num_attention_heads=cfg.heads, attention_head_dim=cfg.head_dim,
            in_channels=2 * channels + 1, out_channels=channels, text_dim=text_dim, freq_dim=64,
            ffn_dim=cfg.ffn_dim, num_layers=cfg.layers, rope_max_seq_len=64,
        )

    # -- conditioning -------------------------------------------------------------------
    def _encode_t5(self, texts: list[str]) -> PromptEmbeds:
        """The pipeline's own UMT5 encoding (ftfy clean, max_length padding, zeros after the prompt)."""
        length = self.cfg.max_text_tokens or 512
        with torch.no_grad():
            hidden = self.pipe._get_t5_prompt_embeds(prompt=texts, max_sequence_length=length,
                                                     device=self.encoder_device, dtype=torch.float32)
        return PromptEmbeds(hidden, (hidden.abs().sum(-1) > 0).float())

    def encode_prompt(self, texts: list[str]) -> PromptEmbeds:
        return self.text(list(texts)) if self.pipe is not None else self.text.encode(list(texts))

    def encoders(self) -> list[torch.nn.Module]:
        if self.pipe is None:
            return super().encoders()
        return [m for m in (self.pipe.text_encoder, self.pipe.image_encoder) if m is not None]

    def _pixels(self, images: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, 3, H, W) in [-1, 1], through the pipeline's processor when there is one."""
        if self.pipe is None:
            return frames_to_tensor(np.asarray(images)[:, None])[:, :, 0]
        from PIL import Image

        pil = [Image.fromarray(im) for im in np.asarray(images)]
        return self.pipe.video_processor.preprocess(pil, height=self.resolution, width=self.resolution).float()

    def _channel_condition(self, pixels: torch.Tensor) -> torch.Tensor:
        """[mask x t_scale | normalised latents of (image, zeros...)]: prepare_latents' condition."""
        b, _, height, width = pixels.shape
        st = self.codec.scale[0]
        video = torch.cat([pixels[:, :, None], pixels.new_zeros(b, 3, self.frames - 1, height, width)], dim=2)
        latent = self.codec.encode_pixels(video)
        _, _, t, h, w = latent.shape
        mask = torch.ones(b, 1, self.frames, h, w, device=latent.device)
        mask[:, :, 1:] = 0
        mask = torch.cat([mask[:, :, :1].repeat_interleave(st, dim=2), mask[:, :, 1:]], dim=2)
        mask = mask.view(b, -1, st, h, w).transpose(1, 2)
        return torch.cat([mask, latent], dim=1)

    def condition(self, images: np.ndarray, texts: list[str]) -> Condition:
        pixels = self._pixels(images)
        extra = {}
        if self.expand_timesteps:
            image = self.codec.encode_pixels(pixels[:, :, None])
        else:
            extra["channels"] = self._channel_condition(pixels)
            image = extra["channels"][:, -self.codec.channels:, :1]
        if self.pipe is not None and self.transformer.config.image_dim is not None:
            from PIL import Image

            with torch.no_grad():
                extra["image_embeds"] = self.pipe.encode_image([Image.fromarray(im) for im in np.asarray(images)],
                                                               self.encoder_device).float()
        return self.on_device(Condition(self.encode_prompt(texts), image, self.negative(len(texts)), extra))

    # -- the network --------------------------------------------------------------------
    def expert_index(self, sigma: torch.Tensor) -> torch.Tensor:
        """0 = ``transformer`` (high noise), 1 = ``transformer_2`` (below the boundary)."""
        if self.boundary is None or self.transformer_2 is None:
            return torch.zeros(sigma.shape[0], dtype=torch.long, device=sigma.device)
        return (self.timestep(sigma) < self.boundary).long()

    def guidance_scale(self, sigma: torch.Tensor) -> torch.Tensor:
        g = self.cfg.guidance
        low = self.expert_index(sigma).bool()
        return torch.where(low, g.scale_2 or g.scale, g.scale).float()

    def _timesteps(self, sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        t = self.timestep(sigma)
        if not self.expand_timesteps:
            return t
        _, ph, pw = self.transformer.config.patch_size
        keep = torch.ones(x.shape[2], x.shape[3], x.shape[4], device=x.device)
        keep[0] = 0  # frame 0's tokens are clean
        return t[:, None] * keep[:, ::ph, ::pw].flatten()[None]

    def _forward(self, x, sigma, cond, prompt, sigma_next, **variant) -> torch.Tensor:
        inputs = x if "channels" not in cond.extra else torch.cat([x, cond.extra["channels"]], dim=1)
        experts = self.expert_index(sigma)
        if bool((experts == experts[0]).all()):
            return self._run(int(experts[0]), inputs, sigma, cond, prompt)
        out = torch.empty_like(x)
        for e in experts.unique().tolist():  # a batch of mixed noise levels (training) splits by expert
            rows = (experts == e).nonzero().squeeze(1)
            out[rows] = self._run(e, inputs[rows], sigma[rows], cond.rows(rows), prompt.map(lambda t: t[rows]))
        return out

    def _run(self, expert: int, inputs, sigma, cond: Condition, prompt: PromptEmbeds) -> torch.Tensor:
        dtype = self.dtype
        image = cond.extra.get("image_embeds")
        return self.call_expert(
            expert, hidden_states=inputs.to(dtype), timestep=self._timesteps(sigma, inputs),
            encoder_hidden_states=prompt.hidden.to(dtype),
            encoder_hidden_states_image=None if image is None else image.to(dtype), return_dict=False,
        )[0].float()
