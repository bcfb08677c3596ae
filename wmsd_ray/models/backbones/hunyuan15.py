"""HunyuanVideo-1.5 image-to-video (``HunyuanVideo15Transformer3DModel``).

Conditioning as in its I2V pipeline: [noisy latents | first-frame latent then zeros | mask]
(in_channels = 2C + 1). The second (ByT5 glyph) text stream gets one masked-out token and
the SigLIP image tokens are zero (the model's own text-only switch): the first frame
reaches the network through the concatenated latent.
"""
from __future__ import annotations

import torch
from diffusers import HunyuanVideo15Transformer3DModel

from .base import Backbone, Condition


class Hunyuan15Backbone(Backbone):
    name = "hunyuan15"
    transformer_class = HunyuanVideo15Transformer3DModel

    @staticmethod
    def tiny_transformer(cfg, channels: int, text_dim: int) -> HunyuanVideo15Transformer3DModel:
        return HunyuanVideo15Transformer3DModel(
            in_channels=2 * channels + 1, out_channels=channels, num_attention_heads=cfg.heads,
            attention_head_dim=cfg.head_dim, num_layers=cfg.layers, num_refiner_layers=1,
            mlp_ratio=cfg.ffn_dim / (cfg.heads * cfg.head_dim), patch_size=cfg.patch, patch_size_t=1,
            text_embed_dim=text_dim, text_embed_2_dim=32, image_embed_dim=32,
            rope_axes_dim=(cfg.head_dim // 4, 3 * cfg.head_dim // 8, 3 * cfg.head_dim // 8), target_size=64,
        )

    def _forward(self, x_t: torch.Tensor, sigma: torch.Tensor, cond: Condition) -> torch.Tensor:
        b = x_t.shape[0]
        cfg = self.transformer.config
        return self.net(
            hidden_states=self.concat_condition(x_t, cond), timestep=sigma * 1000.0,
            encoder_hidden_states=cond.prompt.hidden, encoder_attention_mask=cond.prompt.mask,
            encoder_hidden_states_2=torch.zeros(b, 1, cfg.text_embed_2_dim, dtype=x_t.dtype),
            encoder_attention_mask_2=torch.zeros(b, 1, dtype=x_t.dtype),
            image_embeds=torch.zeros(b, 1, cfg.image_embed_dim, dtype=x_t.dtype), return_dict=False,
        )[0]
