"""The words we send to VLM proposers and judges (one place, so backends agree)."""
from __future__ import annotations

import json

PROPOSER_SYSTEM = (
    "You write tasks for a video model that animates a still scene. Each task names one object (the agent) "
    "and asks it to reach a goal; each solution describes, step by step, the motion that achieves it."
)

PROPOSER_EXAMPLE = {
    "tasks": [{
        "agent": "red circle",
        "task": "[red circle]: go to the top-left corner",
        "solution": "The red circle slides two cells left, then slides one cell up, and stops in the top-left "
                    "corner. Nothing else moves.",
    }]
}


def proposer_prompt(n: int) -> str:
    return (
        f"Look at the image. Propose {n} different tasks, each for one object you can see, that are not already "
        "done in the image and can be done by moving only that object. Write each task as "
        "\"[agent]: instruction\" and give a detailed step-by-step solution describing the motion.\n"
        "Answer with JSON only, exactly in this form (no other keys):\n"
        + json.dumps(PROPOSER_EXAMPLE)
    )


def agent_of(task: str) -> str:
    """'[red circle]: go ...' -> 'red circle' ('' when the task is not in that form)."""
    if task.startswith("[") and "]" in task:
        return task[1:task.index("]")].strip()
    return ""


def judge_questions(task: str) -> dict[str, str]:
    """Task / Agent / Consistency questions about a video, each answerable with yes or no."""
    agent = agent_of(task) or "the named object"
    instruction = task.split(":", 1)[1].strip() if ":" in task else task
    return {
        "task": f"The video should show the {agent} doing this: {instruction}. "
                "By the last frame, is this done? Answer yes or no.",
        "agent": f"Is the {agent} the object that moves, while every other object stays where it is? "
                 "Answer yes or no.",
        "consistency": "Do all objects keep their colour and shape in every frame, with none appearing, "
                       "disappearing or jumping? Answer yes or no.",
    }


DREAMGEN_IF = ("Here is a video. Does it show the following being done: \"{instruction}\"? "
               "Answer 0 for No or 1 for Yes. Reply with 0 or 1 first.")
DREAMGEN_PA = ("Here is a video. Does everything in it move in a physically plausible way (no objects passing "
               "through each other, appearing, vanishing or changing shape)? Answer 0 for No or 1 for Yes. "
               "Reply with 0 or 1 first.")
