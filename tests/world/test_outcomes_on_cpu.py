"""The outcome register: every goal family said descriptively, read back, true of its video,
and never in the short tasks' form or phrasings (they stay unseen in pretraining)."""
import re
from itertools import islice

import numpy as np
import pytest

from wmsd_ray.world.captions import simulate_caption, write_caption
from wmsd_ray.world.check import check_corpus
from wmsd_ray.world.corpus import iter_corpus
from wmsd_ray.world.outcomes import outcome_caption, parse_outcome, state_phrase
from wmsd_ray.world.scene import Scene
from wmsd_ray.world.tasks import FAMILIES, TaskParseError, candidate_goals, parse_task

MIXED = {"motion": 1.0, "outcome": 1.0, "both": 1.0}


def test_every_goal_reads_back_from_both_registers(world, rng):
    from wmsd_ray.world.scene import random_scene

    scene = random_scene(world, rng)
    agent, others = scene.objects[0].name, [o.name for o in scene.objects[1:]]
    goals = candidate_goals(agent, others)
    assert {g.family for g in goals} == set(FAMILIES)
    for g in goals:
        for frame in (0, 1):
            assert parse_outcome(outcome_caption(g, frame)) == g
        stops = f"The {agent} slides one cell left, and stops {state_phrase(g)}. Nothing else moves."
        assert parse_outcome(stops) == g
    assert parse_outcome("The red circle slides one cell left, and stops. Nothing else moves.") is None
    assert parse_outcome(f"The {agent} moves until it is next to nothing. Nothing else moves.") is None


def test_corpus_outcomes_are_true_of_their_videos_and_false_ones_are_caught(cfg, judge):
    out = check_corpus(cfg, judge, n=120)
    assert out["stated"] > 40 and out["outcome_parsed"] == 1.0
    assert out["outcome_true"] >= 0.99 and out["motion_acted"] == 1.0
    # The same videos judged against another goal of the same agent that does not hold: caught.
    items = [v for v in islice(iter_corpus(cfg.world, 3, registers={"outcome": 1.0}), 40) if v.agent]
    wrong_tasks = []
    for v in items:
        scene, goal = Scene.from_json(v.scene_json), parse_outcome(v.caption)
        others = [o.name for o in scene.objects if o.name != goal.agent]
        final = judge.perception.detect(v.frames[-1:])[0]
        positions = {d.name: d.cell for d in final}
        wrong = [g for g in candidate_goals(goal.agent, others)
                 if positions[goal.agent] not in (g.cells(positions, scene.grid) or ())]
        wrong_tasks.append(wrong[0].text())
    verdicts = judge.judge_batch([v.frames for v in items], wrong_tasks)
    assert sum(v.task for v in verdicts) == 0


def test_both_register_acts_out_to_the_rendered_path(cfg):
    for v in islice(iter_corpus(cfg.world, 5, registers={"both": 1.0}), 30):
        if not v.agent:
            continue
        scene = Scene.from_json(v.scene_json)
        agent, path = simulate_caption(scene, v.caption, cfg.world.frames)
        assert agent == v.agent
        goal = parse_outcome(v.caption)
        assert path[-1] in goal.cells(scene.moved(agent, path[-1]).positions(), scene.grid)
        assert write_caption(scene, agent, path, where=state_phrase(goal)) == v.caption


def _task_patterns() -> list[re.Pattern]:
    """Every task phrasing, unanchored, with its slots as wildcards."""
    out = []
    for fam in FAMILIES.values():
        for template in fam.phrasings:
            pattern = re.escape(template)
            for slot in fam.slots:
                pattern = pattern.replace(re.escape("{" + slot + "}"), r"[a-z\- ]+")
            out.append(re.compile(rf"(^|[ ,.]){pattern}($|[ ,.])"))
    return out


def test_short_tasks_never_appear_in_the_corpus(cfg):
    patterns = _task_patterns()
    captions = [v.caption for v in islice(iter_corpus(cfg.world, 11, registers=MIXED, relational_weight=2.0), 1500)]
    for caption in captions:
        with pytest.raises(TaskParseError):
            parse_task(caption)
        hits = [p.pattern for p in patterns if p.search(caption.lower())]
        assert not hits, (caption, hits)
    # the check can fail: a short task's own phrasing is found
    assert any(p.search("the red circle will go to the centre now") for p in patterns)


def test_registers_come_in_their_shares_and_relational_goals_in_theirs(cfg):
    items = list(islice(iter_corpus(cfg.world, 2, registers={"motion": 2.0, "outcome": 1.0, "both": 1.0},
                                    relational_weight=3.0), 800))
    moving = [v for v in items if v.agent]
    share = np.mean([v.register == "motion" for v in moving])
    assert 0.42 <= share <= 0.58
    goals = [parse_outcome(v.caption) for v in moving if v.register != "motion"]
    relational = np.mean([FAMILIES[g.family].relational for g in goals])
    assert relational > 0.55  # 3 relational families at weight 3 against 4 at weight 1: 9/13 of draws


def test_default_corpus_is_the_motion_register_unchanged(cfg):
    a = [v.caption for v in islice(iter_corpus(cfg.world, 4), 50)]
    b = [v.caption for v in islice(iter_corpus(cfg.world, 4, registers={"motion": 1.0}), 50)]
    assert a == b and all(parse_outcome(c) is None or "stops" in c for c in a)
