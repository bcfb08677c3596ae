import numpy as np

from wmsd_ray.config import ProposerConfig
from wmsd_ray.world.captions import simulate_caption
from wmsd_ray.world.proposer import WorldProposer
from wmsd_ray.world.scene import path_states, random_scene
from wmsd_ray.world.tasks import parse_task


def test_proposals_on_unseen_scenes_are_feasible_and_solve_their_task(world, renderer, judge):
    rng = np.random.default_rng(99)
    proposer = WorldProposer(world, ProposerConfig())
    pairs = good = 0
    families = set()
    for i in range(100):
        scene = random_scene(world, rng)
        specs = proposer.propose(renderer.render(scene), f"s{i}", rng).specs
        assert len(specs) == 8
        assert len({(s.agent, s.task) for s in specs}) == 8  # no duplicates
        for spec in specs:
            pairs += 1
            families.add(spec.family)
            assert not spec.held_out  # training proposals avoid held-out phrasings/families
            goal = parse_task(spec.task)
            agent, path = simulate_caption(scene, spec.solution, world.frames)  # collision-free, fits T
            assert agent == spec.agent == goal.agent
            assert scene.get(agent).cell not in goal.cells(scene.positions(), world.grid)  # not already done
            v = judge.judge(renderer.render_states(path_states(scene, agent, path, world.frames)), spec.task)
            good += v.accepted
    assert good / pairs >= 0.95
    assert len(families) >= 6


def test_proposer_rejects_satisfied_and_infeasible_tasks(world, renderer):
    rng = np.random.default_rng(1)
    proposal = WorldProposer(world).propose(renderer.render(random_scene(world, rng)), "x", rng)
    assert proposal.rejected["already_satisfied"] > 0
    assert sum(proposal.rejected.values()) > 0


def test_proposer_skips_an_image_it_cannot_read(world):
    blank = np.zeros((world.resolution, world.resolution, 3), np.uint8)
    proposal = WorldProposer(world).propose(blank, "blank", np.random.default_rng(0))
    assert proposal.specs == [] and proposal.rejected["unreadable_scene"] == 1


def test_held_out_phrasings_only_when_asked(world, renderer):
    rng = np.random.default_rng(2)
    proposer = WorldProposer(world, ProposerConfig(pairs_per_image=8, include_held_out=True))
    specs = [s for i in range(30) for s in proposer.propose(renderer.render(random_scene(world, rng)), f"h{i}", rng).specs]
    assert any(s.held_out for s in specs) and any(not s.held_out for s in specs)


def test_verify_spec_names_what_is_wrong(world, renderer, judge):
    from wmsd_ray.records import TaskSpec
    from wmsd_ray.world.scene import Scene, WorldObject
    from wmsd_ray.world.verify import verify_spec

    scene = Scene(4, (WorldObject("red", "circle", 0, 0), WorldObject("blue", "square", 0, 2),
                      WorldObject("green", "circle", 3, 3)))
    image = renderer.render(scene)

    def spec(task, solution, agent="red circle"):
        return TaskSpec("t", "s", image, agent, task, solution, "corner", 0, False)

    down3 = "The red circle slides three cells down, and stops in the bottom-left corner. Nothing else moves."
    assert verify_spec(scene, spec("[red circle]: go to the bottom-left corner", down3), world, renderer, judge) == ""
    right3 = "The red circle slides three cells right, and stops. Nothing else moves."  # through the blue square
    check = lambda s: verify_spec(scene, s, world, renderer, judge)  # noqa: E731
    assert check(spec("[red circle]: go to the top-right corner", right3)) == "solution_not_actable"
    assert verify_spec(scene, spec("[red circle]: touch the left edge", down3), world, renderer, judge) == "already_satisfied"
    assert check(spec("[red circle]: go to the top-right corner", down3)) == "solution_judged_wrong"
    assert verify_spec(scene, spec("[red circle]: go to the moon", down3), world, renderer, judge) == "task_unreadable"
    assert check(spec("[green circle]: go to the bottom-left corner", down3, "green circle")) == "wrong_agent"
