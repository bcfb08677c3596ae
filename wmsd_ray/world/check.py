"""``world check``: measure the judge and the proposer against the issue's bars.

Ground-truth videos must pass, mismatched pairs must fail, injected faults must be
caught, clean and degraded; the proposer must write feasible, correct solutions.
"""
from __future__ import annotations

import time
from collections import Counter

import numpy as np

from ..config import Config
from .benchmark import benchmark_scene_keys, load_benchmark
from .captions import simulate_caption
from .corrupt import FAULTS, degrade, inject_fault
from .judge import WorldJudge
from .proposer import WorldProposer
from .render import Renderer
from .scene import Scene, path_states, random_scene
from .tasks import Goal, candidate_goals
from .verify import INFEASIBLE, verify_spec

BARS = {  # name -> (minimum or maximum, threshold)
    "gt_clean.task": ("min", 0.99), "gt_clean.agent": ("min", 0.99), "gt_clean.consistency": ("min", 0.99),
    "gt_noisy.task": ("min", 0.99), "gt_noisy.agent": ("min", 0.99), "gt_noisy.consistency": ("min", 0.99),
    "mismatch_clean.task": ("max", 0.02), "mismatch_noisy.task": ("max", 0.02),
    "faults_clean.caught": ("min", 0.99), "faults_noisy.caught": ("min", 0.99),
    "proposer.feasible": ("min", 0.95), "proposer.solution_task": ("min", 0.95),
    "corpus.outcome_parsed": ("min", 1.0), "corpus.outcome_true": ("min", 0.99), "corpus.motion_acted": ("min", 1.0),
}


def _rates(verdicts) -> dict[str, float]:
    n = max(1, len(verdicts))
    return {
        "task": sum(v.task for v in verdicts) / n,
        "agent": sum(v.agent for v in verdicts) / n,
        "consistency": sum(v.consistency for v in verdicts) / n,
        "mean_task_reward": round(sum(v.task_reward for v in verdicts) / n, 3),
    }


def _mismatched_task(scene: Scene, agent: str, final_cell, rng: np.random.Generator) -> str:
    """Another task for the same agent on the same scene that the video does not satisfy."""
    final = scene.moved(agent, final_cell).positions()
    others = [o.name for o in scene.objects if o.name != agent]
    wrong = [g for g in candidate_goals(agent, others) if final_cell not in (g.cells(final, scene.grid) or ())]
    g = wrong[int(rng.integers(len(wrong)))]
    return Goal(g.agent, g.family, g.params, int(rng.integers(3))).text()


def run_check(cfg: Config) -> dict:
    t0 = time.time()
    world, rng = cfg.world, np.random.default_rng(cfg.check.seed)
    renderer, judge = Renderer(world), WorldJudge(world, cfg.judge)
    bench = load_benchmark(world)
    scenes = [Scene.from_json(t.scene_json) for t in bench]
    videos, states, mismatched = [], [], []
    for t, scene in zip(bench, scenes):
        agent, path = simulate_caption(scene, t.solution, world.frames)
        states.append(path_states(scene, agent, path, world.frames))
        videos.append(renderer.render_states(states[-1]))
        mismatched.append(_mismatched_task(scene, agent, path[-1], rng))
    tasks = [t.task for t in bench]
    noisy = [degrade(v, cfg.check.noise_sigma, cfg.check.blur_sigma, rng) for v in videos]
    out: dict = {"n_tasks": len(bench)}
    out["gt_clean"] = _rates(judge.judge_batch(videos, tasks))
    out["gt_noisy"] = _rates(judge.judge_batch(noisy, tasks))
    for label, vids in (("mismatch_clean", videos), ("mismatch_noisy", noisy)):
        rates = _rates(judge.judge_batch(vids, mismatched))
        out[label] = {"task": rates["task"], "mean_task_reward": rates["mean_task_reward"]}
    for label, noise in (("faults_clean", False), ("faults_noisy", True)):
        caught: Counter = Counter()
        for kind in FAULTS:
            bad = [renderer.render_states(inject_fault(s, kind, world.colors, rng)) for s in states]
            if noise:
                bad = [degrade(v, cfg.check.noise_sigma, cfg.check.blur_sigma, rng) for v in bad]
            caught[kind] = sum(not v.consistency for v in judge.judge_batch(bad, tasks)) / len(bad)
        out[label] = {**caught, "caught": min(caught.values())}
    out["proposer"] = check_proposer(cfg, rng, renderer, judge)
    out["corpus"] = check_corpus(cfg, judge)
    failed = []
    for name, (kind, threshold) in BARS.items():
        section, key = name.split(".")
        value = out[section][key]
        if (kind == "min" and value < threshold) or (kind == "max" and value > threshold):
            failed.append(f"{name}={value:.3f} ({'<' if kind == 'min' else '>'} {threshold})")
    out["failed_bars"] = failed
    out["pass"] = not failed
    out["seconds"] = round(time.time() - t0, 2)
    return out


