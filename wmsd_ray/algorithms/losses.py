"""The loss registry: every learner objective is a named function of one ``LossContext``.

- ``off_policy_distill``: flow matching of the Executor (image + short task) on the
  Demonstrator's judge-accepted rollouts (image + detailed solution): the Executor learns the
  Demonstrator's velocity field where the Demonstrator succeeded.
- ``on_policy_distill``: at states of the Executor's own trajectories, regress
  v_executor(x_t | task) onto v_demonstrator(x_t | solution) (teacher = adapter off).
- ``awm``: advantage-weighted flow matching on re-noised final samples (negatives scaled).
- ``flow_grpo``: PPO-clipped ratio over stored SDE transitions, optional KL to adapter-off.
- ``anchor``: ||v_executor - v_demonstrator||^2 at re-noised states (weight beta_d, 0.01 by default).

For x0-predicting models the two velocity-matching terms compare x0 predictions, i.e. the
velocity difference times sigma, which keeps small-sigma states from dominating. Terms on the
sampler's own trajectory (on-policy distillation, Flow-GRPO) use the guided velocity the sampler
used; terms at re-noised states (distillation, AWM, the anchor) train the conditional
prediction, as diffusion models are trained (AWM without CFG, as in the paper).
A phase's objective is a weighted sum: ``{name: weight}`` from the config.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..device import from_numpy, to_numpy
from ..models.backbones import Backbone, Condition
from ..models.backbones.base import masked_mse
from ..models.flow import add_noise, sample_train_sigmas
from ..models.lora import adapter_disabled
from ..models.sampling import sde_mean, sde_std, transition_log_prob
from ..names import LOSS_NAMES
from ..rollouts import TrainBatch


@dataclass
class LossContext:
    backbone: Backbone
    batch: TrainBatch
    generator: torch.Generator
    awm_negative_scale: float = 0.0  # the same defaults as AlgorithmConfig
    grpo_clip: float = 1e-3
    grpo_kl: float = 0.0
    grpo_timesteps: int = 4
    cache: dict = field(default_factory=dict)

    def cond(self, which: str, rows: int | None = None) -> Condition:
        """The Executor's condition (``task``) or the Demonstrator's (``solution``) of the first
        ``rows`` rows (default: all), built once."""
        b = self.batch
        rows = b.size if rows is None else rows
        key = which if rows == b.size else (which, rows)
        if key not in self.cache:
            texts = b.tasks if which == "task" else b.solutions
            self.cache[key] = self.backbone.condition(b.images[:rows], list(texts[:rows]))
        return self.cache[key]

    def tensor(self, array) -> torch.Tensor:
        """A batch array on the backbone's device, float32."""
        return from_numpy(array, self.backbone.device)

    def x0(self) -> torch.Tensor:
        return self.tensor(self.batch.x0)

    def renoised(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x0, sigma, noise) for re-noised training states, shared by the terms of one update;
        the batch's own when the Demonstrator computed the anchor's targets at them."""
        if "renoised" not in self.cache:
            x0, b = self.x0(), self.batch
            if b.renoise_noise.size:
                sigma, noise = self.tensor(b.renoise_sigma), self.tensor(b.renoise_noise)
            else:
                sigma, noise = (t.to(x0.device) for t in draw_renoise(x0.shape, self.backbone.cfg.timestep_shift,
                                                                        self.generator))
            self.cache["renoised"] = (x0, sigma, noise)
        return self.cache["renoised"]

    def executor_out(self) -> torch.Tensor:
        """The Executor's raw output at the re-noised states (x0 or velocity, as the model predicts).
        Computed once per update: the flow-matching term and the anchor share it, which halves
        the cost of adding the anchor."""
        if "executor_out" not in self.cache:
            x0, sigma, noise = self.renoised()
            self.cache["executor_out"] = self.backbone.predict(add_noise(x0, noise, sigma), sigma, self.cond("task"))
        return self.cache["executor_out"]


def draw_renoise(shape, shift: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma, noise) of one update's re-noised states, in the order the learner draws them."""
    sigma = sample_train_sigmas(shape[0], shift, generator)
    return sigma, torch.randn(shape, generator=generator)


def _trajectory_pred(bb: Backbone):
    """What velocity-matching compares along a trajectory: x0 for x0 models, else the velocity."""
    return bb.x0 if bb.cfg.prediction == "x0" else bb.velocity


