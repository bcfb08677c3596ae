"""Registries of proposer and judge backends, chosen by config alone (``proposer.backend``).

The world's own proposer/judge register here; VLM backends (transformers, vLLM, HTTP)
join the same registries, so switching is a config change, not a code change.
"""
from __future__ import annotations

from typing import Callable

from .config import Config
from .world.judge import Judge, WorldJudge
from .world.proposer import Proposer, WorldProposer

PROPOSERS: dict[str, Callable[[Config], Proposer]] = {
    "world": lambda cfg: WorldProposer(cfg.world, cfg.proposer),
}
JUDGES: dict[str, Callable[[Config], Judge]] = {
    "world": lambda cfg: WorldJudge(cfg.world, cfg.judge),
}


def make_proposer(cfg: Config) -> Proposer:
    return PROPOSERS[cfg.proposer.backend](cfg)


def make_judge(cfg: Config) -> Judge:
    return JUDGES[cfg.judge.backend](cfg)
