"""Flow-matching schedule: x_t = (1 - s) x0 + s eps, v = eps - x0, s in [0, 1].

The timestep shift (s' = k s / (1 + (k - 1) s)) moves both training and sampling
toward high noise, where motion is decided; sampling sigmas come from diffusers'
FlowMatchEulerDiscreteScheduler so real checkpoints see the schedule they were trained on.
"""
from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler


def shift_sigma(s: torch.Tensor, shift: float) -> torch.Tensor:
    return shift * s / (1 + (shift - 1) * s)


def sample_train_sigmas(batch: int, shift: float, generator: torch.Generator) -> torch.Tensor:
    """Logit-normal u, then shifted: the training-time noise levels."""
    u = torch.sigmoid(torch.randn(batch, generator=generator))
    return shift_sigma(u, shift).clamp(1e-3, 1.0)


def sampling_sigmas(steps: int, shift: float) -> torch.Tensor:
    """steps + 1 decreasing sigmas from 1 to 0 (the scheduler's own)."""
    sched = FlowMatchEulerDiscreteScheduler(shift=shift)
    sched.set_timesteps(steps)
    return sched.sigmas.detach().to(torch.float32).clone()


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = sigma.view(-1, *([1] * (x0.ndim - 1)))
    return (1 - s) * x0 + s * noise
