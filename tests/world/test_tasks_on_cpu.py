import pytest

from wmsd_ray.world.tasks import FAMILIES, FAMILY_NAMES, Goal, TaskParseError, candidate_goals, is_held_out, parse_task

OBJECTS = ["red circle", "blue square", "green circle"]


def test_at_least_six_families_with_several_phrasings():
    assert len(FAMILIES) >= 6
    assert all(len(f.phrasings) >= 3 for f in FAMILIES.values())


def test_every_phrasing_of_every_goal_parses_back_uniquely():
    n = 0
    for agent in OBJECTS:
        for goal in candidate_goals(agent, [o for o in OBJECTS if o != agent]):
            for i in range(len(FAMILIES[goal.family].phrasings)):
                g = Goal(goal.agent, goal.family, goal.params, i)
                assert parse_task(g.text()) == g
                n += 1
    assert n > 300


def test_parse_tolerates_case_spacing_and_full_stop():
    g = parse_task("  [Red Circle] :  Go to the TOP-LEFT corner. ")
    assert (g.agent, g.family, g.param_dict) == ("red circle", "corner", {"corner": "top-left"})


@pytest.mark.parametrize("text", [
    "go to the top-left corner",
    "[red circle] go to the top-left corner",
    "[pink circle]: go to the top-left corner",
    "[red circle]: go to the middle-left corner",
    "[red circle]: fly to the moon",
    "[red circle]: go directly above the red circle",
    "",
])
def test_bad_tasks_raise(text):
    with pytest.raises(TaskParseError):
        parse_task(text)


def test_goal_cells():
    pos = {"red circle": (0, 0), "blue square": (1, 3), "green circle": (3, 3)}
    cells = lambda text: parse_task(text).cells(pos, 4)  # noqa: E731
    assert cells("[red circle]: go to the bottom-left corner") == {(3, 0)}
    assert cells("[red circle]: touch the right edge") == {(r, 3) for r in range(4)}
    assert cells("[red circle]: go to the centre") == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert cells("[red circle]: go directly below the blue square") == {(2, 3)}
    assert cells("[red circle]: go directly right of the blue square") == frozenset()  # off the grid
    assert cells("[red circle]: get into the same column as the blue square") == {(0, 3), (2, 3), (3, 3)}
    # farthest free cell from the green circle at (3,3) is (0,0), where the agent already is
    assert cells("[red circle]: get as far as possible from the green circle") == {(0, 0)}
    assert cells("[red circle]: go to the right half of the board") == {(r, c) for r in range(4) for c in (2, 3)}
    assert parse_task("[red circle]: move far away from the yellow square").cells(pos, 4) is None


def test_relational_families_are_those_whose_goal_follows_another_object():
    before = {"red circle": (0, 0), "blue square": (1, 1), "green circle": (3, 3)}
    after = dict(before, **{"blue square": (2, 2)})  # only a non-agent object moves
    for goal in candidate_goals("red circle", ["blue square", "green circle"]):
        moved = goal.cells(before, 4) != goal.cells(after, 4)
        if goal.param_dict.get("target") == "blue square":
            assert FAMILIES[goal.family].relational and moved, goal
        else:
            assert not moved, goal
    assert {f for f, fam in FAMILIES.items() if fam.relational} == {"next_to", "align", "far_from"}


def test_held_out_marks_last_phrasing_and_whole_family():
    assert is_held_out("half", 0, ["half"], 1)
    assert is_held_out("corner", 3, ["half"], 1)
    assert not is_held_out("corner", 0, ["half"], 1)
    assert "half" in FAMILY_NAMES
