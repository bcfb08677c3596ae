"""Registries of proposer and judge backends, chosen by config alone (``proposer.backend``).

The world's own proposer/judge register here; VLM backends (transformers, vLLM, HTTP)
join the same registries, so switching is a config change, not a code change.
"""
from __future__ import annotations

from typing import Callable

from .config import Config
from .config.schema import VLMConfig
from .world.judge import Judge, WorldJudge
from .world.proposer import Proposer, WorldProposer


def make_vlm(backend: str, vc: VLMConfig):
    """The VLM behind a role; imports are lazy so the world backends need none of them."""
    if backend == "transformers":
        from .vlm.transformers_backend import TransformersVLM

        return TransformersVLM(vc.model, vc.device, vc.dtype, vc.share_frames)
    if backend == "http":
        from .vlm.http_backend import OpenAIVLM

        return OpenAIVLM.from_config(vc)
    if backend == "vllm":
        import ray

        from .vlm.vllm_backend import VLLMVLM, vllm_actor

        engine = dict(gpu_memory_utilization=vc.gpu_memory_utilization, tensor_parallel=vc.tensor_parallel, dtype=vc.vllm_dtype)
        if ray.is_initialized():  # inside the Ray runtime: the engine gets its own actor (GPUs on a cluster)
            gpus = float(vc.tensor_parallel) if vc.engine_gpus < 0 else vc.engine_gpus
            return vllm_actor(vc.model, gpus, vc.python, **engine)
        return VLLMVLM(vc.model, **engine)
    raise ValueError(f"unknown VLM backend {backend!r}")


def _vlm_proposer(backend: str) -> Callable[[Config], Proposer]:
    def build(cfg: Config) -> Proposer:
        from .vlm.roles import VLMProposer

        return VLMProposer(make_vlm(backend, cfg.proposer.vlm), cfg, source=backend)
    return build


def _vlm_judge(backend: str) -> Callable[[Config], Judge]:
    def build(cfg: Config) -> Judge:
        from .vlm.roles import VLMJudge

        return VLMJudge(make_vlm(backend, cfg.judge.vlm), cfg, source=backend)
    return build


PROPOSERS: dict[str, Callable[[Config], Proposer]] = {
    "world": lambda cfg: WorldProposer(cfg.world, cfg.proposer),
    **{b: _vlm_proposer(b) for b in ("transformers", "vllm", "http")},
}
JUDGES: dict[str, Callable[[Config], Judge]] = {
    "world": lambda cfg: WorldJudge(cfg.world, cfg.judge),
    **{b: _vlm_judge(b) for b in ("transformers", "vllm", "http")},
}


def make_proposer(cfg: Config) -> Proposer:
    return PROPOSERS[cfg.proposer.backend](cfg)


def make_judge(cfg: Config) -> Judge:
    return JUDGES[cfg.judge.backend](cfg)
