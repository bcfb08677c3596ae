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
    x, s = torch.randn(bb.latent_shape(4)), torch.full((4,), 0.4)
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


def test_a_diffusers_pipeline_folder_loads_through_model_hub(text_encoder, corpus_batch, tmp_path):
    """The cluster path, offline: a pipeline-layout folder (transformer/ + vae/) of a tiny Wan + AutoencoderKLWan."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    from wmsd_ray.models.codec import VaeCodec
    from wmsd_ray.models.sampling import initial_noise, ode_sample
    from wmsd_ray.models.text import resolve_text_encoder_path

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=8, dim_mult=[1, 1, 1, 1], num_res_blocks=1, z_dim=16)
    vae.save_pretrained(tmp_path / "pipe" / "vae")
    WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=33,
                          out_channels=16, text_dim=384, freq_dim=32, ffn_dim=64, num_layers=1,
                          rope_max_seq_len=64).save_pretrained(tmp_path / "pipe" / "transformer")
    cfg = tiny_config(f"model.hub={tmp_path / 'pipe'}", f"model.text_encoder={resolve_text_encoder_path('minilm')}",
                      "model.prediction=velocity", "model.sample_steps=2")
    bb = build_backbone(cfg.model, cfg.world)
    assert isinstance(bb.codec, VaeCodec) and bb.latent_shape(2) == (2, 16, 3, 4, 4)
    bb.transformer.float()
    frames, captions = corpus_batch
    cond = bb.condition(frames[:2, 0], captions[:2])
    video = bb.decode(ode_sample(bb, cond, initial_noise(bb, cond, torch.Generator().manual_seed(0))))
    assert video.shape == (2, 9, 32, 32, 3) and video.dtype.name == "uint8"
    bad = tiny_config(f"model.hub={tmp_path / 'nope'}")
    with pytest.raises(ConfigError, match="model.hub: cannot load a wan pipeline"):
        build_backbone(bad.model, bad.world)
