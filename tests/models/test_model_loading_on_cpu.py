"""Checkpoints: save/load round-trip, and one clear error for a missing or mismatched checkpoint."""
import pytest
import torch
from conftest import tiny_config

from wmsd_ray.errors import ConfigError
from wmsd_ray.models import build_backbone, save_checkpoint
from wmsd_ray.models.loading import PACKAGED_DEMONSTRATOR


def test_checkpoint_round_trip_is_exact(text_encoder, corpus_batch, tmp_path):
    cfg = tiny_config()
    torch.manual_seed(5)
    bb = build_backbone(cfg.model, cfg.world, text_encoder)
    save_checkpoint(bb, tmp_path / "ckpt", cfg.world)
    assert (tmp_path / "ckpt" / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    cfg.model.checkpoint = str(tmp_path / "ckpt")
    loaded = build_backbone(cfg.model, cfg.world, text_encoder)
    frames, captions = corpus_batch
    cond = bb.condition(frames[:, 0], captions)
    x, s = torch.randn(bb.state_shape(4)), torch.full((4,), 0.4)
    with torch.no_grad():
        assert torch.equal(bb.velocity(x, s, cond), loaded.velocity(x, s, cond))


def test_missing_checkpoint_names_the_path(text_encoder, tmp_path):
    cfg = tiny_config(f"model.checkpoint={tmp_path / 'nowhere'}")
    with pytest.raises(ConfigError, match="no checkpoint folder at .*nowhere"):
        build_backbone(cfg.model, cfg.world, text_encoder)


def test_not_a_checkpoint_folder(text_encoder, tmp_path):
    (tmp_path / "junk").mkdir()
    cfg = tiny_config(f"model.checkpoint={tmp_path / 'junk'}")
    with pytest.raises(ConfigError, match="not a wmsd-ray checkpoint"):
        build_backbone(cfg.model, cfg.world, text_encoder)


@pytest.mark.parametrize("override, key", [("model.layers=3", "model.layers"), ("model.backbone=ltx2", "model.backbone"),
                                           ("world.frames=7", "world.frames")])
def test_mismatched_checkpoint_names_the_key(override, key, text_encoder, tmp_path):
    cfg = tiny_config()
    save_checkpoint(build_backbone(cfg.model, cfg.world, text_encoder), tmp_path / "ckpt", cfg.world)
    bad = tiny_config(f"model.checkpoint={tmp_path / 'ckpt'}", override)
    with pytest.raises(ConfigError, match=rf"trained with {key}=.*config asks for {key}="):
        build_backbone(bad.model, bad.world, text_encoder)


def test_packaged_demonstrator_loads_with_the_default_config(cfg, text_encoder):
    assert PACKAGED_DEMONSTRATOR.is_dir(), "the pretrained Demonstrator must ship with the package"
    size = sum(p.stat().st_size for p in PACKAGED_DEMONSTRATOR.rglob("*") if p.is_file())
    assert size <= 25 * 2**20
    bb = build_backbone(cfg.model, cfg.world, text_encoder)
    assert bb.name == cfg.model.backbone


@pytest.mark.parametrize("variant", ["wan2.1-i2v", "wan2.2-ti2v-5b", "ltx2-i2v", "hunyuan1.5-i2v"])
def test_a_diffusers_pipeline_folder_samples_and_decodes_videos(variant, tiny_hub, corpus_batch):
    """The cluster path, offline: a real-layout repo through model.hub -> VAE codec -> uint8 videos."""
    from conftest import hub_config

    from wmsd_ray.models.codec import VaeCodec
    from wmsd_ray.models.sampling import generate

    cfg = hub_config(tiny_hub(variant), variant, "model.sample_steps=2")
    bb = build_backbone(cfg.model, cfg.world)
    assert isinstance(bb.codec, VaeCodec)
    frames, captions = corpus_batch
    video = generate(bb, frames[:2, 0], captions[:2], seed=0)
    assert video.shape == (2, 9, 32, 32, 3) and video.dtype.name == "uint8" and video.std() > 0
