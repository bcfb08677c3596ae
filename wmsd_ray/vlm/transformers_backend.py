"""A VLM run in-process with transformers (Qwen2.5-VL / Qwen3-VL / any image-text-to-text class).

Video reaches it as sampled frames (one image each), so no video processor (and no
torchvision) is needed. ``yes_no_logits`` reads the next-token distribution of a whole batch
of (frames, question) prompts in one forward pass: log p(yes) - log p(no), summed over the
spellings that start with a distinct token. Questions about the same frames share one encoding
of them (``shared_frames.py``), checked against whole prompts on first use.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image

from ..device import resolve
from ..errors import ConfigError
from .shared_frames import shared_frames_logits
from .yesno import answer_token_ids

log = logging.getLogger(__name__)
# Shared-frames scores may differ from whole prompts' by rounding only: float32 to 1e-4 (as the
# tests hold batched scores to), lower precisions by their own rounding.
SHARED_FRAMES_TOLERANCE = {"float32": 1e-4, "float64": 1e-8}


def image_only_processor_class(base: type) -> type:
    """``base`` (a Qwen-VL processor) without its video processor, which needs torchvision.

    Frames go in as images, so the video processor is never used; transformers derives a
    processor's parts from its ``__init__`` signature, hence the narrower one here.
    """

    class ImageOnly(base):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    ImageOnly.__name__ = ImageOnly.__qualname__ = f"{base.__name__}ImageOnly"
    return ImageOnly


def load_processor(path: str):
    """AutoProcessor where it loads; otherwise the checkpoint's processor class minus its video part."""
    from transformers import AutoConfig, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(path)
        if hasattr(processor, "image_processor"):  # not a bare tokenizer fallback
            return processor
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    import transformers

    model_type = AutoConfig.from_pretrained(path).model_type
    names = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}
    if model_type not in names:
        raise ConfigError(f"{path}: no usable image processor for model type {model_type!r}")
    return image_only_processor_class(getattr(transformers, names[model_type])).from_pretrained(path)


class TransformersVLM:
    exposes_logits = True
    score_source = "logits"

    def __init__(self, path: str, device: str = "auto", dtype: str = "float32", share_frames: bool = True):
        from transformers import AutoModelForImageTextToText

        try:
            self.processor = load_processor(path)
            self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype))
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load a transformers VLM from {path!r}: {e}") from e
        self.device, self.path = resolve(device), path
        self.model.to(self.device).eval()
        self.yes_ids, self.no_ids = answer_token_ids(self.processor.tokenizer)
        self.dtype = dtype
        self.share_frames: bool | None = None if share_frames else False  # None: not yet checked

    def _render(self, images: list[np.ndarray], prompt: str) -> str:
        content = [{"type": "image"} for _ in images] + [{"type": "text", "text": prompt}]
        return self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                  add_generation_prompt=True, tokenize=False)

    def _inputs(self, requests: list[tuple[list[np.ndarray], str]], texts: list[str] | None = None):
        """One left-padded batch: each prompt's images, then its text, in the chat template."""
        texts = texts or [self._render(images, prompt) for images, prompt in requests]
        pil = [Image.fromarray(np.asarray(im, dtype=np.uint8)) for images, _ in requests for im in images]
        self.processor.tokenizer.padding_side = "left"  # the last position is every row's next token
        return self.processor(text=texts, images=pil or None, padding=True, return_tensors="pt").to(self.device)

    @torch.no_grad()
    def generate(self, images: list[np.ndarray], prompt: str, max_new_tokens: int = 256,
                 temperature: float = 0.0, seed: int = 0) -> str:
        inputs = self._inputs([(images, prompt)])
        torch.manual_seed(seed)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling)
        return self.processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    @torch.no_grad()
    def _whole_prompt_logits(self, requests, texts: list[str] | None = None) -> torch.Tensor:
        # Only the last position's logits: the full (batch, length, vocab) tensor of a real judge
        # (150k vocab, thousands of image tokens) would be tens of GB at a group's batch size.
        return self.model(**self._inputs(requests, texts), logits_to_keep=1).logits[:, -1].float()

    @torch.no_grad()
    def next_token_logprobs(self, requests: list[tuple[list[np.ndarray], str]]) -> torch.Tensor:
        """(len(requests), vocab) log-probabilities of each prompt's next token."""
        texts = [self._render(images, prompt) for images, prompt in requests]
        shared = None
        if self.share_frames is not False:
            try:
                shared = shared_frames_logits(self.processor, self.model, self.device, texts, requests)
            except Exception as e:  # a model family the shared path does not fit: whole prompts for good
                if self.share_frames:
                    raise
                log.warning("%s: shared-frames scoring failed (%s: %s); scoring whole prompts", self.path,
                            type(e).__name__, e)
                self.share_frames = False
        if shared is not None and self.share_frames is None:  # first shared batch: check it
            whole = self._whole_prompt_logits(requests, texts)
            gap = float(self._rewards(whole.log_softmax(-1)).sub(self._rewards(shared.float().log_softmax(-1))).abs().max())
            self.share_frames = gap <= SHARED_FRAMES_TOLERANCE.get(self.dtype, 0.05)
            if not self.share_frames:
                log.warning("%s: shared-frames scores differ from whole prompts' by %.3g; scoring whole prompts",
                            self.path, gap)
                return whole.log_softmax(-1)
        logits = shared if shared is not None else self._whole_prompt_logits(requests, texts)
        return torch.log_softmax(logits.float(), dim=-1)

    def _rewards(self, logp: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(logp[:, self.yes_ids], 1) - torch.logsumexp(logp[:, self.no_ids], 1)

    def yes_no_logits(self, requests: list[tuple[list[np.ndarray], str]]) -> list[float]:
        return [float(r) for r in self._rewards(self.next_token_logprobs(requests))]

    def yes_no_logit(self, images: list[np.ndarray], prompt: str) -> float:
        return self.yes_no_logits([(images, prompt)])[0]

    def top_logprobs(self, images: list[np.ndarray], prompt: str, k: int) -> list[tuple[str, float]]:
        """The k most likely next tokens, decoded, with their log-probs (what servers return)."""
        logp = self.next_token_logprobs([(images, prompt)])[0]
        values, ids = logp.topk(min(k, logp.numel()))
        return [(self.processor.tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids)]
