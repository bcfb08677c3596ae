"""Tiny random-init configs of all three diffusers backbones: forward, training step,
ODE/SDE sampling with log-probs, and LoRA save/load (no hub access, no downloads)."""
import warnings

import numpy as np
import pytest
import torch
from conftest import tiny_config

from wmsd_ray.models import build_backbone
from wmsd_ray.models.flow import sample_train_sigmas
from wmsd_ray.models.lora import (adapter_disabled, add_lora, apply_adapter, export_adapter, load_lora,
                                  lora_parameters, save_lora)
from wmsd_ray.models.sampling import initial_noise, ode_sample, recompute_log_probs, sde_sample

BACKBONES = ["wan", "ltx2", "hunyuan15"]


def make(name, text_encoder, seed=0):
    cfg = tiny_config(f"model.backbone={name}")
    torch.manual_seed(seed)
    return build_backbone(cfg.model, cfg.world, text_encoder), cfg


@pytest.mark.parametrize("name", BACKBONES)
def test_forward_shapes_and_frozen_first_frame(name, text_encoder, corpus_batch):
    bb, cfg = make(name, text_encoder)
    frames, captions = corpus_batch
    cond = bb.condition(frames[:, 0], captions)
    x = torch.randn(bb.latent_shape(4))
    v = bb.velocity(x, torch.full((4,), 0.5), cond)
    assert v.shape == (4, 3, cfg.world.frames, 32, 32)
    assert torch.isfinite(v).all()
    assert v[:, :, 0].abs().max() == 0  # the conditioning frame never moves
    assert v[:, :, 1:].abs().max() > 0


@pytest.mark.parametrize("name", BACKBONES)
def test_training_steps_reduce_loss_on_a_fixed_batch(name, text_encoder, corpus_batch):
    bb, cfg = make(name, text_encoder)
    frames, captions = corpus_batch
    x0, cond = bb.encode_video(frames), bb.condition(frames[:, 0], captions)
    g = torch.Generator().manual_seed(0)
    sigma, noise = sample_train_sigmas(4, 5.0, g), torch.randn(x0.shape, generator=g)
    opt = torch.optim.AdamW(bb.parameters(), lr=2e-3)
    bb.train()
    losses = []
    for _ in range(8):
        loss = bb.flow_loss(x0, cond, sigma, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("name", BACKBONES)
def test_sde_at_eta_zero_is_the_ode_and_ratios_are_one(name, text_encoder, corpus_batch):
    bb, cfg = make(name, text_encoder)
    frames, captions = corpus_batch
    cond = bb.condition(frames[:, 0], captions)
    x = initial_noise(bb, cond, torch.Generator().manual_seed(3))
    ode = ode_sample(bb, cond, x)
    traj0 = sde_sample(bb, cond, x, torch.Generator().manual_seed(4), eta=0.0)
    assert torch.equal(ode, traj0.final)
    traj = sde_sample(bb, cond, x, torch.Generator().manual_seed(4), eta=0.7)
    assert traj.latents.shape[0] == cfg.model.sample_steps + 1 and traj.log_probs.shape == (cfg.model.sample_steps, 4)
    assert traj.latents.dtype == torch.float32 and traj.log_probs.dtype == torch.float32
    assert not torch.equal(traj.final, ode)  # the SDE really explores
    assert torch.equal(traj.final[:, :, 0], cond.image[:, :, 0])  # first frame is the condition
    with torch.no_grad():
        again = recompute_log_probs(bb, cond, traj)
    assert (again - traj.log_probs).exp().sub(1).abs().max().item() <= 1e-5
    # A weight change moves the ratio: the check can fail.
    with torch.no_grad():
        for p in bb.parameters():
            p.add_(0.01 * torch.randn_like(p))
        moved = recompute_log_probs(bb, cond, traj)
    assert (moved - traj.log_probs).exp().sub(1).abs().max().item() > 1e-3


def test_group_noise_shared_or_independent(text_encoder, corpus_batch):
    bb, _ = make("wan", text_encoder)
    frames, captions = corpus_batch
    cond = bb.condition(frames[:2, 0], captions[:2]).repeat(3)
    shared = initial_noise(bb, cond, torch.Generator().manual_seed(0), group_size=3, shared=True)
    indep = initial_noise(bb, cond, torch.Generator().manual_seed(0), group_size=3, shared=False)
    assert torch.equal(shared[0], shared[2]) and not torch.equal(shared[2], shared[3])
    assert not torch.equal(indep[0, :, 1:], indep[1, :, 1:])
    assert torch.equal(shared[:, :, 0], cond.image[:, :, 0])


@pytest.mark.parametrize("name", BACKBONES)
def test_lora_executor_save_load_and_teacher(name, text_encoder, corpus_batch, tmp_path):
    bb, cfg = make(name, text_encoder)
    frames, captions = corpus_batch
    cond = bb.condition(frames[:, 0], captions)
    x, s = torch.randn(bb.latent_shape(4)), torch.full((4,), 0.6)
    with torch.no_grad():
        base = bb.velocity(x, s, cond)
        add_lora(bb, cfg.model.lora)
        assert torch.equal(bb.velocity(x, s, cond), base)  # B = 0: the Executor starts as the teacher
        trainable = [p for p in bb.parameters() if p.requires_grad]
        assert trainable and all(any(p is q for q in lora_parameters(bb)) for p in trainable)
        for p in lora_parameters(bb):
            p.normal_(0, 0.05)
        student = bb.velocity(x, s, cond)
        with adapter_disabled(bb):
            assert torch.equal(bb.velocity(x, s, cond), base)  # teacher = adapter off, same weights
    assert (student - base).abs().max() > 0
    path = save_lora(bb, tmp_path / "lora")
    assert path.name == "pytorch_lora_weights.safetensors"
    from safetensors.torch import load_file

    assert all(k.startswith("transformer.") for k in load_file(path))
    other, _ = make(name, text_encoder)
    load_lora(other, tmp_path / "lora")
    with torch.no_grad():
        assert torch.equal(other.velocity(x, s, cond), student)
    # numpy export/apply: what the learner broadcasts
    third, _ = make(name, text_encoder)
    add_lora(third, cfg.model.lora)
    apply_adapter(third, export_adapter(bb))
    with torch.no_grad():
        assert torch.equal(third.velocity(x, s, cond), student)
    # arrays from the object store are read-only (zero-copy): applied by copy, without a warning
    frozen = export_adapter(bb)
    for arr in frozen.values():
        arr.setflags(write=False)
    fourth, _ = make(name, text_encoder)
    add_lora(fourth, cfg.model.lora)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        apply_adapter(fourth, frozen)
    with torch.no_grad():
        assert torch.equal(fourth.velocity(x, s, cond), student)
    with pytest.raises(ValueError, match="shape"):
        arrays = export_adapter(bb)
        k = next(iter(arrays))
        arrays[k] = arrays[k][:1]
        apply_adapter(third, arrays)
