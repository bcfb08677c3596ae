"""Every backbone behind the one interface: the embedded pixel-space Wan and tiny real-layout
Wan2.x, LTX-2 and HunyuanVideo-1.5 pipelines: state shapes, the frozen first frame, training
steps, SDE/ODE, and the Executor's adapter (teacher = adapter off, save/load, numpy transport)."""
import warnings

import numpy as np
import pytest
import torch
from conftest import hub_config, tiny_config

from wmsd_ray.models import build_backbone
from wmsd_ray.models.flow import sample_train_sigmas
from wmsd_ray.models.lora import adapter_disabled, add_lora, apply_adapter, export_adapter, load_lora, lora_parameters, save_lora
from wmsd_ray.models.sampling import initial_noise, ode_sample, recompute_log_probs, sde_sample

KINDS = ["embedded", "wan2.1-i2v", "wan2.2-i2v-a14b", "wan2.2-ti2v-5b", "ltx2-i2v", "hunyuan1.5-i2v"]


@pytest.fixture
def make(text_encoder, tiny_hub):
    def build(kind, seed=0):
        torch.manual_seed(seed)
        if kind == "embedded":
            cfg = tiny_config()
            return build_backbone(cfg.model, cfg.world, text_encoder), cfg
        cfg = hub_config(tiny_hub(kind), kind)
        return build_backbone(cfg.model, cfg.world), cfg
    return build


def data(bb, frames):
    """Training targets: encoded corpus videos (embedded) or fixed random states (hub models)."""
    if bb.cfg.hub:
        return 0.5 * bb.initial_noise(frames.shape[0], torch.Generator().manual_seed(9))
    return bb.encode_video(frames)


@pytest.mark.parametrize("kind", KINDS)
def test_velocity_shapes_and_the_first_frame(kind, make, corpus_batch):
    bb, cfg = make(kind)
    frames, captions = corpus_batch
    cond = bb.condition(frames[:, 0], captions)
    x = initial_noise(bb, cond, torch.Generator().manual_seed(0))
    v = bb.velocity(x, torch.full((4,), 0.5), cond, torch.full((4,), 0.3))
    mask = bb.gen_mask(v)
    assert v.shape == bb.state_shape(4) and torch.isfinite(v).all()
    assert (v * mask).abs().max() > 0
    assert (v * (1 - mask)).abs().max() == 0  # a replaced frame 0 never moves
    if bb.first_frame == "replace":
        assert torch.equal(bb.video_latents(x)[:, :, :1], cond.image.float())
    else:
        assert bool(mask.all())  # channel-conditioned models denoise frame 0 themselves


@pytest.mark.parametrize("kind", KINDS)
def test_training_steps_reduce_loss_on_a_fixed_batch(kind, make, corpus_batch):
    bb, cfg = make(kind)
    frames, captions = corpus_batch
    x0, cond = data(bb, frames), bb.condition(frames[:, 0], captions)
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
    assert all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0]


def test_sde_at_eta_zero_is_the_ode_and_ratios_are_one(make, corpus_batch):
    bb, cfg = make("embedded")
    frames, captions = corpus_batch
    cond = bb.condition(frames[:, 0], captions)
    x = initial_noise(bb, cond, torch.Generator().manual_seed(3))
    ode = ode_sample(bb, cond, x)
    assert torch.equal(ode, sde_sample(bb, cond, x, torch.Generator().manual_seed(4), eta=0.0).final)
    traj = sde_sample(bb, cond, x, torch.Generator().manual_seed(4), eta=0.7)
    assert traj.latents.shape[0] == cfg.model.sample_steps + 1 and traj.log_probs.shape == (cfg.model.sample_steps, 4)
    assert traj.latents.dtype == torch.float32 and traj.log_probs.dtype == torch.float32
    assert not torch.equal(traj.final, ode)  # the SDE really explores
    assert torch.equal(traj.final[:, :, 0], cond.image[:, :, 0])  # first frame is the condition
    with torch.no_grad():
        again = recompute_log_probs(bb, cond, traj)
    assert (again - traj.log_probs).exp().sub(1).abs().max().item() <= 1e-5
    with torch.no_grad():  # a weight change moves the ratio: the check can fail
        for p in bb.parameters():
            p.add_(0.01 * torch.randn_like(p))
        moved = recompute_log_probs(bb, cond, traj)
    assert (moved - traj.log_probs).exp().sub(1).abs().max().item() > 1e-3


