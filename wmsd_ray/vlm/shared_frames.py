"""Score several questions about the same frames from one encoding of those frames.

A judge asks three questions of every video. Scored as whole prompts, each question encodes
the video again: the image processor, the vision tower and the language model over every image
token, three times over. Here each distinct set of frames is encoded once: the prompt up to the
question (chat header and images) runs as one batch of prefixes, its KV cache is repeated for
each question about those frames, and only the questions' own tokens run after it (what vLLM's
prefix caching does for its engine). With real judges, hundreds of tokens per frame, the prefix
is most of the work. The scores equal whole-prompt scoring; ``TransformersVLM`` checks that on
its first shared batch and keeps to whole prompts if not (a chat template or position scheme
this does not cover).
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
from PIL import Image


def frames_key(images: list[np.ndarray]) -> bytes:
    """Content digest of a prompt's frames: equal frames, equal key."""
    h = hashlib.blake2b(digest_size=16)
    for im in images:
        a = np.ascontiguousarray(im)
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.digest()


def split_at_question(rendered: str, prompt: str) -> tuple[str, str] | None:
    """The chat-rendered prompt cut where the question starts: (prefix with images, rest)."""
    at = rendered.rfind(prompt)
    return None if at <= 0 else (rendered[:at], rendered[at:])


def _suffix_positions(base, start: int, mask: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Positions of the question tokens after a ``start``-token prefix (right-padded rows).

    Multimodal-RoPE models (Qwen-VL) keep per-prefix offsets in ``rope_deltas`` after the
    prefill; text after the images sits at position + offset on all three axes.
    """
    pos = (start + torch.arange(mask.shape[1], device=mask.device)).expand(mask.shape[0], -1)
    deltas = getattr(base, "rope_deltas", None)
    if isinstance(deltas, torch.Tensor):
        pos = (pos + deltas.to(mask.device)[rows]).unsqueeze(0).expand(3, -1, -1)
    return pos


@torch.no_grad()
def shared_frames_logits(processor, model, device, rendered: list[str],
                         requests: list[tuple[list[np.ndarray], str]]) -> torch.Tensor | None:
    """(len(requests), vocab) next-token logits, each distinct set of frames encoded once.

    ``rendered[i]`` is request i's chat-template text. None when no two requests share frames,
    a prompt does not split at its question, or the prefixes differ in length (then whole
    prompts are the way).
    """
    keys = [frames_key(images) for images, _ in requests]
    first: dict[bytes, int] = {}  # each distinct set of frames -> its first request, in order
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    if len(first) == len(requests):
        return None
    parts = [split_at_question(text, prompt) for text, (_, prompt) in zip(rendered, requests)]
    if any(p is None for p in parts):
        return None
    prefix_texts = [parts[i][0] for i in first.values()]
    images = [Image.fromarray(np.asarray(im, dtype=np.uint8)) for i in first.values() for im in requests[i][0]]
    prefix = processor(text=prefix_texts, images=images or None, padding=True, return_tensors="pt").to(device)
    if not bool(prefix["attention_mask"].all()):
        return None  # prefixes of different lengths: padding would shift the questions' positions
    out = model(**prefix, use_cache=True, logits_to_keep=1)
    cache, start = out.past_key_values, prefix["input_ids"].shape[1]
    group_of = {key: g for g, key in enumerate(first)}
    rows = torch.tensor([group_of[key] for key in keys], device=device)
    cache.reorder_cache(rows)
    tokenizer = processor.tokenizer
    side, tokenizer.padding_side = tokenizer.padding_side, "right"  # questions start right after the prefix
    try:
        rest = tokenizer([p[1] for p in parts], add_special_tokens=False, padding=True, return_tensors="pt").to(device)
    finally:
        tokenizer.padding_side = side
    mask = torch.cat([torch.ones(len(requests), start, dtype=rest["attention_mask"].dtype, device=device),
                      rest["attention_mask"]], dim=1)
    base = model.base_model
    hidden = base(input_ids=rest["input_ids"], attention_mask=mask, past_key_values=cache, use_cache=True,
                  position_ids=_suffix_positions(base, start, rest["attention_mask"], rows)).last_hidden_state
    last = rest["attention_mask"].sum(1) - 1
    return model.get_output_embeddings()(hidden[torch.arange(len(requests), device=device), last])
