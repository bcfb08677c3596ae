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


# DreamGen Bench's prompts, word for word as upstream's dreamgenbench scripts send them
# (NVIDIA/GR00T-Dreams: eval_sr_qwen_whole.py for instruction following, eval_qwen_pa.py for
# physical alignment); the zero-shot variant is upstream's too.
DREAMGEN_IF = ("The video shows a robot arm completing a specific task. "
               "Does the video follow the instruction to finish the task: '{instruction}'? If it fails to follow the "
               "instruction (e.g. miss the object, action or do some other actions), please answer 0. "
               "Answer 0 for No or 1 for Yes. Reply only 0 or 1.")
DREAMGEN_IF_ZERO_SHOT = ("You are evaluating if a robot arm correctly follows this instruction: '{instruction}'\n\n"
                         "CRITICAL EVALUATION PROCESS:\n"
                         "1. FIRST CHECK: If you see HUMAN HANDS instead of robot arms, IMMEDIATELY ANSWER 0.\n"
                         "2. SECOND CHECK: Only if robot arms confirmed, verify if the instruction is followed exactly.\n\n"
                         "Remember: human hands = automatic failure (0). Be extremely strict in your judgment.\n"
                         "Reply ONLY with a single digit: 0 for failure or 1 for success.")
DREAMGEN_PA = ("The video shows a robot arm completing a specific task. "
               "Does the video show good physics dynamics and showcase a good alignment with the physical world? "
               "Please be a strict judge. If it breaks the laws of physics, please answer 0. "
               "Answer 0 for No or 1 for Yes. Reply only 0 or 1.")
