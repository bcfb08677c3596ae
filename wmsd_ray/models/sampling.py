"""Samplers over a backbone's velocity: Euler ODE and the Flow-GRPO SDE with log-probs.

Everything stochastic runs in float32. The SDE step (Flow-GRPO, arXiv 2505.05470) is
  std   = eta * sqrt(s / (1 - s'))          (s' = s, or sigmas[1] at s = 1)
  mean  = x + (std^2 / (2 s) (x) + (1 + std^2 (1 - s) / (2 s)) v) * dt,   dt = s_next - s < 0
  x'    = mean + std * sqrt(-dt) * eps
and its Gaussian log-prob, averaged over generated elements. At eta = 0 it is exactly the
Euler ODE step. Log-probs are recomputed from stored (x, x') pairs for importance ratios.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .backbones import Backbone, Condition

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class Trajectory:
    """One batch of SDE rollouts: latents[k] -> latents[k+1] under sigmas[k] -> sigmas[k+1]."""

    latents: torch.Tensor  # (K + 1, B, *state) float32
    noise: torch.Tensor  # (K, B, *state) the eps of each transition (zeros when eta = 0)
    log_probs: torch.Tensor  # (K, B) float32
    sigmas: torch.Tensor  # (K + 1,)
    eta: float
    velocities: torch.Tensor | None = None  # (K, B, ...) the policy's velocity at each state, if kept

    @property
    def final(self) -> torch.Tensor:
        return self.latents[-1]


def initial_noise(backbone: Backbone, cond: Condition, generator: torch.Generator,
                  group_size: int = 1, shared: bool = False) -> torch.Tensor:
    """Initial latents for B = rows * group_size samples; ``shared`` gives a group one noise."""
    rows = cond.image.shape[0] // group_size
    if shared:
        x = backbone.initial_noise(rows, generator).repeat_interleave(group_size, 0)
    else:
        x = backbone.initial_noise(rows * group_size, generator)
    # drawn on the CPU generator, so a seed gives the same samples on any device
    return backbone.replace_first(x.to(cond.image.device), cond)


def _step_sigmas(sigmas: torch.Tensor, k: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma_k, sigma_k+1) for every row of ``like``: the velocity at a step may depend on its target level."""
    b, device = like.shape[0], like.device
    return torch.full((b,), float(sigmas[k]), device=device), torch.full((b,), float(sigmas[k + 1]), device=device)


def sde_std(sigmas: torch.Tensor, k: int, eta: float) -> float:
    s = float(sigmas[k])
    denom = 1 - (float(sigmas[1]) if s >= 1.0 else s)
    return eta * math.sqrt(s / max(denom, 1e-8))


def sde_mean(x: torch.Tensor, v: torch.Tensor, sigmas: torch.Tensor, k: int, eta: float) -> torch.Tensor:
    s, dt = float(sigmas[k]), float(sigmas[k + 1] - sigmas[k])
    std = sde_std(sigmas, k, eta)
    return x * (1 + std ** 2 / (2 * s) * dt) + v * (1 + std ** 2 * (1 - s) / (2 * s)) * dt


def transition_log_prob(x_next: torch.Tensor, mean: torch.Tensor, sigmas: torch.Tensor, k: int, eta: float,
                        mask: torch.Tensor) -> torch.Tensor:
    """Gaussian log-density of x_next given the mean, averaged over generated elements -> (B,)."""
    scale = sde_std(sigmas, k, eta) * math.sqrt(float(sigmas[k] - sigmas[k + 1]))
    if scale == 0:
        return torch.zeros(x_next.shape[0], device=x_next.device)
    lp = -((x_next.detach() - mean) ** 2) / (2 * scale ** 2) - math.log(scale) - LOG_SQRT_2PI
    m = mask.expand_as(lp)
    return (lp * m).sum(dim=tuple(range(1, lp.ndim))) / m[0].sum()


