"""Strict parsers for VLM replies. Every failure is a counted reason, never an exception.

Proposer replies must be JSON ``{"tasks": [{"agent", "task", "solution"}, ...]}`` (a fenced
```json block or surrounding prose is tolerated; the object itself is not repaired). A task
must read "[agent]: instruction" with the item's own agent. Judge replies are yes/no.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

MAX_FIELD_CHARS = {"agent": 60, "task": 200, "solution": 1200}
TASK_FORM = re.compile(r"^\[([^\[\]]{1,60})\]:\s*(\S.*)$", re.S)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


@dataclass(frozen=True)
class ProposedPair:
    agent: str
    task: str
    solution: str


def task_key(task: str) -> str:
    """What makes two proposed tasks duplicates: the same words, ignoring case and spacing."""
    return " ".join(task.lower().split())


def _json_candidates(text: str) -> list[str]:
    """The fenced blocks, then the outermost {...} span, then the text itself."""
    out = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        out.append(text[start:end + 1])
    out.append(text)
    return out


def _load_object(text: str) -> dict | None:
    for cand in _json_candidates(text):
        try:
            obj = json.loads(cand)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def parse_proposals(text: object, limit: int) -> tuple[list[ProposedPair], Counter]:
    """Valid, de-duplicated pairs (at most ``limit``) and a Counter of why the rest were rejected."""
    rejected: Counter = Counter()
    if not isinstance(text, str):
        rejected["not_text"] += 1
        return [], rejected
    obj = _load_object(text)
    if obj is None:
        rejected["not_json"] += 1
        return [], rejected
    items = obj.get("tasks")
    if not isinstance(items, list):
        rejected["no_tasks_list"] += 1
        return [], rejected
    if not items:
        rejected["empty_tasks_list"] += 1
        return [], rejected
    pairs: list[ProposedPair] = []
    seen: set[str] = set()
    for item in items:
        reason, pair = _check_item(item)
        if not reason:
            key = task_key(pair.task)
            if key in seen:
                reason = "duplicate"
            elif len(pairs) >= limit:
                reason = "over_limit"
            else:
                seen.add(key)
                pairs.append(pair)
                continue
        rejected[reason] += 1
    return pairs, rejected


def _check_item(item: object) -> tuple[str, ProposedPair | None]:
    if not isinstance(item, dict):
        return "item_not_object", None
    keys = set(item)
    if keys - set(MAX_FIELD_CHARS):
        return "extra_key", None
    if set(MAX_FIELD_CHARS) - keys:
        return "missing_key", None
    if not all(isinstance(item[k], str) for k in MAX_FIELD_CHARS):
        return "wrong_type", None
    fields = {k: " ".join(item[k].split()) for k in MAX_FIELD_CHARS}
    if not all(fields.values()):
        return "empty_field", None
    if any(len(fields[k]) > n for k, n in MAX_FIELD_CHARS.items()):
        return "too_long", None
    m = TASK_FORM.match(fields["task"])
    if not m:
        return "task_form", None
    if m.group(1).strip().lower() != fields["agent"].lower():
        return "agent_mismatch", None
    return "", ProposedPair(fields["agent"], fields["task"], fields["solution"])


_YES = re.compile(r"^\W*(yes|y|true|1)\b", re.I)
_NO = re.compile(r"^\W*(no|n|false|0)\b", re.I)


def parse_yes_no(text: object) -> bool | None:
    """True/False from a reply that starts with a yes/no word (after punctuation); None otherwise."""
    if not isinstance(text, str):
        return None
    head = text.strip()[:40]
    if _YES.match(head):
        return True
    if _NO.match(head):
        return False
    return None


def parse_dreamgen_answer(text: object) -> bool | None:
    """DreamGen Bench: success iff the reply starts with '1' ('0' = no); anything else is unparsed."""
    if not isinstance(text, str):
        return None
    head = text.strip()
    if head.startswith("1"):
        return True
    if head.startswith("0"):
        return False
    return None
