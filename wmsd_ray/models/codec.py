"""Video <-> latent codecs. Latents are (B, C, T, h, w), as diffusers lays them out.

``PixelCodec`` is the embedded default: the "latent space" is the video itself in [-1, 1]
(at 32 px a VAE costs more than it saves; see the model card). ``VaeCodec`` wraps a diffusers
video autoencoder with the latent normalisation its pipeline applies, which differs per model
(Wan: config mean/std; LTX-2: buffer mean/std and a scaling factor; HunyuanVideo-1.5: a scaling
factor only), so each backbone hands it its own pair of functions.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..device import to_numpy

Norm = Callable[[torch.Tensor], torch.Tensor]


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(127.5).sub_(1.0)
    return x.permute(0, 4, 1, 2, 3).contiguous()


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """(B, 3, T, H, W) float in [-1, 1] -> (B, T, H, W, 3) uint8."""
    x = x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return to_numpy(x.permute(0, 2, 3, 4, 1), torch.uint8)


class PixelCodec:
    channels = 3
    scale = (1, 1, 1)  # (time, height, width) downsampling

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        return frames_to_tensor(frames)

    def encode_pixels(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> latents (the identity here)."""
        return video.float()

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        return tensor_to_frames(latents)


class VaeCodec:
    """A frozen diffusers video VAE; ``normalize``/``denormalize`` map its raw latents to the
    transformer's space and back, exactly as the backbone's pipeline does."""

    def __init__(self, vae: torch.nn.Module, normalize: Norm, denormalize: Norm, scale: tuple[int, int, int],
                 decode_kwargs: Callable[[torch.Tensor], dict] | None = None, max_batch: int = 0):
        self.vae = vae.eval().requires_grad_(False)
        self.max_batch = max_batch  # 0 = any; 1 where a VAE cannot decode batches (see HunyuanVideo-1.5)
        cfg = vae.config
        self.channels = int(cfg.latent_channels if hasattr(cfg, "latent_channels") else cfg.z_dim)
        self.normalize, self.denormalize, self.scale = normalize, denormalize, scale
        self.decode_kwargs = decode_kwargs or (lambda z: {})

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @torch.no_grad()
    def encode_pixels(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> normalised latents (the distribution's mode, as pipelines take)."""
        dist = self.vae.encode(video.to(device=self.device, dtype=self.dtype)).latent_dist
        return self.normalize(dist.mode().float())

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        return self.encode_pixels(frames_to_tensor(frames))

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        x = self.denormalize(latents.float().to(self.device)).to(self.dtype)
        step = self.max_batch or x.shape[0]
        return np.concatenate([tensor_to_frames(self.vae.decode(z, **self.decode_kwargs(z), return_dict=False)[0])
                               for z in x.split(step)])
