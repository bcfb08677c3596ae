"""A tiny random-init Idefics3 (SmolVLM's architecture) saved to disk: the VLM that vLLM's CPU
build runs here.

vLLM's Qwen-VL, LLaVA, Gemma-3 and most other multimodal models import transformers' torchvision
image processors, and torchvision cannot be installed beside the CPU torch; Idefics3's model file
imports none, and its PIL image processor needs none. The tokenizer is byte-level (256 byte
symbols, no merges) plus Idefics3's special tokens; the text model's head size is 64, the
smallest vLLM's CPU attention kernels take.
"""
from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>", "<global-img>"]

# SmolVLM's chat layout ("User:<image>question<end_of_utterance>\nAssistant:"), images first.
CHAT_TEMPLATE = (
    "<|endoftext|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def make_tiny_idefics3(path: str | Path, seed: int = 0, hidden: int = 128, layers: int = 2, image_size: int = 56) -> Path:
    """Save a tiny Idefics3 (model, byte-level tokenizer, PIL image processor) to ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor, PreTrainedTokenizerFast
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    from .tiny import byte_symbols

    path = Path(path)
    vocab = {s: i for i, s in enumerate(byte_symbols())}
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                        eos_token="<end_of_utterance>", additional_special_tokens=SPECIAL_TOKENS[1:])
    tokenizer.chat_template = CHAT_TEMPLATE
    patch, scale = 14, 2
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  image_size=image_size, patch_size=patch)
    text = dict(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                num_attention_heads=hidden // 64, num_key_value_heads=1, head_dim=64, max_position_embeddings=4096,
                bos_token_id=vocab["<|endoftext|>"], eos_token_id=vocab["<end_of_utterance>"],
                pad_token_id=vocab["<|endoftext|>"], tie_word_embeddings=False)
    config = Idefics3Config(vision_config=vision, text_config=text, image_token_id=vocab["<image>"],
                            scale_factor=scale, pad_token_id=vocab["<|endoftext|>"])
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = vocab["<end_of_utterance>"]
    model.generation_config.pad_token_id = vocab["<|endoftext|>"]
    model.save_pretrained(path)
    image_processor = Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": image_size},
                                                max_image_size={"longest_edge": image_size})
    tokens_per_image = (image_size // patch) ** 2 // scale ** 2
    Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=tokens_per_image,
                      chat_template=CHAT_TEMPLATE).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
