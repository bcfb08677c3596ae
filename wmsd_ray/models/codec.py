"""Video <-> latent codecs. Latents are (B, C, T, h, w) float32, as diffusers lays them out.

``PixelCodec`` is the embedded default: the "latent space" is the video itself in [-1, 1]
(at 32 px a VAE costs more than it saves; see the model card). ``VaeCodec`` wraps any
diffusers video autoencoder (AutoencoderKLWan, AutoencoderKLLTX2Video,
AutoencoderKLHunyuanVideo15) with its latent normalisation.
"""
from __future__ import annotations

import numpy as np
import torch


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(127.5).sub_(1.0)
    return x.permute(0, 4, 1, 2, 3).contiguous()


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """(B, 3, T, H, W) float in [-1, 1] -> (B, T, H, W, 3) uint8."""
    x = x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


class PixelCodec:
    channels = 3
    scale = (1, 1, 1)  # (time, height, width) downsampling

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        return frames_to_tensor(frames)

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        return tensor_to_frames(latents)


class VaeCodec:
    """A diffusers video VAE; latents are normalised to unit scale with the VAE's statistics."""

    def __init__(self, vae: torch.nn.Module):
        self.vae = vae.eval().requires_grad_(False)
        cfg = vae.config
        self.channels = int(cfg.latent_channels if hasattr(cfg, "latent_channels") else cfg.z_dim)
        mean = getattr(cfg, "latents_mean", None)
        std = getattr(cfg, "latents_std", None)
        shape = (1, self.channels, 1, 1, 1)
        self._mean = torch.tensor(mean).view(shape) if mean is not None else torch.zeros(shape)
        self._std = torch.tensor(std).view(shape) if std is not None else torch.ones(shape)
        self._scaling = float(getattr(cfg, "scaling_factor", 1.0) or 1.0)
        t = int(getattr(cfg, "temporal_compression_ratio", 0) or getattr(cfg, "scale_factor_temporal", 0) or 4)
        s = int(getattr(cfg, "spatial_compression_ratio", 0) or getattr(cfg, "scale_factor_spatial", 0) or 8)
        self.scale = (t, s, s)

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        dist = self.vae.encode(frames_to_tensor(frames)).latent_dist
        return (dist.mode() - self._mean) / self._std * self._scaling

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        x = latents / self._scaling * self._std + self._mean
        return tensor_to_frames(self.vae.decode(x).sample)
