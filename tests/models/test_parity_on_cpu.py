"""The real backbones, driven by our code, equal diffusers' own image-to-video pipelines.

Tiny random checkpoints in the real repo layout load through ``model.hub`` (as a cluster job
loads LTX-2, HunyuanVideo-1.5 and Wan2.x); our ODE sampler's latents must equal the pipeline's
``output_type="latent"`` output for the same image, prompt, seed and steps, with guidance off
and on, over every frame and stream the pipeline generates."""
import numpy as np
import pytest
import torch
from conftest import hub_config

from wmsd_ray.models import build_backbone
from wmsd_ray.models.parity import max_abs_diff, our_latents, reference_latents
from wmsd_ray.models.sampling import initial_noise, ode_sample, recompute_log_probs, sde_sample
from wmsd_ray.models.tiny_hub import VARIANTS

PROMPT = "The red circle slides two cells left, then one cell up. Nothing else moves."
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("variant", VARIANTS)
def test_ode_latents_equal_the_diffusers_pipeline_with_guidance_off_and_on(variant, tiny_hub, image):
    folder = tiny_hub(variant)
    results = {}
    for guided in (False, True):
        cfg = hub_config(folder, variant, "model.text_cache=0", guided=guided)
        backbone = build_backbone(cfg.model, cfg.world)
        ours = our_latents(backbone, image, PROMPT, seed=42)
        ref = reference_latents(cfg, type(backbone.pipe).from_pretrained(str(folder)), image, PROMPT, seed=42)
        assert max_abs_diff(ours, ref) <= TOLERANCE, (variant, guided, max_abs_diff(ours, ref))
        results[guided] = ours
    # Guidance must change the output by far more than the tolerance, or the guided check proves nothing.
    assert max_abs_diff(results[False], results[True]) > 100 * TOLERANCE


@pytest.mark.parametrize("variant", VARIANTS)
def test_sde_at_eta_zero_is_the_ode_and_recomputed_ratios_are_one_with_guidance(variant, tiny_hub, image):
    cfg = hub_config(tiny_hub(variant), variant, guided=True)
    bb = build_backbone(cfg.model, cfg.world)
    cond = bb.condition(np.stack([image, image[::-1]]), [PROMPT, "The blue square stays."])
    x = initial_noise(bb, cond, torch.Generator().manual_seed(3))
    assert torch.equal(ode_sample(bb, cond, x), sde_sample(bb, cond, x, torch.Generator(), eta=0.0).final)
    traj = sde_sample(bb, cond, x, torch.Generator().manual_seed(4), eta=0.7)
    with torch.no_grad():
        ratio = (recompute_log_probs(bb, cond, traj) - traj.log_probs).exp()
    assert (ratio - 1).abs().max().item() <= 1e-5
    with torch.no_grad():  # a weight change moves the ratio: the check can fail
        for p in bb.transformer.parameters():
            p.add_(0.05 * torch.randn_like(p))
        moved = (recompute_log_probs(bb, cond, traj) - traj.log_probs).exp()
    assert (moved - 1).abs().max().item() > 1e-3
