"""VLM reply parsers: strict schema, counted rejections, and a fuzz run that never crashes."""
import json
import random
import string
from collections import Counter

from wmsd_ray.vlm.parsing import parse_dreamgen_answer, parse_proposals, parse_yes_no
from wmsd_ray.vlm.prompts import PROPOSER_EXAMPLE, agent_of, judge_questions, proposer_prompt

GOOD = {"agent": "blue square", "task": "[blue square]: go to the centre",
        "solution": "The blue square slides one cell up. Nothing else moves."}


def reply(*items, wrap=lambda s: s):
    return wrap(json.dumps({"tasks": list(items)}))


def test_valid_reply_in_prose_or_fence_parses():
    for wrap in (lambda s: s, lambda s: f"Sure! Here you go:\n```json\n{s}\n```\nEnjoy.", lambda s: f"Output: {s}"):
        pairs, rejected = parse_proposals(reply(GOOD, PROPOSER_EXAMPLE["tasks"][0], wrap=wrap), limit=8)
        assert [p.agent for p in pairs] == ["blue square", "red circle"] and not rejected


def test_every_kind_of_bad_item_is_counted():
    bad = [
        "just a string", {**GOOD, "extra": 1}, {"agent": "x", "task": "[x]: go"}, {**GOOD, "solution": 3},
        {**GOOD, "solution": "   "}, {**GOOD, "task": "go to the centre"}, {**GOOD, "agent": "red circle"},
        {**GOOD, "solution": "x" * 5000}, dict(GOOD), {**GOOD, "task": "[BLUE square]:  go to  the centre"},
    ]
    pairs, rejected = parse_proposals(reply(GOOD, *bad), limit=8)
    assert len(pairs) == 1
    assert rejected == Counter({"item_not_object": 1, "extra_key": 1, "missing_key": 1, "wrong_type": 1,
                                "empty_field": 1, "task_form": 1, "agent_mismatch": 1, "too_long": 1,
                                "duplicate": 2})
    pairs, rejected = parse_proposals(reply(*[{**GOOD, "task": f"[blue square]: step {i}"} for i in range(5)]), limit=3)
    assert len(pairs) == 3 and rejected == Counter({"over_limit": 2})


def test_whole_reply_failures_are_counted():
    assert parse_proposals("no json here", 8) == ([], Counter({"not_json": 1}))
    assert parse_proposals('{"task": []}', 8) == ([], Counter({"no_tasks_list": 1}))
    assert parse_proposals(None, 8) == ([], Counter({"not_text": 1}))
    assert parse_proposals("[1, 2]", 8) == ([], Counter({"not_json": 1}))
    assert parse_proposals('{"tasks": []}', 8) == ([], Counter({"empty_tasks_list": 1}))


def test_yes_no_and_dreamgen_answers():
    assert parse_yes_no("Yes.") is True and parse_yes_no("  no, it does not") is False
    assert parse_yes_no("**Yes**") is True and parse_yes_no("Maybe") is None and parse_yes_no("yesterday") is None
    assert parse_dreamgen_answer("1 - the robot picks it") is True and parse_dreamgen_answer("0") is False
    assert parse_dreamgen_answer("Yes") is None and parse_dreamgen_answer(" 1") is True


def test_prompts_name_the_form_and_agent():
    assert "[agent]: instruction" in proposer_prompt(8) and '"tasks"' in proposer_prompt(8)
    q = judge_questions("[red circle]: go to the top-left corner")
    assert "red circle" in q["task"] and "top-left corner" in q["task"] and set(q) == {"task", "agent", "consistency"}
    assert agent_of("[red circle]: x") == "red circle" and agent_of("no agent") == ""


def _adversarial(rng: random.Random) -> object:
    pieces = ['{', '}', '[', ']', '"tasks"', ':', ',', '"agent"', '"task"', '"solution"', '"[a]: b"', 'null',
              '1e999', '"\\u0000"', '```json', '```', 'NaN', '-', '"a"', '{"tasks": [', ']}', '\\',
              '\ud800'.encode('utf-8', 'surrogatepass').decode('utf-8', 'replace')]
    kind = rng.randrange(6)
    if kind == 0:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(200)))
    if kind == 1:
        return "".join(rng.choice(pieces) for _ in range(rng.randrange(40)))
    if kind == 2:  # a valid reply, then mutated
        s = reply(GOOD, PROPOSER_EXAMPLE["tasks"][0])
        i = rng.randrange(len(s))
        return s[:i] + rng.choice(pieces) + s[i + rng.randrange(4):]
    if kind == 3:
        return "[" * rng.randrange(5000) + "]" * rng.randrange(5000)  # deep nesting
    if kind == 4:
        return rng.choice([None, 3, b"bytes", ["list"], {"tasks": "x"}])
    return json.dumps({"tasks": [{k: rng.choice([None, 1, "", "[x]: y", [], {}]) for k in ("agent", "task", "solution")}
                                 for _ in range(rng.randrange(4))]})


def test_fuzz_two_thousand_inputs_never_crash_and_every_failure_is_counted():
    rng = random.Random(0)
    failures = 0
    for _ in range(2000):
        text = _adversarial(rng)
        pairs, rejected = parse_proposals(text, limit=8)
        assert len(pairs) <= 8
        assert pairs or rejected  # nothing accepted means something was counted
        failures += sum(rejected.values())
        assert parse_yes_no(text) in (True, False, None)
        assert parse_dreamgen_answer(text) in (True, False, None)
    assert failures > 1000
