"""An Executor adapter saved by wmsd-ray loads into the plain diffusers pipeline through its
documented LoRA API and gives what our Executor gives; an alpha != rank adapter keeps its scale."""
import numpy as np
import pytest
import torch
from conftest import hub_config

from wmsd_ray.models import build_backbone
from wmsd_ray.models.lora import ADAPTER, add_lora, load_lora, lora_parameters, save_lora, weight_name
from wmsd_ray.models.parity import load_adapter, max_abs_diff, our_latents, reference_latents

PROMPT = "The green square moves into the top-left corner."
FAMILIES = ["wan2.1-i2v", "wan2.2-i2v-a14b", "ltx2-i2v", "hunyuan1.5-i2v"]


def trained_executor(folder, variant):
    cfg = hub_config(folder, variant, "model.lora.rank=4", "model.lora.alpha=8", "model.text_cache=0")
    bb = build_backbone(cfg.model, cfg.world)
    add_lora(bb, cfg.model.lora)
    with torch.no_grad():
        for p in lora_parameters(bb):  # stands in for training: every A and B non-zero
            p.normal_(0, 0.2)
    return cfg, bb


@pytest.mark.parametrize("variant", FAMILIES)
def test_saved_adapter_in_the_plain_pipeline_equals_our_executor(variant, tiny_hub, tmp_path):
    folder = tiny_hub(variant)
    image = (np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)
    cfg, executor = trained_executor(folder, variant)
    ours = our_latents(executor, image, PROMPT, seed=7)
    save_lora(executor, tmp_path / "adapter")
    assert all((tmp_path / "adapter" / weight_name(e)).is_file() for e in executor.experts)

    pipe = type(executor.pipe).from_pretrained(str(folder))
    base = reference_latents(cfg, pipe, image, PROMPT, seed=7)
    assert max_abs_diff(ours, base) > 1e-2  # the adapter changes the model: the check can fail
    load_adapter(pipe, executor.name, tmp_path / "adapter", list(executor.experts))
    assert max_abs_diff(ours, reference_latents(cfg, pipe, image, PROMPT, seed=7)) <= 1e-4

    # alpha (8) != rank (4): the scale is saved with the weights and comes back
    fresh = build_backbone(cfg.model, cfg.world)
    load_lora(fresh, tmp_path / "adapter")
    for module in fresh.experts.values():
        assert module.peft_config[ADAPTER].lora_alpha == 8 and module.peft_config[ADAPTER].r == 4
    assert max_abs_diff(our_latents(fresh, image, PROMPT, seed=7), ours) <= 1e-6
