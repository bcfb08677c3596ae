"""Wan2.x image-to-video (``WanTransformer3DModel``; ``AutoencoderKLWan`` on a cluster).

Condition channels are concatenated Wan-I2V style: [noisy latents | first-frame latent then
zeros | mask], so in_channels = 2C + mask channels. A checkpoint whose in_channels equal C
(Wan2.2 TI2V) gets replacement conditioning only.
"""
from __future__ import annotations

import torch
from diffusers import WanTransformer3DModel

from .base import Backbone, Condition


class WanBackbone(Backbone):
    name = "wan"
    transformer_class = WanTransformer3DModel

    @staticmethod
    def tiny_transformer(cfg, channels: int, text_dim: int) -> WanTransformer3DModel:
        return WanTransformer3DModel(
            patch_size=(1, cfg.patch, cfg.patch), num_attention_heads=cfg.heads, attention_head_dim=cfg.head_dim,
            in_channels=2 * channels + 1, out_channels=channels, text_dim=text_dim, freq_dim=64,
            ffn_dim=cfg.ffn_dim, num_layers=cfg.layers, rope_max_seq_len=64,
        )

    def _inputs(self, x_t: torch.Tensor, cond: Condition) -> torch.Tensor:
        c = x_t.shape[1]
        extra = self.transformer.config.in_channels - c
        if extra == 0:
            return x_t
        return self.concat_condition(x_t, cond, mask_channels=extra - c)

    def _forward(self, x_t: torch.Tensor, sigma: torch.Tensor, cond: Condition) -> torch.Tensor:
        return self.net(
            hidden_states=self._inputs(x_t, cond), timestep=sigma * 1000.0,
            encoder_hidden_states=cond.prompt.hidden, return_dict=False,
        )[0]
