"""Tiny random diffusers pipelines in the real repo layout, built offline.

Each variant is built the way diffusers' own tests build ``get_dummy_components`` (tiny configs
of the real classes; tokenizers made locally instead of fetched) and written with
``pipe.save_pretrained``, so ``model_index.json`` and every subfolder look like the real repo's.
Tests and the paper-preset smoke runs load them through ``model.hub`` exactly as a cluster job
loads the real checkpoints. Non-trivial VAE statistics and scheduler configs are set on
purpose: a wrong normalisation or schedule shows up as a parity failure.

    python -m wmsd_ray.models.tiny_hub wan2.1-i2v /tmp/tiny-wan21
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..vlm.tiny import CHAT_TEMPLATE, byte_symbols

VARIANTS = ("wan2.1-i2v", "wan2.2-i2v-a14b", "wan2.2-ti2v-5b", "ltx2-i2v", "ltx2-i2v-distilled", "hunyuan1.5-i2v",
            "hunyuan1.5-i2v-distilled")
# Config overrides that run a variant in a 32 px, 9-frame world with short prompts (tests, smoke runs).
COMMON = ["model.checkpoint=", "model.prediction=velocity"]
TINY_OVERRIDES = {
    "wan2.1-i2v": ["model.backbone=wan", "model.max_text_tokens=16"],
    "wan2.2-i2v-a14b": ["model.backbone=wan", "model.max_text_tokens=16"],
    "wan2.2-ti2v-5b": ["model.backbone=wan", "model.max_text_tokens=16"],
    "ltx2-i2v": ["model.backbone=ltx2", "model.max_text_tokens=16", "model.ltx2.frame_rate=25"],
    "ltx2-i2v-distilled": ["model.backbone=ltx2", "model.max_text_tokens=16", "model.ltx2.frame_rate=25",
                           "model.sample_steps=8",
                           "model.sigmas=[1.0,0.99375,0.9875,0.98125,0.975,0.909375,0.725,0.421875]"],
    "hunyuan1.5-i2v": ["model.backbone=hunyuan15", "model.max_text_tokens=24"],
    "hunyuan1.5-i2v-distilled": ["model.backbone=hunyuan15", "model.max_text_tokens=24"],
}


def _default(fn, name: str):
    import inspect

    return inspect.signature(fn).parameters[name].default


def _seeded(seed: int, build):
    torch.manual_seed(seed)
    return build()


def _t5_tokenizer():
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)] + [(chr(c), -1.0) for c in range(32, 127)]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def _statistics(n: int, seed: int) -> tuple[list[float], list[float]]:
    g = torch.Generator().manual_seed(seed)
    return (0.3 * torch.randn(n, generator=g)).tolist(), (0.5 + torch.rand(n, generator=g)).tolist()


def _wan(variant: str, seed: int):
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    ti2v = variant == "wan2.2-ti2v-5b"
    z = 48 if ti2v else 16
    mean, std = _statistics(z, seed + 1)
    vae_kwargs = dict(in_channels=12, out_channels=12, is_residual=True, patch_size=2, scale_factor_spatial=16) if ti2v else {}
    vae = _seeded(seed, lambda: AutoencoderKLWan(base_dim=3, z_dim=z, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                                 temperal_downsample=[False, True, True], latents_mean=mean,
                                                 latents_std=std, **vae_kwargs))
    tokenizer = _t5_tokenizer()
    text_encoder = _seeded(seed, lambda: UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)))
    clip = variant == "wan2.1-i2v"

    def transformer():
        return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                     in_channels=z if ti2v else 2 * z + 4, out_channels=z, text_dim=32,
                                     freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                                     qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
                                     image_dim=8 if clip else None)

    image_encoder = image_processor = None
    if clip:
        image_encoder = _seeded(seed, lambda: CLIPVisionModel(CLIPVisionConfig(
            hidden_size=8, projection_dim=8, num_hidden_layers=2, num_attention_heads=2, image_size=32,
            intermediate_size=16, patch_size=8)))
        image_processor = CLIPImageProcessor(crop_size=32, size=32)
    a14b = variant == "wan2.2-i2v-a14b"
    return WanImageToVideoPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
        scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                          flow_shift=5.0 if ti2v else 3.0),
        image_processor=image_processor, image_encoder=image_encoder, transformer=_seeded(seed, transformer),
        transformer_2=_seeded(seed + 7, transformer) if a14b else None, boundary_ratio=0.875 if a14b else None,
        expand_timesteps=ti2v)


def _gemma():
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, GemmaTokenizer, SiglipVisionConfig

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<start_of_image>": 4, "<end_of_image>": 5,
             "<image_soft_token>": 6, "\u2581": 7}
    for c in range(32, 127):
        vocab.setdefault(chr(c), len(vocab))
    tokenizer = GemmaTokenizer(vocab=vocab, merges=[])
    text = Gemma3TextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=1, head_dim=8, sliding_window=16,
                            max_position_embeddings=256, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                image_size=32, patch_size=8)
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4, boi_token_index=4,
                          eoi_token_index=5, image_token_index=6)
    return tokenizer, Gemma3ForConditionalGeneration(config)


def _ltx2(variant: str, seed: int):
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2ImageToVideoPipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    tokenizer, text_encoder = _seeded(seed, _gemma)
    hidden, layers = text_encoder.config.text_config.hidden_size, text_encoder.config.text_config.num_hidden_layers
    transformer = _seeded(seed, lambda: LTX2VideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, vae_scale_factors=(2, 2, 2), audio_in_channels=4, audio_out_channels=4,
        audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2,
        qk_norm="rms_norm_across_heads", caption_channels=hidden, rope_double_precision=False, rope_type="split"))
    connectors = _seeded(seed, lambda: LTX2TextConnectors(
        caption_channels=hidden, text_proj_in_factor=layers + 1, video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=8, video_connector_num_layers=1,
        video_connector_num_learnable_registers=None, audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None, connector_rope_base_seq_len=32, rope_theta=10000.0,
        rope_double_precision=False, causal_temporal_positioning=False, rope_type="split"))
    vae = _seeded(seed, lambda: AutoencoderKLLTX2Video(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,), decoder_block_out_channels=(8,),
        layers_per_block=(1,), decoder_layers_per_block=(1, 1), spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,), decoder_inject_noise=(False, False), downsample_type=("spatial",),
        upsample_residual=(False,), upsample_factor=(1,), timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False))
    audio_vae = _seeded(seed, lambda: AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, attn_resolutions=None, in_channels=2,
        resolution=32, latent_channels=2, norm_type="pixel", causality_axis="height", dropout=0.0,
        mid_block_add_attention=False, sample_rate=16000, mel_hop_length=160, is_causal=True, mel_bins=8))
    with torch.no_grad():  # the statistics are buffers (not config): give them values that matter
        for module, seed_offset in ((vae, 2), (audio_vae, 3)):
            mean, std = _statistics(module.latents_mean.numel(), seed + seed_offset)
            module.latents_mean.copy_(torch.tensor(mean).view_as(module.latents_mean))
            module.latents_std.copy_(torch.tensor(std).view_as(module.latents_std))
    vocoder = _seeded(seed, lambda: LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins, hidden_channels=32, out_channels=2,
        upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1, output_sampling_rate=16000))
    if variant == "ltx2-i2v-distilled":  # the sigma list is used as it is
        scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=False, shift=1.0)
    else:  # the dev checkpoint's resolution-dependent shift, stretched to end at 0.1
        scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
                                                    base_image_seq_len=1024, max_image_seq_len=4096,
                                                    shift_terminal=0.1)
    return LTX2ImageToVideoPipeline(scheduler=scheduler, vae=vae, audio_vae=audio_vae, text_encoder=text_encoder,
                                    tokenizer=tokenizer, connectors=connectors, transformer=transformer,
                                    vocoder=vocoder)


def _bpe(word: str, merges: list[tuple[str, str]]) -> list[str]:
    """Byte-pair encoding of one pre-tokenized piece: merge the lowest-ranked adjacent pair first."""
    rank = {m: i for i, m in enumerate(merges)}
    tokens = list(word)
    while len(tokens) > 1:
        pairs = [(rank.get((a, b), len(rank)), i) for i, (a, b) in enumerate(zip(tokens, tokens[1:]))]
        best, i = min(pairs)
        if best == len(rank):
            break
        tokens[i:i + 2] = [tokens[i] + tokens[i + 1]]
    return tokens


def _qwen_tokenizer(system_message: str):
    """Byte-level Qwen2 tokenizer whose merges make every pre-tokenized piece of the pipeline's
    system prompt one token, as the real vocabulary does: its template prefix is then the 108
    tokens the pipeline crops, and the user's prompt is what the text encoder keeps."""
    from transformers import Qwen2Tokenizer

    vocab = {s: i for i, s in enumerate(byte_symbols())}
    for tok in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        vocab[tok] = len(vocab)
    special = dict(unk_token=None, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                   additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    split = Qwen2Tokenizer(vocab=dict(vocab), merges=[], **special)._tokenizer.pre_tokenizer.pre_tokenize_str
    merges: list[tuple[str, str]] = []
    for word, _ in split(f"system\n{system_message}\nuser\n"):  # pieces come back byte-mapped
        tokens = _bpe(word, merges)
        while len(tokens) > 1:  # merge the first two tokens until the piece is one token
            merges.append((tokens[0], tokens[1]))
            vocab.setdefault(tokens[0] + tokens[1], len(vocab))
            tokens = _bpe(word, merges)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, **special)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _hunyuan15(variant: str, seed: int):
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15ImageToVideoPipeline,
        HunyuanVideo15Transformer3DModel,
    )
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import (
        ByT5Tokenizer,
        Qwen2_5_VLTextConfig,
        Qwen2_5_VLTextModel,
        SiglipImageProcessor,
        SiglipVisionConfig,
        SiglipVisionModel,
        T5Config,
        T5EncoderModel,
    )

    P = HunyuanVideo15ImageToVideoPipeline

    tokenizer = _qwen_tokenizer(_default(P._get_mllm_prompt_embeds, "system_message"))
    vocab_size = len(tokenizer)
    text_encoder = _seeded(seed, lambda: Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(
        vocab_size=vocab_size, hidden_size=16, intermediate_size=16, num_hidden_layers=3, num_attention_heads=2,
        num_key_value_heads=2, rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        rope_theta=1000000.0)))
    tokenizer_2 = ByT5Tokenizer()
    text_encoder_2 = _seeded(seed, lambda: T5EncoderModel(T5Config(
        vocab_size=len(tokenizer_2), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8)))
    image_encoder = _seeded(seed, lambda: SiglipVisionModel(SiglipVisionConfig(
        hidden_size=12, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2, image_size=32,
        patch_size=8)))
    transformer = _seeded(seed, lambda: HunyuanVideo15Transformer3DModel(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16, text_embed_2_dim=32,
        image_embed_dim=12, rope_axes_dim=(2, 2, 4), target_size=32, task_type="i2v",
        use_meanflow=variant == "hunyuan1.5-i2v-distilled"))
    vae = _seeded(seed, lambda: AutoencoderKLHunyuanVideo15(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16), layers_per_block=1,
        spatial_compression_ratio=4, temporal_compression_ratio=2, downsample_match_channel=False,
        upsample_match_channel=False, scaling_factor=1.4))
    return HunyuanVideo15ImageToVideoPipeline(
        text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer, vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2, guider=ClassifierFreeGuidance(guidance_scale=6.0), image_encoder=image_encoder,
        feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}))


def make_tiny_pipeline(variant: str, seed: int = 0):
    """The tiny diffusers pipeline object of a variant (random weights, eval mode)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    family = variant.split("-")[0]
    builder = {"wan2.1": _wan, "wan2.2": _wan, "ltx2": _ltx2, "hunyuan1.5": _hunyuan15}[family]
    pipe = builder(variant, seed)
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    return pipe


def save_tiny_pipeline(variant: str, path: str | Path, seed: int = 0) -> Path:
    """Write a variant in the real repo layout (``model_index.json`` + one folder per component)."""
    path = Path(path)
    make_tiny_pipeline(variant, seed).save_pretrained(str(path), safe_serialization=True)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wmsd_ray.models.tiny_hub", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", choices=VARIANTS)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(save_tiny_pipeline(args.variant, args.out, args.seed))
    print("run it with: " + " ".join(COMMON + TINY_OVERRIDES[args.variant]) + f" model.hub={args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
