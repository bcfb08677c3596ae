"""A VLM served by a vLLM engine inside this process (put it in a Ray actor with a GPU).

``vllm`` is an optional extra (``pip install -e .[vllm]``; the official wheel needs CUDA).
The judge reward reads the engine's top log-probs of the first generated token: log p(yes)
- log p(no) over the answer tokens present, by token id as the transformers backend counts
them (``yesno``), so the two agree on the same weights; a batch of
questions goes to the engine as one ``chat`` call. ``reload_weights`` picks up new weights
written to the same folder.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .http_backend import chat_messages
from .yesno import answer_token_ids, reward_from_ids


class VLLMVLM:
    exposes_logits = True
    score_source = "logprobs"

    def __init__(self, path: str, gpu_memory_utilization: float = 0.5, max_model_len: int = 4096,
                 top_logprobs: int = 20, max_images: int = 16, tensor_parallel: int = 1):
        try:
            from vllm import LLM
        except ImportError as e:
            raise ConfigError("backend 'vllm' needs the optional extra: pip install -e '.[vllm]' (CUDA)") from e
        self.llm = LLM(model=path, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                       limit_mm_per_prompt={"image": max_images}, enforce_eager=True,
                       tensor_parallel_size=tensor_parallel)
        self.top_logprobs = top_logprobs
        self.yes_ids, self.no_ids = answer_token_ids(self.llm.get_tokenizer())

    def generate(self, images: list[np.ndarray], prompt: str, max_new_tokens: int = 256,
                 temperature: float = 0.0, seed: int = 0) -> str:
        from vllm import SamplingParams

        out = self.llm.chat(chat_messages(images, prompt),
                            SamplingParams(max_tokens=max_new_tokens, temperature=temperature, seed=seed),
                            use_tqdm=False)
        return out[0].outputs[0].text

    def yes_no_logits(self, requests: list[tuple[list[np.ndarray], str]]) -> list[float | None]:
        from vllm import SamplingParams

        outs = self.llm.chat([chat_messages(images, prompt) for images, prompt in requests],
                             SamplingParams(max_tokens=1, temperature=0.0, logprobs=self.top_logprobs),
                             use_tqdm=False)
        # each output's first token: token id -> Logprob(logprob, rank, decoded_token)
        return [reward_from_ids({i: lp.logprob for i, lp in out.outputs[0].logprobs[0].items()},
                                self.yes_ids, self.no_ids) for out in outs]

    def yes_no_logit(self, images: list[np.ndarray], prompt: str) -> float | None:
        return self.yes_no_logits([(images, prompt)])[0]

    def reload_weights(self) -> None:
        self.llm.collective_rpc("reload_weights")


class RemoteVLM:
    """A VLM living in a Ray actor (e.g. a vLLM engine on its own GPU), called synchronously."""

    exposes_logits = True
    score_source = "logprobs"

    def __init__(self, handle):
        self.handle = handle

    def generate(self, images: list[np.ndarray], prompt: str, max_new_tokens: int = 256,
                 temperature: float = 0.0, seed: int = 0) -> str:
        import ray

        return ray.get(self.handle.generate.remote(images, prompt, max_new_tokens, temperature, seed))

    def yes_no_logit(self, images: list[np.ndarray], prompt: str) -> float | None:
        import ray

        return ray.get(self.handle.yes_no_logit.remote(images, prompt))

    def yes_no_logits(self, requests: list[tuple[list[np.ndarray], str]]) -> list[float | None]:
        import ray

        return ray.get(self.handle.yes_no_logits.remote(requests))

    def reload_weights(self) -> None:
        import ray

        ray.get(self.handle.reload_weights.remote())


def vllm_actor(path: str, num_gpus: float = 1.0, **engine_kwargs) -> RemoteVLM:
    """A ``VLLMVLM`` engine inside a Ray actor holding ``num_gpus`` (fractional allowed)."""
    import ray

    return RemoteVLM(ray.remote(num_gpus=num_gpus)(VLLMVLM).remote(path, **engine_kwargs))
