"""The backbone adapter: one interface over diffusers video transformers.

Every sampler, loss and actor talks to a ``Backbone``: build the condition of (first frames,
prompts), give the guided velocity at (state, sigma), the raw conditional prediction for
flow-matching losses, and decode. The *state* is the tensor the sampler integrates: the video
latents (B, C, T, h, w), or for audio-visual LTX-2 its video and audio latents flattened side
by side (B, D), so SDE log-probs, losses and r_distill cover every sampled stream without
knowing what the streams are.

How the first frame conditions differs per model, exactly as in its diffusers pipeline:
``replace`` models keep latent frame 0 equal to the clean image latent at every step and
generate only frames 1.. (``gen_mask``); ``denoise`` models (channel-concatenated condition:
Wan2.1 I2V, Wan2.2 A14B, HunyuanVideo-1.5) denoise every frame, frame 0 included.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import torch

from ...config import ModelConfig
from ...errors import ConfigError
from ..text import PromptEmbeds


@dataclass
class Condition:
    """What a rollout is conditioned on. ``image``: the clean first-frame latent (B, C, 1, h, w);
    ``negative``: the unconditional prompt when guidance is on; ``extra``: whatever else the
    transformer takes (image-encoder tokens, the concatenated condition video)."""

    prompt: PromptEmbeds
    image: torch.Tensor
    negative: PromptEmbeds | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def map(self, fn) -> "Condition":
        return Condition(self.prompt.map(fn), fn(self.image), self.negative.map(fn) if self.negative else None,
                         {k: fn(v) for k, v in self.extra.items()})

    def repeat(self, n: int) -> "Condition":
        """Each row n times (G samples of one task share the condition)."""
        return self.map(lambda t: t.repeat_interleave(n, 0))

    def rows(self, index: torch.Tensor) -> "Condition":
        return self.map(lambda t: t[index])


def euler_scheduler(scheduler, shift_from_config: bool = True):
    """The checkpoint's scheduler if it is the flow-matching Euler one; a multistep flow solver's
    config (Wan repos ship UniPC with ``flow_shift``) becomes the Euler scheduler at the same
    shift: RL needs a one-step transition kernel, so wmsd-ray always integrates with Euler."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        return scheduler
    cfg = scheduler.config
    if shift_from_config and cfg.get("use_flow_sigmas") and cfg.get("flow_shift"):
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=cfg.get("num_train_timesteps", 1000),
                                               shift=cfg["flow_shift"])
    raise ConfigError(f"model.hub: cannot sample with a {type(scheduler).__name__} (wmsd-ray needs the flow-matching "
                      "Euler scheduler, or a flow-sigma scheduler with flow_shift)")


