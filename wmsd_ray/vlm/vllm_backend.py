"""A VLM served by a vLLM engine inside this process (put it in a Ray actor with a GPU).

``vllm`` is an optional extra (``pip install -e .[vllm]``; the official wheel needs CUDA).
The judge reward reads the engine's top log-probs of the first generated token: log p(yes)
- log p(no) over the spellings present (a floor of -30 stands in for a spelling outside the
top-k). ``reload_weights`` picks up new weights written to the same folder.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from .http_backend import chat_messages
from .transformers_backend import NO_WORDS, YES_WORDS

LOGPROB_FLOOR = -30.0


class VLLMVLM:
    exposes_logits = True

    def __init__(self, path: str, gpu_memory_utilization: float = 0.5, max_model_len: int = 4096,
                 top_logprobs: int = 20, max_images: int = 16):
        try:
            from vllm import LLM
        except ImportError as e:
            raise ConfigError("backend 'vllm' needs the optional extra: pip install -e '.[vllm]' (CUDA)") from e
        self.llm = LLM(model=path, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                       limit_mm_per_prompt={"image": max_images}, enforce_eager=True)
        self.top_logprobs = top_logprobs

    def generate(self, images: list[np.ndarray], prompt: str, max_new_tokens: int = 256,
                 temperature: float = 0.0, seed: int = 0) -> str:
        from vllm import SamplingParams

        out = self.llm.chat(chat_messages(images, prompt),
                            SamplingParams(max_tokens=max_new_tokens, temperature=temperature, seed=seed),
                            use_tqdm=False)
        return out[0].outputs[0].text

    def yes_no_logit(self, images: list[np.ndarray], prompt: str) -> float | None:
        from vllm import SamplingParams

        out = self.llm.chat(chat_messages(images, prompt),
                            SamplingParams(max_tokens=1, temperature=0.0, logprobs=self.top_logprobs),
                            use_tqdm=False)
        top = out[0].outputs[0].logprobs[0]  # token id -> Logprob(logprob, rank, decoded_token)
        yes, no = [], []
        for lp in top.values():
            word = (lp.decoded_token or "")
            if word in YES_WORDS or word.strip() in ("yes", "Yes", "YES"):
                yes.append(lp.logprob)
            elif word in NO_WORDS or word.strip() in ("no", "No", "NO"):
                no.append(lp.logprob)

        def lse(xs: list[float]) -> float:
            if not xs:
                return LOGPROB_FLOOR
            m = max(xs)
            return m + math.log(sum(math.exp(x - m) for x in xs))

        return lse(yes) - lse(no)

    def reload_weights(self) -> None:
        self.llm.collective_rpc("reload_weights")


class RemoteVLM:
    """A VLM living in a Ray actor (e.g. a vLLM engine on its own GPU), called synchronously."""

    exposes_logits = True

    def __init__(self, handle):
        self.handle = handle

    def generate(self, images: list[np.ndarray], prompt: str, max_new_tokens: int = 256,
                 temperature: float = 0.0, seed: int = 0) -> str:
        import ray

        return ray.get(self.handle.generate.remote(images, prompt, max_new_tokens, temperature, seed))

    def yes_no_logit(self, images: list[np.ndarray], prompt: str) -> float | None:
        import ray

        return ray.get(self.handle.yes_no_logit.remote(images, prompt))

    def reload_weights(self) -> None:
        import ray

        ray.get(self.handle.reload_weights.remote())


def vllm_actor(path: str, num_gpus: float = 1.0, **engine_kwargs) -> RemoteVLM:
    """A ``VLLMVLM`` engine inside a Ray actor holding ``num_gpus`` (fractional allowed)."""
    import ray

    return RemoteVLM(ray.remote(num_gpus=num_gpus)(VLLMVLM).remote(path, **engine_kwargs))
