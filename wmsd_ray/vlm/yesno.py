"""The judge's reward from a VLM's next-token distribution: log p(yes) - log p(no).

An answer token is the first token of one of the spellings below that is not also the first
token of an opposite spelling (a shared leading space says nothing). With the tokenizer at hand
(transformers, vLLM in-process) that is a set of token ids; over HTTP only decoded strings come
back, so a token counts when it is a prefix of a spelling of one answer and of none of the
other. Sums run over the answer tokens present; a floor stands in for an answer outside a
server's top-k, and a reply with neither answer gives no reward (the judge then asks for text).
"""
from __future__ import annotations

import math
from typing import Iterable

YES_WORDS = ("yes", "Yes", " yes", " Yes", "YES")
NO_WORDS = ("no", "No", " no", " No", "NO")
LOGPROB_FLOOR = -30.0


def logsumexp(xs: Iterable[float]) -> float:
    xs = list(xs)
    if not xs:
        return LOGPROB_FLOOR
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def answer_token_ids(tokenizer) -> tuple[list[int], list[int]]:
    """(yes ids, no ids): the spellings' first tokens, minus those both answers start with."""
    yes = {tokenizer.encode(w, add_special_tokens=False)[0] for w in YES_WORDS}
    no = {tokenizer.encode(w, add_special_tokens=False)[0] for w in NO_WORDS}
    return sorted(yes - no), sorted(no - yes)


def answer_of(token: str) -> str | None:
    """'yes' / 'no' for a decoded answer token (a prefix of one answer's spellings only), else None."""
    if not token:
        return None
    yes = any(w.startswith(token) for w in YES_WORDS)
    no = any(w.startswith(token) for w in NO_WORDS)
    return "yes" if yes and not no else "no" if no and not yes else None


def reward_from_ids(logprobs: dict[int, float], yes_ids: list[int], no_ids: list[int]) -> float | None:
    yes = [logprobs[i] for i in yes_ids if i in logprobs]
    no = [logprobs[i] for i in no_ids if i in logprobs]
    return logsumexp(yes) - logsumexp(no) if (yes or no) else None


def reward_from_top_logprobs(top: Iterable[tuple[str, float]]) -> float | None:
    """(decoded token, log-prob) pairs of the first generated token -> the reward, or None."""
    yes, no = [], []
    for token, logprob in top:
        kind = answer_of(token)
        if kind == "yes":
            yes.append(logprob)
        elif kind == "no":
            no.append(logprob)
    return logsumexp(yes) - logsumexp(no) if (yes or no) else None
