"""Paths for the agent: shortest, then fewest straight segments, never through objects.

Fewest segments keeps the detailed solution short ("slides two cells right, then one
cell down"), which is what a caption-following Demonstrator executes best.
"""
from __future__ import annotations

import heapq

import numpy as np

from .captions import segments_of
from .scene import DIRECTIONS, Cell, in_grid


def plan_path(
    grid: int,
    start: Cell,
    goal_cells: frozenset[Cell],
    blocked: set[Cell],
    max_moves: int,
    rng: np.random.Generator | None = None,
) -> list[Cell] | None:
    """Best path (start included) to any goal cell within ``max_moves``, else None.

    Cost is (moves, segments). Among equally good paths, ``rng`` picks one; with no
    rng the first found in a fixed order is returned, so results are reproducible.
    """
    if start in goal_cells:
        return [start]
    # Dijkstra over (cell, heading) with lexicographic cost (moves, segments).
    best: dict[tuple[Cell, str], tuple[int, int]] = {}
    parents: dict[tuple[Cell, str], list[tuple[Cell, str] | None]] = {}
    heap: list[tuple[int, int, int, Cell, str]] = []
    counter = 0
    for d, (dr, dc) in DIRECTIONS.items():
        nxt = (start[0] + dr, start[1] + dc)
        if in_grid(nxt, grid) and nxt not in blocked:
            best[(nxt, d)] = (1, 1)
            parents[(nxt, d)] = [None]
            heapq.heappush(heap, (1, 1, counter, nxt, d))
            counter += 1
    finals: list[tuple[Cell, str]] = []
    final_cost: tuple[int, int] | None = None
    while heap:
        moves, segs, _, cell, heading = heapq.heappop(heap)
        if best.get((cell, heading)) != (moves, segs):
            continue
        if final_cost is not None and (moves, segs) > final_cost:
            break
        if cell in goal_cells:
            final_cost = (moves, segs)
            finals.append((cell, heading))
            continue
        if moves >= max_moves:
            continue
        for d, (dr, dc) in DIRECTIONS.items():
            nxt = (cell[0] + dr, cell[1] + dc)
            if not in_grid(nxt, grid) or nxt in blocked or nxt == start:
                continue
            cost = (moves + 1, segs + (d != heading))
            key = (nxt, d)
            if key not in best or cost < best[key]:
                best[key] = cost
                parents[key] = [(cell, heading)]
                heapq.heappush(heap, (cost[0], cost[1], counter, nxt, d))
                counter += 1
            elif cost == best[key]:
                parents[key].append((cell, heading))
    if not finals:
        return None
    pick = (lambda options: options[int(rng.integers(len(options)))]) if rng is not None else (lambda options: options[0])
    node: tuple[Cell, str] | None = pick(sorted(finals))
    path = []
    while node is not None:
        path.append(node[0])
        node = pick(parents[node])
    path.append(start)
    return path[::-1]


def num_segments(path: list[Cell]) -> int:
    return len(segments_of(path))


def solve(scene, goal, frames: int, max_segments: int, rng: np.random.Generator | None = None):
    """Plan ``goal`` in ``scene``: (path, "") or (None, why) with why in
    {"unknown_agent", "missing_target", "already_satisfied", "infeasible", "too_complex"}."""
    positions = scene.positions()
    if goal.agent not in positions:
        return None, "unknown_agent"
    cells = goal.cells(positions, scene.grid)
    if cells is None:
        return None, "missing_target"
    start = positions[goal.agent]
    if start in cells:
        return None, "already_satisfied"
    path = plan_path(scene.grid, start, cells, scene.occupied(exclude=goal.agent), frames - 1, rng)
    if path is None:
        return None, "infeasible"
    if num_segments(path) > max_segments:
        return None, "too_complex"
    return path, ""
