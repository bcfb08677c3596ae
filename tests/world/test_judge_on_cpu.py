import numpy as np
import pytest

from wmsd_ray.errors import InputError
from wmsd_ray.world.corrupt import FAULTS, degrade, inject_fault
from wmsd_ray.world.scene import Scene, WorldObject, path_states

SCENE = Scene(4, (WorldObject("red", "circle", 0, 0), WorldObject("blue", "square", 1, 3), WorldObject("green", "circle", 3, 3)))
PATH = [(0, 0), (1, 0), (2, 0), (3, 0)]  # red circle to the bottom-left corner
TASK = "[red circle]: go to the bottom-left corner"


@pytest.fixture
def video(world, renderer):
    return renderer.render_path(SCENE, "red circle", PATH)


def test_solution_video_passes_all_axes(judge, video):
    v = judge.judge(video, TASK)
    assert (v.task, v.agent, v.consistency, v.error) == (True, True, True, "")
    assert v.task_reward > 3.0


def test_wrong_goal_fails_task_only(judge, video):
    v = judge.judge(video, "[red circle]: go to the top-right corner")
    assert (v.task, v.agent, v.consistency) == (False, True, True)
    assert v.task_reward < -1.0


def test_reward_grows_as_the_agent_gets_closer(judge, renderer):
    rewards = []
    for stop in range(1, len(PATH) + 1):
        frames = renderer.render_path(SCENE, "red circle", PATH[:stop])
        rewards.append(judge.judge(frames, TASK).task_reward)
    assert rewards == sorted(rewards) and rewards[0] < rewards[-1]


def test_wrong_agent_moving_fails_agent_axis(judge, renderer):
    frames = renderer.render_path(SCENE, "green circle", [(3, 3), (3, 2), (3, 1), (3, 0)])
    v = judge.judge(frames, TASK)
    assert not v.agent and not v.task and v.consistency


def test_still_video_fails_agent_and_task(judge, renderer):
    frames = renderer.render_path(SCENE, "red circle", [(0, 0)])
    v = judge.judge(frames, TASK)
    assert (v.task, v.agent, v.consistency) == (False, False, True)


@pytest.mark.parametrize("kind", FAULTS)
def test_every_fault_breaks_consistency(judge, renderer, world, kind):
    rng = np.random.default_rng(0)
    states = path_states(SCENE, "red circle", PATH, world.frames)
    for _ in range(20):
        bad = renderer.render_states(inject_fault(states, kind, world.colors, rng))
        assert not judge.judge(bad, TASK).consistency
        assert not judge.judge(degrade(bad, 0.1, 1.0, rng), TASK).consistency


def test_degraded_solution_still_passes(judge, video):
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = judge.judge(degrade(video, 0.1, 1.0, rng), TASK)
        assert v.task and v.agent and v.consistency


def test_unreadable_task_is_an_error_verdict_not_a_crash(judge, video):
    v = judge.judge(video, "[red circle]: do a backflip")
    assert not v.ok and "unreadable task" in v.error
    assert not (v.task or v.agent or v.consistency)


def test_wrong_video_shape_is_a_clear_error(judge):
    with pytest.raises(InputError, match="judge expects a video of shape"):
        judge.judge(np.zeros((9, 64, 64, 3), np.uint8), TASK)


def test_batch_equals_single(judge, video, renderer):
    other = renderer.render_path(SCENE, "red circle", [(0, 0), (0, 1)])
    tasks = [TASK, "[red circle]: touch the left edge", "[red circle]: go to the top-right corner"]
    batch = judge.judge_batch([video, video, other], tasks)
    assert batch == [judge.judge(v, t) for v, t in zip([video, video, other], tasks)]


def _fade_agent_at_the_end(video: np.ndarray, cell, amount: float) -> np.ndarray:
    """The agent's last-frame cell blended towards the background: a smear perception can barely name."""
    out = video.astype(np.float32).copy()
    r, c = cell
    tile = out[-1, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8]
    tile[:] = tile * (1 - amount) + np.array([0.08, 0.08, 0.10]) * 255 * amount
    return out.round().astype(np.uint8)


def test_a_barely_seen_agent_does_not_pass_task(judge, video, world):
    from dataclasses import replace

    from wmsd_ray.world.judge import WorldJudge

    faint = _fade_agent_at_the_end(video, PATH[-1], 0.67)
    conf = judge.perception.detect(faint[-1])[0]
    agent = [d for d in conf if d.name == "red circle"]
    assert agent and agent[0].cell == PATH[-1] and agent[0].confidence < judge.cfg.min_confidence
    assert not judge.judge(faint, TASK).task  # seen at the goal, but too faintly to count
    lenient = WorldJudge(world, replace(judge.cfg, min_confidence=0.0))
    assert lenient.judge(faint, TASK).task
    assert judge.judge(_fade_agent_at_the_end(video, PATH[-1], 0.1), TASK).task  # a little fading is fine
