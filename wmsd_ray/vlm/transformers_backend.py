"""A VLM run in-process with transformers (Qwen2.5-VL / Qwen3-VL / any image-text-to-text class).

Video reaches it as sampled frames (one image each), so no video processor (and no
torchvision) is needed. ``yes_no_logits`` reads the next-token distribution of a whole batch
of (frames, question) prompts in one left-padded forward pass: log p(yes) - log p(no), summed
over the spellings that start with a distinct token.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..device import resolve
from ..errors import ConfigError
from .yesno import answer_token_ids


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

    def __init__(self, path: str, device: str = "auto", dtype: str = "float32"):
        from transformers import AutoModelForImageTextToText

        try:
            self.processor = load_processor(path)
            self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype))
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load a transformers VLM from {path!r}: {e}") from e
        self.device, self.path = resolve(device), path
        self.model.to(self.device).eval()
        self.yes_ids, self.no_ids = answer_token_ids(self.processor.tokenizer)

    def _inputs(self, requests: list[tuple[list[np.ndarray], str]]):
        """One left-padded batch: each prompt's images, then its text, in the chat template."""
        texts, pil = [], []
        for images, prompt in requests:
            content = [{"type": "image"} for _ in images] + [{"type": "text", "text": prompt}]
            texts.append(self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                            add_generation_prompt=True, tokenize=False))
            pil += [Image.fromarray(np.asarray(im, dtype=np.uint8)) for im in images]
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
    def next_token_logprobs(self, requests: list[tuple[list[np.ndarray], str]]) -> torch.Tensor:
        """(len(requests), vocab) log-probabilities of each prompt's next token, one forward pass."""
        logits = self.model(**self._inputs(requests)).logits[:, -1].float()
        return torch.log_softmax(logits, dim=-1)

    def yes_no_logits(self, requests: list[tuple[list[np.ndarray], str]]) -> list[float]:
        logp = self.next_token_logprobs(requests)
        reward = torch.logsumexp(logp[:, self.yes_ids], 1) - torch.logsumexp(logp[:, self.no_ids], 1)
        return [float(r) for r in reward]

    def yes_no_logit(self, images: list[np.ndarray], prompt: str) -> float:
        return self.yes_no_logits([(images, prompt)])[0]

    def top_logprobs(self, images: list[np.ndarray], prompt: str, k: int) -> list[tuple[str, float]]:
        """The k most likely next tokens, decoded, with their log-probs (what servers return)."""
        logp = self.next_token_logprobs([(images, prompt)])[0]
        values, ids = logp.topk(min(k, logp.numel()))
        return [(self.processor.tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids)]
