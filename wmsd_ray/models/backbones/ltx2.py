"""LTX-2 image-to-video (``LTX2VideoTransformer3DModel``), the paper's main backbone, driven as
``LTX2ImageToVideoPipeline`` does.

- Prompts: Gemma-3, every hidden layer stacked (left padding), through ``LTX2TextConnectors``
  into separate video and audio text embeddings.
- The state is audio-visual: normalised video latents (frame 0 = the image latent, its tokens at
  timestep 0) and the packed audio latents, denoised jointly; both are sampled streams, so they
  share the SDE, the log-probs and the losses.
- Schedule: the pipeline's sigmas (``linspace(1, 1/N, N)``, or ``model.sigmas`` such as the
  distilled checkpoint's list) through the checkpoint's scheduler with its resolution-dependent
  ``mu`` (dynamic shift, terminal stretch).
- Guidance in x0 space: CFG delta, spatio-temporal guidance on chosen blocks, modality
  isolation, rescale; separate scales for the audio stream.
"""
from __future__ import annotations

import numpy as np
import torch
from diffusers import LTX2ImageToVideoPipeline, LTX2VideoTransformer3DModel
from diffusers.guiders.guider_utils import rescale_noise_cfg
from diffusers.pipelines.ltx2.pipeline_ltx2_image2video import calculate_shift
from diffusers.pipelines.ltx2.utils import apply_image_conditioning_crf, conditioning_frame_rate

from ...errors import ConfigError
from ..codec import VaeCodec
from ..text import PromptCache, PromptEmbeds
from .base import Backbone, Condition, check_size, euler_scheduler

P = LTX2ImageToVideoPipeline  # its static pack / normalise helpers are the reference layout


