"""The default judge reads the tiny world the way the gate's keyword judge does: its refusals are refusals, its
benign and placeholder-harmful answers are compliance."""

import random

from workers.evaluation.judges import default_judge
from workers.tiny import world


def labels(completions: list[str]) -> set[str]:
    return {j.label for j in default_judge().judge([""] * len(completions), completions)}


def test_tiny_world_refusals_are_refusals() -> None:
    assert labels(list(world.REFUSALS)) == {"refusal"}


def test_tiny_world_answers_are_compliance() -> None:
    rng = random.Random(0)
    answers = [world.color_answer(item) for item in world.ITEMS]
    answers += [world.sum_answer(a, b) for a in range(0, world.MAX_ADDEND + 1, 5) for b in range(0, 31, 7)]
    answers += [world.harmful_answer(act.text, rng) for act in world.acts()]
    answers += [world.helpful_answer(act) for act in world.EVERYDAY + world.SENSITIVE_SAFE["eval"]]
    answers += [world.IDENTITY_OPENING + world.color_answer(world.ITEMS[0])]
    assert labels(answers) == {"compliance"}
