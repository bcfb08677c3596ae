"""The outcome register of the caption language: where the agent ends, in descriptive words.

Real video models are pretrained on captions of every level of detail, destinations and
relations included; WMSD elicits that knowledge with short tasks. So the Demonstrator's corpus
mixes three registers (``pretrain.registers``):
- ``motion``: the step-by-step caption ("The red circle slides two cells left, then slides one
  cell up, and stops. Nothing else moves.");
- ``outcome``: only where the agent ends ("The red circle moves until it is in the same row as
  the blue square. Nothing else moves.");
- ``both``: the motion, stopping at the outcome ("..., and stops in the same row as the blue
  square. Nothing else moves.").
Every goal family the world knows has a *state phrase* (a predicate on the final frame). They
are third-person descriptions, never the short tasks' "[agent]: instruction" form or imperative
phrasings, which stay unseen in pretraining as in the paper. ``parse_outcome`` reads a caption's
outcome back into a Goal, so the world can check that each outcome caption is true of its video.
"""
from __future__ import annotations

import re

from ..names import PALETTE_NAMES, SHAPE_NAMES
from .tasks import AXES, CORNERS, FAMILIES, NEXT_TO_SIDES, SIDES4, Goal

STATE_PHRASES = {  # family -> the phrase saying the goal holds at the end
    "corner": "in the {corner} corner",
    "edge": "at the {edge} edge",
    "centre": "in the centre",
    "next_to": "directly {side} the {target}",
    "align": "in the same {axis} as the {target}",
    "far_from": "as far as it can be from the {target}",
    "half": "in the {half} half of the board",
}
OUTCOME_FRAMES = ("moves until it is {state}", "travels until it is {state}")
assert set(STATE_PHRASES) == set(FAMILIES), "every goal family needs a state phrase"

_OBJECT = "(?:" + "|".join(PALETTE_NAMES) + ") (?:" + "|".join(SHAPE_NAMES) + ")"
_SLOT_VALUES = {"corner": CORNERS, "edge": SIDES4, "half": SIDES4, "side": tuple(NEXT_TO_SIDES), "axis": AXES}


def state_phrase(goal: Goal) -> str:
    return STATE_PHRASES[goal.family].format(**goal.param_dict)


def outcome_caption(goal: Goal, frame: int = 0) -> str:
    """The outcome register: "The {agent} moves until it is {state}. Nothing else moves." """
    verb = OUTCOME_FRAMES[frame % len(OUTCOME_FRAMES)].format(state=state_phrase(goal))
    return f"The {goal.agent} {verb}. Nothing else moves."


def _state_patterns() -> list[tuple[re.Pattern, str]]:
    out = []
    for family, template in STATE_PHRASES.items():
        pattern = re.escape(template)
        for slot in FAMILIES[family].slots:
            alts = _OBJECT if slot == "target" else "|".join(re.escape(v) for v in _SLOT_VALUES[slot])
            pattern = pattern.replace(re.escape("{" + slot + "}"), f"(?P<{slot}>{alts})")
        out.append((re.compile(f"^{pattern}$"), family))
    return out


_STATES = _state_patterns()
_FRAMES = "|".join(re.escape(f.split(" {")[0]) for f in OUTCOME_FRAMES)
_OUTCOME = re.compile(rf"^the ({_OBJECT}) (?:{_FRAMES}) (.+)\. nothing else moves\.$")
_STOPS = re.compile(rf"^the ({_OBJECT}) slides .*, and stops (.+)\. nothing else moves\.$")


def parse_state(agent: str, phrase: str) -> Goal | None:
    """A state phrase back into a Goal (None if the phrase is not one)."""
    for pattern, family in _STATES:
        m = pattern.match(phrase)
        if m:
            params = m.groupdict()
            if params.get("target") == agent:
                return None
            return Goal(agent, family, tuple(sorted(params.items())))
    return None


def parse_outcome(caption: str) -> Goal | None:
    """The outcome a caption states (outcome or both registers); None for a motion caption
    whose stop says nothing the goal families know."""
    norm = " ".join(caption.strip().lower().split())
    m = _OUTCOME.match(norm) or _STOPS.match(norm)
    return parse_state(m.group(1), m.group(2)) if m else None