@torch.no_grad()
def anchor_targets(teacher: Backbone, batch: TrainBatch) -> TrainBatch:
    """The anchor's targets computed away from the learner (``algorithm.anchor_on=demonstrator``):
    draws the update's re-noised states from the batch seed as the learner would, and attaches
    them with the Demonstrator's prediction there (detailed solution; ``teacher`` has no adapter)."""
    x0 = from_numpy(batch.x0, teacher.device)
    sigma, noise = (t.to(x0.device) for t in draw_renoise(x0.shape, teacher.cfg.timestep_shift,
                                                          torch.Generator().manual_seed(int(batch.seed))))
    cond = teacher.condition(batch.images, list(batch.solutions))
    out = teacher.predict(add_noise(x0, noise, sigma), sigma, cond).float()
    batch.renoise_sigma, batch.renoise_noise, batch.demonstrator_out = to_numpy(sigma), to_numpy(noise), to_numpy(out)
    return batch


LossFn = Callable[[LossContext], tuple[torch.Tensor, dict]]
LOSSES: dict[str, LossFn] = {}


def register(name: str):
    def deco(fn: LossFn) -> LossFn:
        LOSSES[name] = fn
        return fn
    return deco


def _trajectory_gap(ctx: LossContext, x_t: torch.Tensor, sigma: torch.Tensor,
                    sigma_next: torch.Tensor) -> torch.Tensor:
    """Per-sample ||student - teacher||^2 at trajectory states (x0 space for x0 models, else velocity)."""
    bb, rows = ctx.backbone, x_t.shape[0]
    pred = _trajectory_pred(bb)
    student = pred(x_t, sigma, ctx.cond("task", rows), sigma_next)
    with torch.no_grad(), adapter_disabled(bb):
        teacher = pred(x_t, sigma, ctx.cond("solution", rows), sigma_next)
    return masked_mse(student, teacher, bb.gen_mask(student))


@register("off_policy_distill")
def off_policy_distill(ctx: LossContext) -> tuple[torch.Tensor, dict]:
    x0, _, noise = ctx.renoised()
    per = ctx.backbone.flow_loss_of_output(ctx.executor_out(), x0, noise)
    return per.mean(), {"flow_mse": float(per.detach().mean())}


@register("awm")
def awm(ctx: LossContext) -> tuple[torch.Tensor, dict]:
    x0, _, noise = ctx.renoised()
    per = ctx.backbone.flow_loss_of_output(ctx.executor_out(), x0, noise)
    adv = ctx.tensor(ctx.batch.advantages)
    w = torch.where(adv < 0, adv * ctx.awm_negative_scale, adv)
    return (per * w).mean(), {"awm_mse": float(per.detach().mean()), "adv_mean": float(adv.mean())}


@register("anchor")
def anchor(ctx: LossContext) -> tuple[torch.Tensor, dict]:
    x0, sigma, noise = ctx.renoised()
    student = ctx.executor_out()
    if ctx.batch.demonstrator_out.size:  # computed by the Demonstrator at these very states
        teacher = ctx.tensor(ctx.batch.demonstrator_out)
    else:
        with torch.no_grad(), adapter_disabled(ctx.backbone):
            teacher = ctx.backbone.predict(add_noise(x0, noise, sigma), sigma, ctx.cond("solution"))
    gap = masked_mse(student, teacher, ctx.backbone.gen_mask(student))
    return gap.mean(), {"demonstrator_gap": float(gap.detach().mean())}


@register("on_policy_distill")
def on_policy_distill(ctx: LossContext) -> tuple[torch.Tensor, dict]:
    b = ctx.batch
    if not b.latents.size:  # no stored trajectory: the re-noised final sample stands in
        return anchor(ctx)
    # Executor rows come first in a batch; the demonstration rows after them have no trajectory.
    k_steps, rows = b.latents.shape[0] - 1, b.latents.shape[1]
    ks = torch.randint(0, k_steps, (rows,), generator=ctx.generator)
    x_t = torch.stack([ctx.tensor(b.latents[int(k), i]) for i, k in enumerate(ks)])
    sigmas = ctx.tensor(b.sigmas)
    ks = ks.to(sigmas.device)
    gap = _trajectory_gap(ctx, x_t, sigmas[ks], sigmas[ks + 1])
    return gap.mean(), {"on_policy_gap": float(gap.detach().mean())}


