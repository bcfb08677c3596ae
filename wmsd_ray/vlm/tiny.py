"""Tiny random-init Qwen-VL checkpoints (Qwen2.5-VL, Qwen3-VL), built offline and saved to disk.

They exercise the real load -> prompt -> generate/score -> parse path of every VLM backend
(transformers, vLLM, HTTP) without a hub. Random weights answer nonsense: they test
plumbing, not judgement. The tokenizer is byte-level (256 byte symbols, no merges) plus
the Qwen chat and vision special tokens; the image processor is the PIL one (no torchvision).
"""
from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]

# A Qwen-style chat template: images become <|vision_start|><|image_pad|><|vision_end|>.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (printable bytes map to themselves)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), 256)]
    moved = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(moved)) for b in range(256)]


def _byte_vocab() -> dict[str, int]:
    symbols = byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    for tok in SPECIAL_TOKENS:
        vocab[tok] = len(vocab)
    return vocab


def make_tiny_qwen_vl(path: str | Path, seed: int = 0, hidden: int = 64, layers: int = 2,
                      family: str = "qwen2_5_vl", head_dim: int = 16, image_tokens: int = 4) -> Path:
    """Save a tiny Qwen2.5-VL or Qwen3-VL (model, tokenizer, processor) to ``path`` and return it.

    ``image_tokens``: the most language-model tokens one image may become (the processor's
    ``max_pixels``); real judges spend 64-1,280 per frame, the tests 1-4.
    """
    import torch
    import transformers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from .transformers_backend import image_only_processor_class

    path = Path(path)
    vocab = _byte_vocab()
    ids = {k: vocab[f"<|{k}|>"] for k in ("image_pad", "video_pad", "vision_start", "vision_end", "im_end", "endoftext")}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, bos_token=None,
                               eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               additional_special_tokens=SPECIAL_TOKENS[1:])
    tokenizer.chat_template = CHAT_TEMPLATE
    patch = 14 if family == "qwen2_5_vl" else 16
    unit = patch * 2
    image_processor = Qwen2VLImageProcessorPil(min_pixels=unit * unit, max_pixels=image_tokens * unit * unit,
                                               patch_size=patch,
                                               merge_size=2, temporal_patch_size=2)
    mrope = [head_dim // 8, 3 * head_dim // 16, 3 * head_dim // 16]  # sums to head_dim / 2
    text = dict(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                num_attention_heads=hidden // head_dim, num_key_value_heads=2, max_position_embeddings=4096,
                tie_word_embeddings=True, bos_token_id=None, eos_token_id=ids["im_end"], pad_token_id=ids["endoftext"])
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden,
                  patch_size=patch, spatial_merge_size=2, temporal_patch_size=2, in_chans=3)
    if family == "qwen2_5_vl":
        config_cls, model_cls, proc_cls = (transformers.Qwen2_5_VLConfig, transformers.Qwen2_5_VLForConditionalGeneration,
                                           transformers.Qwen2_5_VLProcessor)
        text["rope_scaling"] = {"type": "mrope", "mrope_section": mrope}
        vision.update(window_size=56, fullatt_block_indexes=[0])
    elif family == "qwen3_vl":
        config_cls, model_cls, proc_cls = (transformers.Qwen3VLConfig, transformers.Qwen3VLForConditionalGeneration,
                                           transformers.Qwen3VLProcessor)
        text.update(head_dim=head_dim, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                        "mrope_section": mrope, "mrope_interleaved": True})
        vision.pop("in_chans")
        vision.update(num_position_embeddings=64, deepstack_visual_indexes=[0])
    else:
        raise ValueError(f"unknown tiny VLM family {family!r} (qwen2_5_vl, qwen3_vl)")
    processor = image_only_processor_class(proc_cls)(image_processor, tokenizer, chat_template=CHAT_TEMPLATE)
    config = config_cls(text_config=text, vision_config=vision, image_token_id=ids["image_pad"],
                        video_token_id=ids["video_pad"], vision_start_token_id=ids["vision_start"],
                        vision_end_token_id=ids["vision_end"], eos_token_id=ids["im_end"],
                        pad_token_id=ids["endoftext"], bos_token_id=None, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    model.generation_config.eos_token_id = ids["im_end"]
    model.generation_config.pad_token_id = ids["endoftext"]
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