@torch.no_grad()
def ode_sample(backbone: Backbone, cond: Condition, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
    """Euler over the scheduler's sigmas; returns the final latents."""
    sigmas = backbone.sigmas(steps)
    x = x.float()
    for k in range(len(sigmas) - 1):
        s, s_next = _step_sigmas(sigmas, k, x)
        v = backbone.velocity(x, s, cond, s_next).float()
        x = x + v * float(sigmas[k + 1] - sigmas[k])
    return backbone.replace_first(x, cond)


@torch.no_grad()
def sde_sample(backbone: Backbone, cond: Condition, x: torch.Tensor, generator: torch.Generator,
               eta: float, steps: int | None = None, keep_velocities: bool = False) -> Trajectory:
    """Flow-GRPO SDE rollout keeping every latent, the noise and each step's log-prob
    (and the velocities, for r_distill, when asked)."""
    sigmas = backbone.sigmas(steps)
    x = x.float()
    mask = backbone.gen_mask(x)
    latents, noises, log_probs, velocities = [x], [], [], []
    for k in range(len(sigmas) - 1):
        s, s_next = _step_sigmas(sigmas, k, x)
        v = backbone.velocity(x, s, cond, s_next).float()
        if keep_velocities:
            velocities.append(v)
        mean = sde_mean(x, v, sigmas, k, eta)
        eps = torch.randn(x.shape, generator=generator).to(x.device) * mask if eta > 0 else torch.zeros_like(x)
        scale = sde_std(sigmas, k, eta) * math.sqrt(float(sigmas[k] - sigmas[k + 1]))
        x_next = mean + scale * eps
        log_probs.append(transition_log_prob(x_next, mean, sigmas, k, eta, mask))
        noises.append(eps)
        x = backbone.replace_first(x_next, cond)
        latents.append(x)
    return Trajectory(torch.stack(latents), torch.stack(noises), torch.stack(log_probs), sigmas, eta,
                      torch.stack(velocities) if keep_velocities else None)


def recompute_log_probs(backbone: Backbone, cond: Condition, traj: Trajectory,
                        steps: list[int] | None = None) -> torch.Tensor:
    """Log-probs of stored transitions under the current weights (with grad): (len(steps), B)."""
    mask = backbone.gen_mask(traj.latents[0])
    out = []
    for k in steps if steps is not None else range(traj.log_probs.shape[0]):
        x = traj.latents[k]
        s, s_next = _step_sigmas(traj.sigmas, k, x)
        v = backbone.velocity(x, s, cond, s_next).float()
        mean = sde_mean(x, v, traj.sigmas, k, traj.eta)
        out.append(transition_log_prob(traj.latents[k + 1], mean, traj.sigmas, k, traj.eta, mask))
    return torch.stack(out)


@torch.no_grad()
def generate(backbone: Backbone, images: np.ndarray, prompts: list[str], seed: int,
             batch_size: int = 32, steps: int | None = None) -> np.ndarray:
    """(B, H, W, 3) first frames + prompts -> (B, T, H, W, 3) uint8 videos (ODE, seeded per row block)."""
    out = []
    for start in range(0, len(prompts), batch_size):
        sl = slice(start, start + batch_size)
        cond = backbone.condition(images[sl], prompts[sl])
        g = torch.Generator().manual_seed(seed * 1_000_003 + start)
        x = initial_noise(backbone, cond, g)
        out.append(backbone.decode(ode_sample(backbone, cond, x, steps)))
    return np.concatenate(out)


@torch.no_grad()
def rollout(backbone: Backbone, cond: Condition, x: torch.Tensor, seed: int, eta: float, keep: bool,
            batch_size: int) -> tuple[torch.Tensor, Trajectory | None]:
    """Final states, and the SDE trajectory when ``eta > 0`` or ``keep``, sampled ``batch_size``
    rows at a time (what a GPU holds; ``sampling.batch_size``). The first chunk's SDE noise comes
    from ``seed`` (a group that fits in one chunk samples exactly as one call), chunk c's from
    ``seed + c``."""
    finals, trajs = [], []
    for c, start in enumerate(range(0, x.shape[0], batch_size)):
        index = torch.arange(start, min(start + batch_size, x.shape[0]), device=x.device)
        sub = cond.rows(index)
        if eta > 0 or keep:
            trajs.append(sde_sample(backbone, sub, x[index], torch.Generator().manual_seed(seed + c), eta,
                                    keep_velocities=keep))
            finals.append(trajs[-1].final)
        else:
            finals.append(ode_sample(backbone, sub, x[index]))
    if not trajs:
        return torch.cat(finals), None
    t0 = trajs[0]
    join = lambda name: torch.cat([getattr(t, name) for t in trajs], dim=1)  # noqa: E731
    velocities = join("velocities") if keep else None
    return torch.cat(finals), Trajectory(join("latents"), join("noise"), join("log_probs"), t0.sigmas, t0.eta, velocities)