def check_proposer(cfg: Config, rng: np.random.Generator, renderer: Renderer, judge: WorldJudge) -> dict:
    """Propose on unseen scenes; act out each solution in the simulator and judge it."""
    world = cfg.world
    proposer = WorldProposer(world, cfg.proposer)
    exclude = benchmark_scene_keys(world)
    reasons: Counter = Counter()
    unreadable = 0
    for i in range(cfg.check.proposer_scenes):
        scene = random_scene(world, rng, exclude)
        proposal = proposer.propose(renderer.render(scene), f"check-{i:03d}", rng)
        unreadable += proposal.rejected.get("unreadable_scene", 0)
        reasons.update(verify_spec(scene, spec, world, renderer, judge) for spec in proposal.specs)
    pairs = sum(reasons.values())
    return {
        "scenes": cfg.check.proposer_scenes, "pairs": pairs,
        "pairs_per_scene": pairs / cfg.check.proposer_scenes,
        "feasible": (pairs - sum(reasons[r] for r in INFEASIBLE)) / max(1, pairs),
        "solution_task": reasons[""] / max(1, pairs),
        "unreadable_scenes": unreadable,
    }


def check_corpus(cfg: Config, judge: WorldJudge, n: int = 200) -> dict:
    """The pretraining corpus says what its videos show: each outcome (outcome and both
    registers) parses back to a goal the judge finds achieved in the rendered video, and each
    step-by-step caption acts out, in the simulator, to the agent's rendered end cell."""
    from itertools import islice

    from .corpus import iter_corpus
    from .outcomes import parse_outcome

    pc = cfg.pretrain
    registers = {"motion": 1.0, "outcome": 1.0, "both": 1.0}
    items = [v for v in islice(iter_corpus(cfg.world, (cfg.check.seed, 7), benchmark_scene_keys(cfg.world),
                                           registers, pc.relational_weight), n) if v.agent]
    goals = [parse_outcome(v.caption) for v in items]
    stated = [(v, g) for v, g in zip(items, goals) if v.register != "motion"]
    verdicts = judge.judge_batch([v.frames for v, g in stated if g is not None],
                                 [g.text() for v, g in stated if g is not None])
    acted, stepwise = 0, [v for v in items if v.register != "outcome"]
    for v in stepwise:  # the simulator's end cell against the one perceived in the last frame
        agent, path = simulate_caption(Scene.from_json(v.scene_json), v.caption, cfg.world.frames)
        seen = [d.cell for d in judge.perception.detect(v.frames[-1:])[0] if d.name == agent]
        acted += agent == v.agent and seen == [path[-1]]
    return {
        "items": len(items), "stated": len(stated),
        "outcome_parsed": sum(g is not None for _, g in stated) / max(1, len(stated)),
        "outcome_true": sum(v.task and v.consistency for v in verdicts) / max(1, len(verdicts)),
        "motion_acted": acted / max(1, len(stepwise)),
    }
