"""The backbone adapter: one interface over diffusers video transformers.

Every sampler, loss and actor talks to a ``Backbone``: encode a prompt, encode the image
condition, give a velocity for (x_t, sigma, condition), decode. Image-to-video works by
*replacement*: latent frame 0 is the clean first-frame latent at every step, so only
frames 1.. are generated (``gen_mask``); backbones that also take the condition as input
channels (Wan, HunyuanVideo-1.5) get it concatenated as well.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from ...config import ModelConfig
from ..flow import add_noise, sampling_sigmas
from ..text import PromptEmbeds, TextEncoder


@dataclass
class Condition:
    """What a rollout is conditioned on: prompt embeddings and the clean first-frame latent."""

    prompt: PromptEmbeds
    image: torch.Tensor  # (B, C, 1, h, w)

    def repeat(self, n: int) -> "Condition":
        """Each row n times (G samples of one task share the condition)."""
        return Condition(
            PromptEmbeds(self.prompt.hidden.repeat_interleave(n, 0), self.prompt.mask.repeat_interleave(n, 0)),
            self.image.repeat_interleave(n, 0),
        )


class Backbone(ABC):
    """A diffusers transformer + codec + text encoder behind one small interface."""

    name = "base"

    def __init__(self, transformer: torch.nn.Module, codec, text: TextEncoder, cfg: ModelConfig,
                 frames: int, resolution: int):
        self.transformer = transformer
        self.codec = codec
        self.text = text
        self.cfg = cfg
        self.frames = frames
        self.resolution = resolution
        self.forward_module: torch.nn.Module | None = None  # a DDP / DeepSpeed wrapper while training

    @property
    def net(self) -> torch.nn.Module:
        """What forward passes go through: the training engine's wrapper if one is set."""
        return self.forward_module if self.forward_module is not None else self.transformer

    # -- shapes ---------------------------------------------------------------------
    def latent_shape(self, batch: int) -> tuple[int, int, int, int, int]:
        st, sh, sw = self.codec.scale
        t = 1 + (self.frames - 1) // st if st > 1 else self.frames
        return (batch, self.codec.channels, t, self.resolution // sh, self.resolution // sw)

    def gen_mask(self, like: torch.Tensor) -> torch.Tensor:
        """1 on generated latent frames, 0 on the conditioning frame 0."""
        m = torch.ones(1, 1, like.shape[2], 1, 1, dtype=like.dtype)
        m[:, :, 0] = 0
        return m

    # -- conditioning -----------------------------------------------------------------
    def encode_prompt(self, texts: list[str]) -> PromptEmbeds:
        return self.text.encode(list(texts))

    def encode_image(self, images: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 first frames -> (B, C, 1, h, w) latents."""
        return self.codec.encode(np.asarray(images)[:, None])[:, :, :1]

    def condition(self, images: np.ndarray, texts: list[str]) -> Condition:
        return Condition(self.encode_prompt(texts), self.encode_image(images))

    def encode_video(self, frames: np.ndarray) -> torch.Tensor:
        return self.codec.encode(frames)

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        return self.codec.decode(latents)

    def sigmas(self, steps: int | None = None) -> torch.Tensor:
        return sampling_sigmas(steps or self.cfg.sample_steps, self.cfg.timestep_shift)

    # -- the network ------------------------------------------------------------------
    @staticmethod
    def replace_first(x: torch.Tensor, cond: Condition) -> torch.Tensor:
        return torch.cat([cond.image.to(x.dtype), x[:, :, 1:]], dim=2)

    @staticmethod
    def concat_condition(x_t: torch.Tensor, cond: Condition, mask_channels: int = 1) -> torch.Tensor:
        """[noisy latents | first-frame latent then zeros | mask (1 on frame 0)] along channels."""
        b, _, t, h, w = x_t.shape
        cond_video = torch.zeros_like(x_t)
        cond_video[:, :, :1] = cond.image.to(x_t.dtype)
        mask = torch.zeros(b, mask_channels, t, h, w, dtype=x_t.dtype)
        mask[:, :, 0] = 1
        return torch.cat([x_t, cond_video, mask], dim=1)

    @abstractmethod
    def _forward(self, x_t: torch.Tensor, sigma: torch.Tensor, cond: Condition) -> torch.Tensor:
        """The raw network output for latents whose frame 0 is already the clean condition."""

    def predict(self, x_t: torch.Tensor, sigma: torch.Tensor, cond: Condition) -> torch.Tensor:
        return self._forward(self.replace_first(x_t, cond), sigma, cond)

    def velocity(self, x_t: torch.Tensor, sigma: torch.Tensor, cond: Condition) -> torch.Tensor:
        """dx/dsigma, zero on the conditioning frame (it never changes)."""
        x_t = self.replace_first(x_t, cond)
        out = self._forward(x_t, sigma, cond)
        if self.cfg.prediction == "x0":
            s = sigma.view(-1, 1, 1, 1, 1).clamp_min(1e-4)
            out = (x_t - out) / s
        return out * self.gen_mask(out)

    def x0(self, x_t: torch.Tensor, sigma: torch.Tensor, cond: Condition) -> torch.Tensor:
        x_t = self.replace_first(x_t, cond)
        out = self._forward(x_t, sigma, cond)
        if self.cfg.prediction == "x0":
            return out
        return x_t - sigma.view(-1, 1, 1, 1, 1) * out

    def flow_loss_per_sample(self, x0: torch.Tensor, cond: Condition, sigma: torch.Tensor,
                             noise: torch.Tensor) -> torch.Tensor:
        """Flow-matching loss of each sample on generated frames: MSE on x0 (x0 models) or on v = eps - x0."""
        return self.flow_loss_of_output(self.predict(add_noise(x0, noise, sigma), sigma, cond), x0, noise)

    def flow_loss_of_output(self, out: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The same per-sample loss from an output already computed (shared with the anchor term)."""
        target = x0 if self.cfg.prediction == "x0" else noise - x0
        m = self.gen_mask(out)
        return ((out - target) ** 2 * m).sum(dim=(1, 2, 3, 4)) / (m.sum() * out[0, :, 0].numel())

    def flow_loss(self, x0: torch.Tensor, cond: Condition, sigma: torch.Tensor, noise: torch.Tensor,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
        per = self.flow_loss_per_sample(x0, cond, sigma, noise)
        if weights is not None:
            return (per * weights).sum() / weights.sum().clamp_min(1e-8)
        return per.mean()

    # -- bookkeeping ------------------------------------------------------------------
    def parameters(self):
        return self.transformer.parameters()

    def train(self, mode: bool = True) -> "Backbone":
        self.transformer.train(mode)
        return self

    def eval(self) -> "Backbone":
        return self.train(False)