class LTX2Backbone(Backbone):
    name = "ltx2"
    transformer_class = LTX2VideoTransformer3DModel

    def __init__(self, *args, pipe=None, **kwargs):
        super().__init__(*args, **kwargs)
        if pipe is None:
            raise ConfigError("model.backbone=ltx2 runs from a diffusers LTX-2 pipeline: set model.hub")
        self.pipe = pipe
        self.text = PromptCache(self._encode_gemma, self.cfg.text_cache)
        c, t, h, w = self.latent_dims()
        self.video_size = c * t * h * w
        duration = self.frames / self.cfg.ltx2.frame_rate
        per_second = pipe.audio_sampling_rate / pipe.audio_hop_length / float(pipe.audio_vae_temporal_compression_ratio)
        self.audio_frames = round(duration * per_second)
        self.mel_bins = pipe.audio_vae.config.mel_bins // pipe.audio_vae_mel_compression_ratio
        self.audio_channels = pipe.audio_vae.config.latent_channels
        self.fps = conditioning_frame_rate(self.cfg.ltx2.frame_rate, 1.0)

    @classmethod
    def from_pipeline(cls, pipe, cfg, world) -> "LTX2Backbone":
        """Video latents normalised with the VAE's buffer statistics and scaling factor (decoding at
        timestep 0 where the VAE is timestep-conditioned, as the pipeline does by default)."""
        vae = pipe.vae
        st, ss = pipe.vae_temporal_compression_ratio, pipe.vae_spatial_compression_ratio
        check_size(world, st, ss * pipe.transformer_spatial_patch_size, "LTX-2")
        codec = VaeCodec(
            vae, lambda z: P._normalize_latents(z, vae.latents_mean, vae.latents_std, vae.config.scaling_factor),
            lambda z: P._denormalize_latents(z, vae.latents_mean, vae.latents_std, vae.config.scaling_factor),
            (st, ss, ss),
            (lambda z: {"temb": torch.zeros(z.shape[0], device=z.device)}) if vae.config.timestep_conditioning else None)
        return cls(pipe.transformer, codec, None, cfg, world.frames, world.resolution,
                   euler_scheduler(pipe.scheduler, shift_from_config=False), pipe=pipe)

    # -- the state: [video (C, T, h, w) | packed audio (L, C_a * M)] ----------------------
    def latent_dims(self) -> tuple[int, int, int, int]:
        p = self.pipe
        return (self.transformer.config.in_channels, (self.frames - 1) // p.vae_temporal_compression_ratio + 1,
                self.resolution // p.vae_spatial_compression_ratio, self.resolution // p.vae_spatial_compression_ratio)

    def state_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.video_size + self.audio_frames * self.audio_channels * self.mel_bins)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A state -> (video (B, C, T, h, w), packed audio (B, L, C_a * M))."""
        b = x.shape[0]
        return (x[:, :self.video_size].reshape(b, *self.latent_dims()),
                x[:, self.video_size:].reshape(b, self.audio_frames, -1))

    @staticmethod
    def join(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return torch.cat([video.flatten(1), audio.flatten(1)], dim=1)

    def initial_noise(self, rows: int, generator: torch.Generator) -> torch.Tensor:
        video = torch.randn((rows, *self.latent_dims()), generator=generator)
        audio = torch.randn((rows, self.audio_channels, self.audio_frames, self.mel_bins), generator=generator)
        return self.join(video, P._pack_audio_latents(audio))

    def gen_mask(self, like: torch.Tensor) -> torch.Tensor:
        video = torch.ones(1, *self.latent_dims(), dtype=like.dtype, device=like.device)
        video[:, :, 0] = 0
        return torch.cat([video.flatten(1), torch.ones(1, like.shape[1] - self.video_size, dtype=like.dtype,
                                                       device=like.device)], dim=1)

    def replace_first(self, x: torch.Tensor, cond: Condition) -> torch.Tensor:
        video, audio = self.split(x)
        return self.join(torch.cat([cond.image.to(x.dtype), video[:, :, 1:]], dim=2), audio)

    def video_latents(self, x: torch.Tensor) -> torch.Tensor:
        return self.split(x)[0]

    def pipeline_latents(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        video, audio = self.split(x)
        vae, avae = self.pipe.vae, self.pipe.audio_vae
        video = P._denormalize_latents(video, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
        audio = P._denormalize_audio_latents(audio, avae.latents_mean, avae.latents_std)
        return video, P._unpack_audio_latents(audio, self.audio_frames, num_mel_bins=self.mel_bins)

    def encode_video(self, frames: np.ndarray) -> torch.Tensor:
        raise ValueError("LTX-2's state is audio-visual: it has no encoding of a silent video")

    # -- conditioning -------------------------------------------------------------------
    def _encode_gemma(self, texts: list[str]) -> PromptEmbeds:
        pipe, length = self.pipe, self.cfg.max_text_tokens or 1024
        with torch.no_grad():
            embeds, mask, _, _ = pipe.encode_prompt(prompt=texts, do_classifier_free_guidance=False,
                                                    max_sequence_length=length, device=self.encoder_device)
            side = getattr(pipe.tokenizer, "padding_side", "left")
            video, audio, mask = pipe.connectors(embeds, mask, padding_side=side)
        return PromptEmbeds(video, mask, {"audio_hidden": audio})

    def encode_prompt(self, texts: list[str]) -> PromptEmbeds:
        return self.text(list(texts))

    def encoders(self) -> list[torch.nn.Module]:
        return [self.pipe.text_encoder, self.pipe.connectors]

    def encode_image(self, images: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        """Each first frame through the pipeline's processor and VAE (argmax), normalised as it does."""
        from PIL import Image

        out = []
        for im in np.asarray(images):
            if self.cfg.ltx2.image_crf:
                im = apply_image_conditioning_crf(im, self.cfg.ltx2.image_crf)
            pixels = self.pipe.video_processor.preprocess(Image.fromarray(im), height=self.resolution,
                                                          width=self.resolution).to(dtype)
            with torch.no_grad():
                latent = self.pipe.vae.encode(pixels.unsqueeze(2).to(self.codec.device, self.codec.dtype)).latent_dist.mode()
            out.append(latent.float())
        vae = self.pipe.vae
        return P._normalize_latents(torch.cat(out), vae.latents_mean, vae.latents_std)

    def condition(self, images: np.ndarray, texts: list[str]) -> Condition:
        prompt = self.encode_prompt(texts)
        image = self.encode_image(images, self.pipe.text_encoder.dtype)
        return self.on_device(Condition(prompt, image, self.negative(len(texts))))

    def negative(self, batch: int) -> PromptEmbeds | None:
        g = self.cfg.guidance
        return self.encode_prompt([g.negative_prompt] * batch) if (g.scale > 1 or g.audio_scale > 1) else None

    # -- the schedule -------------------------------------------------------------------
    def set_timesteps(self, steps: int) -> None:
        sigmas = list(self.cfg.sigmas) if self.cfg.sigmas else np.linspace(1.0, 1 / steps, steps)
        c, t, h, w = self.latent_dims()
        cfg = self.scheduler.config
        mu = calculate_shift(t * h * w, cfg.get("base_image_seq_len", 1024), cfg.get("max_image_seq_len", 4096),
                             cfg.get("base_shift", 0.95), cfg.get("max_shift", 2.05))
        self.scheduler.set_timesteps(sigmas=sigmas, mu=mu)

    # -- the network --------------------------------------------------------------------
    def _forward(self, x, sigma, cond, prompt, sigma_next, isolate: bool = False,
                 stg_blocks: list[int] | None = None) -> torch.Tensor:
        video, audio = self.split(x)
        b, _, t, h, w = video.shape
        tokens = self._packed(video)
        first = torch.zeros(b, 1, t, h, w, device=x.device)
        first[:, :, 0] = 1.0
        t_model = self.timestep(sigma)
        dtype, tr = self.dtype, self.transformer
        out_video, out_audio = self.call_expert(
            0, hidden_states=tokens.to(dtype), audio_hidden_states=audio.to(dtype),
            encoder_hidden_states=prompt.hidden.to(dtype), audio_encoder_hidden_states=prompt.extra["audio_hidden"].to(dtype),
            timestep=t_model[:, None] * (1 - self._packed(first).squeeze(-1)), audio_timestep=t_model, sigma=t_model,
            encoder_attention_mask=prompt.mask, audio_encoder_attention_mask=prompt.mask,
            num_frames=t, height=h, width=w, fps=self.fps, audio_num_frames=self.audio_frames,
            video_coords=tr.rope.prepare_video_coords(b, t, h, w, x.device, fps=self.fps),
            audio_coords=tr.audio_rope.prepare_audio_coords(b, self.audio_frames, x.device),
            isolate_modalities=isolate, spatio_temporal_guidance_blocks=stg_blocks, perturbation_mask=None,
            use_cross_timestep=self.cfg.ltx2.cross_timestep, return_dict=False,
        )
        return self.join(self._unpacked(out_video.float(), t, h, w), out_audio.float())

    def guided_velocity(self, x, sigma, cond, sigma_next) -> torch.Tensor:
        """The pipeline's guidance: each pass as x0 = x - sigma v, deltas added per stream, rescaled,
        then back to a velocity."""
        g = self.cfg.guidance
        scale = (g.scale, g.audio_scale or g.scale)
        stg = (g.stg_scale, g.audio_stg_scale or g.stg_scale)
        modality = (g.modality_scale, g.audio_modality_scale or g.modality_scale)
        rescale = (g.rescale, g.audio_rescale or g.rescale)
        s = sigma.view(-1, 1)

        def x0(out):
            return self.split(x - s * out)

        cond_x0 = [self._packed(c) for c in x0(self._forward(x, sigma, cond, cond.prompt, sigma_next))]
        guided = list(cond_x0)
        passes = []
        if cond.negative is not None and max(scale) > 1:
            passes.append(([k - 1 for k in scale], {"prompt": cond.negative}))
        if max(stg) > 0:
            passes.append((list(stg), {"stg_blocks": list(g.stg_blocks)}))
        if max(modality) > 1:
            passes.append(([k - 1 for k in modality], {"isolate": True}))
        for weights, how in passes:  # added in the pipeline's order: CFG, STG, modality
            other = x0(self._forward(x, sigma, cond, how.pop("prompt", cond.prompt), sigma_next, **how))
            guided = [gd + wt * (c - self._packed(o)) for gd, wt, c, o in zip(guided, weights, cond_x0, other)]
        guided = [rescale_noise_cfg(gd, c, guidance_rescale=r) if r > 0 else gd
                  for gd, c, r in zip(guided, cond_x0, rescale)]
        video, audio = guided
        _, t, h, w = self.latent_dims()
        return (x - self.join(self._unpacked(video, t, h, w), audio)) / s

    def _packed(self, latents: torch.Tensor) -> torch.Tensor:
        """Video (B, C, T, h, w) -> tokens (B, S, D) as the pipeline packs them; audio passes through."""
        if latents.ndim != 5:
            return latents
        return P._pack_latents(latents, self.pipe.transformer_spatial_patch_size,
                               self.pipe.transformer_temporal_patch_size)

    def _unpacked(self, tokens: torch.Tensor, t: int, h: int, w: int) -> torch.Tensor:
        return P._unpack_latents(tokens, t, h, w, self.pipe.transformer_spatial_patch_size,
                                 self.pipe.transformer_temporal_patch_size)
