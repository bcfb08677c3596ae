"""The detailed-caption language: step-by-step motion text, written and read back.

One language serves the proposer's detailed solutions and the Demonstrator's
pretraining corpus, e.g. "The red circle slides two cells right, then slides one
cell down, and stops next to the blue square. Nothing else moves."
"""
from __future__ import annotations

import re

from .scene import DIRECTIONS, Cell, Scene, in_grid

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen"]
_WORD_TO_NUMBER = {w: i for i, w in enumerate(NUMBER_WORDS)}
# offset of the neighbour from the agent -> where the agent stands relative to it
_NEIGHBOUR_WORDS = {(0, -1): "right of", (0, 1): "left of", (-1, 0): "below", (1, 0): "above"}

Segment = tuple[str, int]


class CaptionError(ValueError):
    """Text that is not a caption of this language."""


def segments_of(path: list[Cell]) -> list[Segment]:
    """Collapse a cell path (start included) into (direction, cells) runs."""
    segments: list[Segment] = []
    for a, b in zip(path, path[1:]):
        step = (b[0] - a[0], b[1] - a[1])
        direction = next((d for d, v in DIRECTIONS.items() if v == step), None)
        if direction is None:
            raise ValueError(f"path step {a}->{b} is not one orthogonal cell")
        if segments and segments[-1][0] == direction:
            segments[-1] = (direction, segments[-1][1] + 1)
        else:
            segments.append((direction, 1))
    return segments


def path_of(start: Cell, segments: list[Segment]) -> list[Cell]:
    path = [start]
    for direction, n in segments:
        dr, dc = DIRECTIONS[direction]
        for _ in range(n):
            r, c = path[-1]
            path.append((r + dr, c + dc))
    return path


def landmark(scene: Scene, agent: str, cell: Cell) -> str:
    """Where the agent ends, in words: a corner, beside an object, an edge, the centre, or ''."""
    g = scene.grid
    vert = "top" if cell[0] == 0 else "bottom" if cell[0] == g - 1 else ""
    horiz = "left" if cell[1] == 0 else "right" if cell[1] == g - 1 else ""
    if vert and horiz:
        return f"in the {vert}-{horiz} corner"
    for o in scene.objects:
        if o.name == agent:
            continue
        off = (o.row - cell[0], o.col - cell[1])
        if off in _NEIGHBOUR_WORDS:
            return f"{_NEIGHBOUR_WORDS[off]} the {o.name}"
    if vert or horiz:
        return f"at the {vert or horiz} edge"
    lo, hi = (g - 1) // 2, g // 2
    if lo <= cell[0] <= hi and lo <= cell[1] <= hi:
        return "in the centre"
    return ""


def write_caption(scene: Scene, agent: str, path: list[Cell], where: str | None = None) -> str:
    """Caption for ``agent`` walking ``path`` in ``scene`` (scene = first frame); it stops at a
    landmark, or at ``where`` (an outcome's state phrase) when given."""
    segments = segments_of(path)
    if not segments:
        return "Nothing moves."
    moves = [f"slides {NUMBER_WORDS[n]} cell{'s' if n > 1 else ''} {d}" for d, n in segments]
    text = f"The {agent} " + ", then ".join(moves)
    if where is None:
        where = landmark(scene.moved(agent, path[-1]), agent, path[-1])
    text += f", and stops {where}." if where else ", and stops."
    return text + " Nothing else moves."


_SEGMENT = r"slides (\w+) cells? (up|down|left|right)"
_CAPTION = re.compile(
    rf"^the (\w+ \w+) ({_SEGMENT}(?:, then {_SEGMENT})*), and stops(?: [a-z\- ]+)?\. nothing else moves\.$"
)


def parse_caption(text: str) -> tuple[str, list[Segment]]:
    """(agent, segments) of a caption; ``("", [])`` for "Nothing moves."; CaptionError otherwise."""
    norm = " ".join(text.strip().lower().split())
    if norm == "nothing moves.":
        return "", []
    m = _CAPTION.match(norm)
    if not m:
        raise CaptionError(f"not a motion caption: {text[:80]!r}")
    segments = []
    for word, direction in re.findall(_SEGMENT, m.group(2)):
        if word not in _WORD_TO_NUMBER or _WORD_TO_NUMBER[word] == 0:
            raise CaptionError(f"bad cell count {word!r} in caption")
        segments.append((direction, _WORD_TO_NUMBER[word]))
    return m.group(1), segments


def simulate_caption(scene: Scene, caption: str, frames: int) -> tuple[str, list[Cell]]:
    """The simulator reading a caption: (agent, path); CaptionError if it cannot be acted out."""
    agent, segments = parse_caption(caption)
    if not agent:
        return "", []
    try:
        start = scene.get(agent).cell
    except KeyError:
        raise CaptionError(f"caption names {agent!r}, which is not in the scene") from None
    path = path_of(start, segments)
    blocked = scene.occupied(exclude=agent)
    for cell in path[1:]:
        if not in_grid(cell, scene.grid):
            raise CaptionError(f"caption leaves the grid at {cell}")
        if cell in blocked:
            raise CaptionError(f"caption walks into an occupied cell {cell}")
    if len(path) > frames:
        raise CaptionError(f"caption needs {len(path) - 1} moves, more than {frames - 1} frames allow")
    return agent, path
