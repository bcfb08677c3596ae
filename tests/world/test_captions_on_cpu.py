import numpy as np
import pytest

from wmsd_ray.world.captions import CaptionError, parse_caption, segments_of, simulate_caption, write_caption
from wmsd_ray.world.corpus import iter_corpus, random_path
from wmsd_ray.world.scene import Scene, WorldObject, random_scene

SCENE = Scene(4, (WorldObject("red", "circle", 0, 0), WorldObject("blue", "square", 1, 3), WorldObject("green", "circle", 3, 3)))


def test_caption_reads_like_the_issue_example():
    text = write_caption(SCENE, "red circle", [(0, 0), (0, 1), (0, 2), (1, 2)])
    assert text == ("The red circle slides two cells right, then slides one cell down, and stops left of the blue square. "
                    "Nothing else moves.")


def test_landmarks_corner_edge_and_still():
    assert "in the top-right corner" in write_caption(SCENE, "red circle", [(0, 0), (0, 1), (0, 2), (0, 3)])
    assert "at the left edge" in write_caption(SCENE, "red circle", [(0, 0), (1, 0), (2, 0)])
    assert write_caption(SCENE, "red circle", [(0, 0)]) == "Nothing moves."


def test_random_captions_round_trip_through_the_simulator(world, rng):
    for _ in range(500):
        scene = random_scene(world, rng)
        agent = scene.objects[int(rng.integers(len(scene.objects)))].name
        path = random_path(scene, agent, world, rng)
        if path is None:
            continue
        assert len(segments_of(path)) <= world.max_segments
        got_agent, got_path = simulate_caption(scene, write_caption(scene, agent, path), world.frames)
        assert (got_agent, got_path) == (agent, path)


@pytest.mark.parametrize("text", [
    "The red circle slides two cells sideways, and stops. Nothing else moves.",
    "The red circle slides zero cells left, and stops. Nothing else moves.",
    "red circle go left",
    "",
])
def test_malformed_captions_are_rejected(text):
    with pytest.raises(CaptionError):
        parse_caption(text)


def test_simulator_refuses_impossible_captions():
    with pytest.raises(CaptionError, match="occupied"):
        simulate_caption(SCENE, "The red circle slides three cells right, then slides one cell down, and stops. "
                                "Nothing else moves.", 9)
    with pytest.raises(CaptionError, match="leaves the grid"):
        simulate_caption(SCENE, "The red circle slides one cell up, and stops. Nothing else moves.", 9)
    with pytest.raises(CaptionError, match="not in the scene"):
        simulate_caption(SCENE, "The yellow square slides one cell up, and stops. Nothing else moves.", 9)
    with pytest.raises(CaptionError, match="frames"):
        simulate_caption(SCENE, "The red circle slides three cells down, then slides two cells right, and stops. "
                                "Nothing else moves.", 5)


def test_corpus_is_reproducible_and_has_no_short_tasks(world):
    a = [next(s) for s in [iter_corpus(world, seed=3)] for _ in range(40)]
    b = [next(s) for s in [iter_corpus(world, seed=3)] for _ in range(40)]
    assert [x.caption for x in a] == [x.caption for x in b]
    assert all(np.array_equal(x.frames, y.frames) for x, y in zip(a, b))
    assert all("[" not in x.caption for x in a)
    assert len({x.caption for x in a}) > 30