def check_size(world, temporal: int, spatial: int, what: str) -> None:
    """The pipelines round frames and sizes to what the VAE and patches allow; we ask for them exactly."""
    if (world.frames - 1) % temporal:
        raise ConfigError(f"{what} needs world.frames = {temporal}k + 1, got {world.frames}")
    if world.resolution % spatial:
        raise ConfigError(f"{what} needs world.resolution to be a multiple of {spatial}, got {world.resolution}")


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample mean of (a - b)^2 over the elements where ``mask`` (broadcastable) is 1."""
    m = mask.expand_as(a)
    return ((a - b) ** 2 * m).sum(dim=tuple(range(1, a.ndim))) / m[0].sum()


class ExpertSwitch(torch.nn.Module):
    """Several experts as one module, so a DDP or DeepSpeed wrapper covers all of them."""

    def __init__(self, experts: list[torch.nn.Module]):
        super().__init__()
        self.experts = torch.nn.ModuleList(experts)

    def forward(self, expert: int, **kwargs):
        return self.experts[expert](**kwargs)


class Backbone(ABC):
    """A diffusers transformer (or two experts) + codec + prompt encoder + scheduler."""

    name = "base"
    first_frame = "replace"

    def __init__(self, transformer: torch.nn.Module, codec, text, cfg: ModelConfig, frames: int, resolution: int,
                 scheduler, transformer_2: torch.nn.Module | None = None):
        self.transformer, self.transformer_2 = transformer, transformer_2
        self.codec, self.text, self.cfg = codec, text, cfg
        self.frames, self.resolution, self.scheduler = frames, resolution, scheduler
        self.forward_module: torch.nn.Module | None = None  # a DDP / DeepSpeed wrapper while training
        self._switch: ExpertSwitch | None = None

    # -- experts ------------------------------------------------------------------------
    @property
    def experts(self) -> dict[str, torch.nn.Module]:
        """The denoisers by pipeline component name (``transformer``, and ``transformer_2``)."""
        out = {"transformer": self.transformer}
        if self.transformer_2 is not None:
            out["transformer_2"] = self.transformer_2
        return out

    def trainable_module(self) -> torch.nn.Module:
        """What a training engine wraps: the transformer, or both experts behind one switch."""
        if self.transformer_2 is None:
            return self.transformer
        if self._switch is None:
            self._switch = ExpertSwitch([self.transformer, self.transformer_2])
        return self._switch

    def call_expert(self, expert: int, **kwargs):
        if self.forward_module is None:
            return list(self.experts.values())[expert](**kwargs)
        return self.forward_module(**kwargs) if self.transformer_2 is None else self.forward_module(expert, **kwargs)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """Where the denoisers live (``wmsd_ray.device.place`` put them there); inputs follow."""
        return next(self.transformer.parameters()).device

    def encoders(self) -> list[torch.nn.Module]:
        """The frozen text and image encoders (kept on the CPU with ``model.offload_encoders``)."""
        model = getattr(self.text, "model", None)
        return [model] if isinstance(model, torch.nn.Module) else []

    @property
    def encoder_device(self) -> torch.device:
        encoders = self.encoders()
        return next(encoders[0].parameters()).device if encoders else self.device

    def on_device(self, cond: Condition) -> Condition:
        """A condition built by the encoders, moved to where the denoisers run."""
        return cond.map(lambda t: t.to(self.device))

    # -- the state ----------------------------------------------------------------------
    def latent_dims(self) -> tuple[int, int, int, int]:
        """(C, T, h, w) of the video latents."""
        st, sh, sw = self.codec.scale
        return self.codec.channels, 1 + (self.frames - 1) // st, self.resolution // sh, self.resolution // sw

    def state_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.latent_dims())

    def initial_noise(self, rows: int, generator: torch.Generator) -> torch.Tensor:
        """Fresh noise drawn in the order the pipeline draws it (same seed, same latents)."""
        return torch.randn(self.state_shape(rows), generator=generator)

    def gen_mask(self, like: torch.Tensor) -> torch.Tensor:
        """1 on generated elements (broadcastable to the state); 0 on a replaced frame 0."""
        m = torch.ones(1, 1, like.shape[2], 1, 1, dtype=like.dtype, device=like.device)
        if self.first_frame == "replace":
            m[:, :, 0] = 0
        return m

    def replace_first(self, x: torch.Tensor, cond: Condition) -> torch.Tensor:
        if self.first_frame != "replace":
            return x
        return torch.cat([cond.image.to(x.dtype), x[:, :, 1:]], dim=2)

    def video_latents(self, x: torch.Tensor) -> torch.Tensor:
        """The video part of a state."""
        return x

    def pipeline_latents(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """What the diffusers pipeline returns for this state with ``output_type="latent"``."""
        return (x,)

    # -- conditioning -------------------------------------------------------------------
    def encode_prompt(self, texts: list[str]) -> PromptEmbeds:
        return self.text.encode(list(texts))

    @abstractmethod
    def condition(self, images: np.ndarray, texts: list[str]) -> Condition:
        """(B, H, W, 3) uint8 first frames + prompts -> the condition (negatives when guided)."""

    def negative(self, batch: int) -> PromptEmbeds | None:
        g = self.cfg.guidance
        return self.encode_prompt([g.negative_prompt] * batch) if g.active else None

    def encode_video(self, frames: np.ndarray) -> torch.Tensor:
        return self.codec.encode(frames)

    def decode(self, state: torch.Tensor) -> np.ndarray:
        return self.codec.decode(self.video_latents(state))

    # -- the schedule -------------------------------------------------------------------
    def set_timesteps(self, steps: int) -> None:
        """Call the scheduler as the pipeline does (subclasses add their sigma lists and shift)."""
        if self.cfg.sigmas:
            self.scheduler.set_timesteps(sigmas=list(self.cfg.sigmas))
        else:
            self.scheduler.set_timesteps(steps)

    def sigmas(self, steps: int | None = None) -> torch.Tensor:
        """steps + 1 decreasing sigmas ending at 0: the checkpoint's own schedule."""
        self.set_timesteps(steps or self.cfg.sample_steps)
        return self.scheduler.sigmas.detach().to(torch.float32).clone()

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The transformer's timestep for sigma, as the scheduler makes it (sigma * T_train)."""
        return sigma.float() * float(self.scheduler.config.num_train_timesteps)

    # -- the network --------------------------------------------------------------------
    @abstractmethod
    def _forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: Condition, prompt: PromptEmbeds,
                 sigma_next: torch.Tensor | None, **variant) -> torch.Tensor:
        """The raw network output (float32, shaped like the state) for a state whose frame 0 is
        already replaced. ``variant`` carries LTX-2's guidance passes (perturbed blocks, isolation)."""

    def _to_velocity(self, out: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.cfg.prediction == "x0":
            return (x - out) / sigma.view(-1, *([1] * (x.ndim - 1))).clamp_min(1e-4)
        return out

    def guidance_scale(self, sigma: torch.Tensor) -> torch.Tensor:
        """The CFG scale of each row (Wan2.2 A14B switches it with its expert)."""
        return torch.full_like(sigma, self.cfg.guidance.scale, dtype=torch.float32)

    def guided_velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: Condition,
                        sigma_next: torch.Tensor | None) -> torch.Tensor:
        """Classifier-free guidance in velocity space (diffusers' formulation: u + s (c - u))."""
        v = self._to_velocity(self._forward(x, sigma, cond, cond.prompt, sigma_next), x, sigma)
        if cond.negative is None or self.cfg.guidance.scale <= 1.0:
            return v
        v_u = self._to_velocity(self._forward(x, sigma, cond, cond.negative, sigma_next), x, sigma)
        scale = self.guidance_scale(sigma).view(-1, *([1] * (v.ndim - 1)))
        out = v_u + scale * (v - v_u)
        if self.cfg.guidance.rescale > 0:
            from diffusers.guiders.guider_utils import rescale_noise_cfg

            out = rescale_noise_cfg(out, v, self.cfg.guidance.rescale)
        return out

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: Condition,
                 sigma_next: torch.Tensor | None = None) -> torch.Tensor:
        """The guided dx/dsigma used by the ODE, the SDE and their log-probs; zero on a replaced
        frame 0. ``sigma_next`` is the step's target noise level (step-distilled models take it)."""
        x = self.replace_first(x, cond)
        v = self.guided_velocity(x, sigma, cond, sigma_next)
        return v * self.gen_mask(v)

    def predict(self, x_t: torch.Tensor, sigma: torch.Tensor, cond: Condition) -> torch.Tensor:
        """The raw conditional output (no guidance): what flow-matching losses train."""
        return self._forward(self.replace_first(x_t, cond), sigma, cond, cond.prompt, None)

    def x0(self, x_t: torch.Tensor, sigma: torch.Tensor, cond: Condition,
           sigma_next: torch.Tensor | None = None) -> torch.Tensor:
        """The (guided) clean-state estimate; the raw output itself for an unguided x0 model."""
        x_t = self.replace_first(x_t, cond)
        if self.cfg.prediction == "x0" and cond.negative is None:
            return self._forward(x_t, sigma, cond, cond.prompt, sigma_next)
        v = self.guided_velocity(x_t, sigma, cond, sigma_next)
        return x_t - sigma.view(-1, *([1] * (x_t.ndim - 1))) * v

    # -- flow matching ------------------------------------------------------------------
    def flow_loss_of_output(self, out: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per-sample flow-matching loss of an output on generated elements: MSE on x0 (x0 models)
        or on v = eps - x0."""
        target = x0 if self.cfg.prediction == "x0" else noise - x0
        return masked_mse(out, target, self.gen_mask(out))

    def flow_loss_per_sample(self, x0: torch.Tensor, cond: Condition, sigma: torch.Tensor,
                             noise: torch.Tensor) -> torch.Tensor:
        from ..flow import add_noise

        return self.flow_loss_of_output(self.predict(add_noise(x0, noise, sigma), sigma, cond), x0, noise)

    def flow_loss(self, x0: torch.Tensor, cond: Condition, sigma: torch.Tensor, noise: torch.Tensor,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
        per = self.flow_loss_per_sample(x0, cond, sigma, noise)
        if weights is not None:
            return (per * weights).sum() / weights.sum().clamp_min(1e-8)
        return per.mean()

    # -- bookkeeping --------------------------------------------------------------------
    def parameters(self):
        for module in self.experts.values():
            yield from module.parameters()

    def train(self, mode: bool = True) -> "Backbone":
        for module in self.experts.values():
            module.train(mode)
        return self

    def eval(self) -> "Backbone":
        return self.train(False)