def test_group_noise_shared_or_independent(make, corpus_batch):
    bb, _ = make("embedded")
    frames, captions = corpus_batch
    cond = bb.condition(frames[:2, 0], captions[:2]).repeat(3)
    shared = initial_noise(bb, cond, torch.Generator().manual_seed(0), group_size=3, shared=True)
    indep = initial_noise(bb, cond, torch.Generator().manual_seed(0), group_size=3, shared=False)
    assert torch.equal(shared[0], shared[2]) and not torch.equal(shared[2], shared[3])
    assert not torch.equal(indep[0, :, 1:], indep[1, :, 1:])
    assert torch.equal(shared[:, :, 0], cond.image[:, :, 0])


@pytest.mark.parametrize("kind", ["embedded", "wan2.2-i2v-a14b", "ltx2-i2v"])
def test_lora_executor_save_load_and_teacher(kind, make, corpus_batch, tmp_path):
    bb, cfg = make(kind)
    frames, captions = corpus_batch
    cond = bb.condition(frames[:, 0], captions)
    x = initial_noise(bb, cond, torch.Generator().manual_seed(1))
    # 0.9 and 0.5 straddle Wan2.2 A14B's expert boundary: both experts are exercised
    s = torch.tensor([0.95, 0.9, 0.5, 0.3])
    atol = 0 if kind == "embedded" else 1e-5
    with torch.no_grad():
        base = bb.velocity(x, s, cond)
        add_lora(bb, cfg.model.lora)
        # B = 0: the Executor starts as the Demonstrator (bit for bit on the embedded Wan; LTX-2's
        # attention rounds differently through peft's wrapped Linear, ~6e-7)
        assert torch.allclose(bb.velocity(x, s, cond), base, atol=atol, rtol=0)
        trainable = [p for p in bb.parameters() if p.requires_grad]
        assert trainable and all(any(p is q for q in lora_parameters(bb)) for p in trainable)
        for p in lora_parameters(bb):
            p.normal_(0, 0.05)
        student = bb.velocity(x, s, cond)
        with adapter_disabled(bb):
            assert torch.allclose(bb.velocity(x, s, cond), base, atol=atol, rtol=0)  # teacher = adapter off
    assert ((student - base).abs().flatten(1).max(1).values > 0).all()  # every row moved (each expert)
    path = save_lora(bb, tmp_path / "lora")
    assert path.name == "pytorch_lora_weights.safetensors"
    from safetensors.torch import load_file

    assert all(k.startswith("transformer.") for k in load_file(path))
    other, _ = make(kind)
    load_lora(other, tmp_path / "lora")
    with torch.no_grad():
        assert torch.allclose(other.velocity(x, s, cond), student, atol=1e-6)
    # numpy export/apply: what the learner broadcasts
    third, _ = make(kind)
    add_lora(third, cfg.model.lora)
    apply_adapter(third, export_adapter(bb))
    with torch.no_grad():
        assert torch.equal(third.velocity(x, s, cond), student)
    # arrays from the object store are read-only (zero-copy): applied by copy, without a warning
    frozen = export_adapter(bb)
    for arr in frozen.values():
        arr.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        apply_adapter(third, frozen)
    with pytest.raises(ValueError, match="shape"):
        arrays = export_adapter(bb)
        k = next(iter(arrays))
        arrays[k] = arrays[k][:1]
        apply_adapter(third, arrays)
