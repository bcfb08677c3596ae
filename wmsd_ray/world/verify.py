"""Act a proposed solution out in the simulator and judge it: the proof a TaskSpec is sound.

Uses the ground-truth scene, so it is for our own world only (training-data filtering
in the world stage, and ``world check``), never something a proposer or judge sees.
"""
from __future__ import annotations

from ..config import WorldConfig
from ..records import TaskSpec
from .captions import CaptionError, simulate_caption
from .judge import Judge
from .render import Renderer
from .scene import Scene, path_states
from .tasks import TaskParseError, parse_task

INFEASIBLE = ("solution_not_actable", "task_unreadable", "wrong_agent", "already_satisfied")


def verify_spec(scene: Scene, spec: TaskSpec, world: WorldConfig, renderer: Renderer, judge: Judge) -> str:
    """'' if the solution is feasible in ``scene`` and its video passes every judge axis,
    else the reason: one of INFEASIBLE, or 'solution_judged_wrong'."""
    try:
        agent, path = simulate_caption(scene, spec.solution, world.frames)  # in the grid, collision-free, fits T
        goal = parse_task(spec.task)
    except CaptionError:
        return "solution_not_actable"
    except TaskParseError:
        return "task_unreadable"
    if agent != spec.agent or goal.agent != agent:
        return "wrong_agent"
    if scene.get(agent).cell in (goal.cells(scene.positions(), world.grid) or ()):
        return "already_satisfied"
    verdict = judge.judge(renderer.render_states(path_states(scene, agent, path, world.frames)), spec.task)
    return "" if verdict.accepted else "solution_judged_wrong"
