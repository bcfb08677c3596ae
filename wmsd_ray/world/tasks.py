"""Short tasks in the paper's "[agent]: instruction" form: families, phrasings, goals.

A goal is a set of cells the agent must end in, computed from object positions in the
frame being judged (for relational families the target's *final* position counts).
The judge reads tasks back from text, so every phrasing must parse to exactly one goal.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ..names import FAMILY_NAMES as _FAMILY_NAMES
from ..names import PALETTE_NAMES, SHAPE_NAMES
from .scene import Cell

Positions = dict[str, Cell]
GoalFn = Callable[[Positions, str, dict[str, str], int], "frozenset[Cell] | None"]

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
SIDES4 = ("top", "bottom", "left", "right")
NEXT_TO_SIDES = {"left of": (0, -1), "right of": (0, 1), "above": (-1, 0), "below": (1, 0)}
AXES = ("row", "column")


class TaskParseError(ValueError):
    """Text that is not a task of WorldTasks-mini."""


def _all_cells(g: int) -> list[Cell]:
    return [(r, c) for r in range(g) for c in range(g)]


def _corner(pos, agent, p, g):
    v, h = p["corner"].split("-")
    return frozenset({(0 if v == "top" else g - 1, 0 if h == "left" else g - 1)})


def _edge(pos, agent, p, g):
    e = p["edge"]
    return frozenset(
        (r, c) for r, c in _all_cells(g)
        if (e == "top" and r == 0) or (e == "bottom" and r == g - 1) or (e == "left" and c == 0) or (e == "right" and c == g - 1)
    )


def _centre(pos, agent, p, g):
    lo, hi = (g - 1) // 2, g // 2
    return frozenset((r, c) for r in range(lo, hi + 1) for c in range(lo, hi + 1))


def _half(pos, agent, p, g):
    h, k = p["half"], g // 2
    return frozenset(
        (r, c) for r, c in _all_cells(g)
        if (h == "top" and r < k) or (h == "bottom" and r >= g - k) or (h == "left" and c < k) or (h == "right" and c >= g - k)
    )


def _target(pos, p) -> Cell | None:
    return pos.get(p["target"])


def _next_to(pos, agent, p, g):
    t = _target(pos, p)
    if t is None:
        return None
    dr, dc = NEXT_TO_SIDES[p["side"]]
    cell = (t[0] + dr, t[1] + dc)
    return frozenset({cell}) if 0 <= cell[0] < g and 0 <= cell[1] < g else frozenset()


def _align(pos, agent, p, g):
    t = _target(pos, p)
    if t is None:
        return None
    i = 0 if p["axis"] == "row" else 1
    return frozenset(cell for cell in _all_cells(g) if cell[i] == t[i] and cell != t)


def _far_from(pos, agent, p, g):
    t = _target(pos, p)
    if t is None:
        return None
    blocked = {cell for name, cell in pos.items() if name != agent}
    free = [cell for cell in _all_cells(g) if cell not in blocked]
    if not free:
        return frozenset()
    dist = lambda cell: abs(cell[0] - t[0]) + abs(cell[1] - t[1])  # noqa: E731
    best = max(dist(cell) for cell in free)
    return frozenset(cell for cell in free if dist(cell) == best)


@dataclass(frozen=True)
class Family:
    name: str
    slots: dict[str, tuple[str, ...]]  # slot -> allowed values; "target" means another object
    phrasings: tuple[str, ...]
    goal: GoalFn

    @property
    def relational(self) -> bool:
        """Whether the goal is placed relative to another object (which must be found by name)."""
        return "target" in self.slots


FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("corner", {"corner": CORNERS}, (
        "go to the {corner} corner",
        "move into the {corner} corner",
        "head for the {corner} corner",
        "reach the {corner} corner of the board",
    ), _corner),
    Family("edge", {"edge": SIDES4}, (
        "go to the {edge} edge",
        "move to the {edge} edge of the board",
        "touch the {edge} edge",
        "reach the {edge} border of the grid",
    ), _edge),
    Family("centre", {}, (
        "go to the centre",
        "move to the middle of the board",
        "head for the centre of the grid",
        "reach the center",
    ), _centre),
    Family("next_to", {"side": tuple(NEXT_TO_SIDES), "target": ()}, (
        "go directly {side} the {target}",
        "move to the cell {side} the {target}",
        "stop right {side} the {target}",
        "end up just {side} the {target}",
    ), _next_to),
    Family("align", {"axis": AXES, "target": ()}, (
        "get into the same {axis} as the {target}",
        "line up with the {target} in its {axis}",
        "move into the {axis} of the {target}",
        "share a {axis} with the {target}",
    ), _align),
    Family("far_from", {"target": ()}, (
        "get as far as possible from the {target}",
        "move far away from the {target}",
        "go to the cell farthest from the {target}",
        "keep the greatest distance from the {target}",
    ), _far_from),
    Family("half", {"half": SIDES4}, (
        "go to the {half} half of the board",
        "move into the {half} half",
        "head into the {half} half of the grid",
        "enter the {half} half",
    ), _half),
]}
FAMILY_NAMES = tuple(FAMILIES)
assert FAMILY_NAMES == _FAMILY_NAMES, "wmsd_ray/names.py must list the goal families in order"


@dataclass(frozen=True)
class Goal:
    """A task with its phrasing: what the agent must achieve and how it was said."""

    agent: str
    family: str
    params: tuple[tuple[str, str], ...]
    phrasing: int = 0

    @property
    def param_dict(self) -> dict[str, str]:
        return dict(self.params)

    def cells(self, positions: Positions, grid: int) -> frozenset[Cell] | None:
        """Goal cells given object positions; None when a named target is missing."""
        return FAMILIES[self.family].goal(positions, self.agent, self.param_dict, grid)

    def instruction(self) -> str:
        return FAMILIES[self.family].phrasings[self.phrasing].format(**self.param_dict)

    def text(self) -> str:
        return f"[{self.agent}]: {self.instruction()}"

    def same_task(self, other: "Goal") -> bool:
        return (self.agent, self.family, self.params) == (other.agent, other.family, other.params)


def is_held_out(family: str, phrasing: int, held_out_families: list[str], held_out_phrasings: int) -> bool:
    n = len(FAMILIES[family].phrasings)
    return family in held_out_families or phrasing >= n - held_out_phrasings


def candidate_goals(agent: str, others: list[str]) -> list[Goal]:
    """Every (family, params) for ``agent`` with phrasing 0; phrasing is chosen later."""
    goals = []
    for fam in FAMILIES.values():
        combos: list[dict[str, str]] = [{}]
        for slot, values in fam.slots.items():
            vals = others if slot == "target" else list(values)
            combos = [dict(c, **{slot: v}) for c in combos for v in vals]
        goals += [Goal(agent, fam.name, tuple(sorted(c.items()))) for c in combos]
    return goals


_OBJECT = "(?:" + "|".join(PALETTE_NAMES) + ") (?:" + "|".join(SHAPE_NAMES) + ")"
_TASK = re.compile(rf"^\[\s*({_OBJECT})\s*\]\s*:\s*(.+?)\s*\.?$")


def _compile_phrasings() -> list[tuple[re.Pattern, str, int]]:
    compiled = []
    for fam in FAMILIES.values():
        for i, template in enumerate(fam.phrasings):
            pattern = re.escape(template)
            for slot, values in fam.slots.items():
                alts = _OBJECT if slot == "target" else "|".join(re.escape(v) for v in values)
                pattern = pattern.replace(re.escape("{" + slot + "}"), f"(?P<{slot}>{alts})")
            compiled.append((re.compile(f"^{pattern}$"), fam.name, i))
    return compiled


_PHRASINGS = _compile_phrasings()


def parse_task(text: str) -> Goal:
    """Read "[agent]: instruction" back into a Goal; TaskParseError if it is not one."""
    if not isinstance(text, str):
        raise TaskParseError(f"task must be text, got {type(text).__name__}")
    norm = " ".join(text.strip().lower().split())
    m = _TASK.match(norm)
    if not m:
        raise TaskParseError(f"not of the form '[colour shape]: instruction': {text[:80]!r}")
    agent, instruction = m.group(1), m.group(2)
    hits = [(fam, i, pm.groupdict()) for pat, fam, i in _PHRASINGS if (pm := pat.match(instruction))]
    if len(hits) != 1:
        why = "matches no known phrasing" if not hits else f"is ambiguous ({len(hits)} phrasings match)"
        raise TaskParseError(f"instruction {instruction[:80]!r} {why}")
    fam, i, params = hits[0]
    if params.get("target") == agent:
        raise TaskParseError(f"task refers to its own agent {agent!r} as the target")
    return Goal(agent, fam, tuple(sorted(params.items())), i)
