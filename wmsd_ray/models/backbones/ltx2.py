"""LTX-2 image-to-video (``LTX2VideoTransformer3DModel``), the paper's main backbone.

LTX conditions on the first frame by replacement with a per-token timestep: tokens of
latent frame 0 get timestep 0. Latents are packed into (B, tokens, C*p*p) sequences as the
LTX pipelines do. LTX-2 is audio-visual; we feed one silent audio token, since WMSD
trains video only.
"""
from __future__ import annotations

import torch
from diffusers import LTX2VideoTransformer3DModel

from .base import Backbone, Condition

AUDIO_CHANNELS_TINY = 8


class LTX2Backbone(Backbone):
    name = "ltx2"
    transformer_class = LTX2VideoTransformer3DModel

    @staticmethod
    def tiny_transformer(cfg, channels: int, text_dim: int) -> LTX2VideoTransformer3DModel:
        p = cfg.patch
        return LTX2VideoTransformer3DModel(
            in_channels=channels * p * p, out_channels=channels * p * p, patch_size=1, patch_size_t=1,
            num_attention_heads=cfg.heads, attention_head_dim=cfg.head_dim,
            cross_attention_dim=cfg.heads * cfg.head_dim, vae_scale_factors=(1, p, p),
            audio_in_channels=AUDIO_CHANNELS_TINY, audio_out_channels=AUDIO_CHANNELS_TINY,
            audio_num_attention_heads=1, audio_attention_head_dim=cfg.head_dim,
            audio_cross_attention_dim=cfg.head_dim, num_layers=cfg.layers, caption_channels=text_dim,
            base_height=64, base_width=64,
        )

    @property
    def _pack(self) -> int:
        """Spatial packing factor: in_channels / latent channels = p * p."""
        return int(round((self.transformer.config.in_channels / self.codec.channels) ** 0.5))

    def _packed(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        p = self._pack
        x = x.reshape(b, c, t, h // p, p, w // p, p).permute(0, 2, 3, 5, 1, 4, 6)
        return x.reshape(b, t * (h // p) * (w // p), c * p * p)

    def _unpacked(self, x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        b, c, t, h, w = shape
        p = self._pack
        x = x.reshape(b, t, h // p, w // p, c, p, p).permute(0, 4, 1, 2, 5, 3, 6)
        return x.reshape(b, c, t, h, w)

    def _forward(self, x_t: torch.Tensor, sigma: torch.Tensor, cond: Condition) -> torch.Tensor:
        b, _, t, h, w = x_t.shape
        p = self._pack
        tokens = self._packed(x_t)
        per_frame = (h // p) * (w // p)
        timestep = (sigma * 1000.0)[:, None].repeat(1, tokens.shape[1])
        timestep[:, :per_frame] = 0.0  # the clean conditioning frame
        cfg = self.transformer.config
        audio = torch.zeros(b, 1, cfg.audio_in_channels, dtype=x_t.dtype)
        text, mask = cond.prompt.hidden, cond.prompt.mask
        out = self.net(
            hidden_states=tokens, audio_hidden_states=audio, encoder_hidden_states=text,
            audio_encoder_hidden_states=text, timestep=timestep, audio_timestep=sigma * 1000.0,
            sigma=sigma, encoder_attention_mask=mask, audio_encoder_attention_mask=mask,
            num_frames=t, height=h // p, width=w // p, audio_num_frames=1, return_dict=False,
        )[0]
        return self._unpacked(out, x_t.shape)