@register("flow_grpo")
def flow_grpo(ctx: LossContext) -> tuple[torch.Tensor, dict]:
    """PPO-clipped surrogate over a few stored transitions per sample; old log-probs as sampled."""
    b, bb = ctx.batch, ctx.backbone
    if not b.latents.size or not b.log_probs.size:
        raise ValueError("flow_grpo needs stored latents and log-probs (sampler keep_trajectory)")
    sigmas = ctx.tensor(b.sigmas)
    k_steps = b.log_probs.shape[0]
    steps = torch.randperm(k_steps, generator=ctx.generator)[: min(ctx.grpo_timesteps, k_steps)].tolist()
    cond = ctx.cond("task")
    adv = ctx.tensor(b.advantages)
    mask = bb.gen_mask(ctx.tensor(b.latents[0, :1]))
    losses, ratios, kls = [], [], []
    for k in steps:
        x, x_next = ctx.tensor(b.latents[k]), ctx.tensor(b.latents[k + 1])
        s, s_next = sigmas[k].expand(b.size), sigmas[k + 1].expand(b.size)
        mean = sde_mean(x, bb.velocity(x, s, cond, s_next).float(), sigmas, k, b.eta)
        new_lp = transition_log_prob(x_next, mean, sigmas, k, b.eta, mask)
        ratio = torch.exp(new_lp - ctx.tensor(b.log_probs[k]))
        clipped = torch.clamp(ratio, 1 - ctx.grpo_clip, 1 + ctx.grpo_clip)
        losses.append(-torch.minimum(ratio * adv, clipped * adv).mean())
        ratios.append(ratio.detach())
        if ctx.grpo_kl > 0:
            with torch.no_grad(), adapter_disabled(bb):
                ref_mean = sde_mean(x, bb.velocity(x, s, cond, s_next).float(), sigmas, k, b.eta)
            scale = sde_std(sigmas, k, b.eta) * math.sqrt(float(sigmas[k] - sigmas[k + 1]))
            kl = masked_mse(mean, ref_mean, mask) / (2 * max(scale, 1e-8) ** 2)
            kls.append(kl.mean())
            losses[-1] = losses[-1] + ctx.grpo_kl * kls[-1]
    ratio_all = torch.stack(ratios)
    metrics = {"ratio_mean": float(ratio_all.mean()), "ratio_first": float(ratios[0].mean()),
               "ratio_max_dev": float((ratio_all - 1).abs().max()),
               "clip_frac": float(((ratio_all - 1).abs() > ctx.grpo_clip).float().mean())}
    if kls:
        metrics["kl"] = float(torch.stack(kls).detach().mean())
    return torch.stack(losses).mean(), metrics


assert set(LOSSES) == set(LOSS_NAMES), "wmsd_ray/names.py must list every registered loss"


def total_loss(ctx: LossContext, weights: dict[str, float]) -> tuple[torch.Tensor, dict]:
    """Weighted sum of the named losses (weights of 0 are skipped)."""
    total, metrics = None, {}
    for name, w in weights.items():
        if not w:
            continue
        if name not in LOSSES:
            raise KeyError(f"unknown loss {name!r} (known: {sorted(LOSSES)})")
        value, m = LOSSES[name](ctx)
        metrics[f"loss/{name}"] = float(value.detach())
        metrics.update({f"{name}/{k}": v for k, v in m.items()})
        total = w * value if total is None else total + w * value
    if total is None:
        raise ValueError("the phase's loss weights are all zero")
    return total, metrics


def rows_with_signal(advantages: np.ndarray, weights: dict[str, float], awm_negative_scale: float,
                     grpo_kl: float) -> np.ndarray:
    """Which Executor rows the RL objective learns from. A row with zero weight costs a forward and
    backward pass and a place in the batch for nothing; in the embedded run ~87% of Executor rows
    were such (positive-only AWM, 13% of videos judge-accepted). Every row counts when a term
    ignores the advantage (on-policy distillation, Flow-GRPO's KL); otherwise rows with a positive
    advantage, and negative ones where a term pushes away from them (Flow-GRPO, AWM with a negative
    scale). The anchor alone does not count: demonstration rows serve it as well."""
    adv = np.asarray(advantages, np.float32)
    if weights.get("on_policy_distill") or (weights.get("flow_grpo") and grpo_kl > 0):
        return np.ones(adv.shape, bool)
    uses_negatives = bool(weights.get("flow_grpo")) or (bool(weights.get("awm")) and awm_negative_scale > 0)
    return (adv > 0) | ((adv < 0) & uses_negatives)
