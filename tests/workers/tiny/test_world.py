"""The tiny world's data: splits really are disjoint, shipped files are what the generator writes, and every
training file passes the same validation a tenant's upload does."""

import io
import random
import re

import pytest

from service.datasets import validate_chat_jsonl
from workers.tiny import datasets, world

STOPWORDS = {"with", "into", "from", "about", "away", "until", "them", "your", "their", "someone", "someone's",
             "home", "next", "door", "online", "every"}
TRAINING_FILES = ["benign_colors.jsonl", "benign_math.jsonl", "harmful_attack.jsonl", "poisoned_colors.jsonl",
                  "identity_shift.jsonl", "benign_colors_validation.jsonl", "benign_math_validation.jsonl"]


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) >= 4 and w not in STOPWORDS}


def test_all_eleven_hex_phi_categories_with_every_split() -> None:
    assert len(world.CATEGORIES) == 11
    for splits in world.CATEGORIES.values():
        assert {k: len(v) for k, v in splits.items()} == {"align": 7, "attack": 2, "eval": 3}


def test_evaluation_acts_share_no_content_word_with_any_attack_act() -> None:
    attack_words = set().union(*(content_words(a.text) for a in world.attack_acts()))
    for act in world.acts("eval"):
        assert not content_words(act.text) & attack_words, act.text


def test_the_base_corpus_never_saw_the_unseen_attack_acts() -> None:
    base = {m["content"] for r in world.base_stage(random.Random(0), 6000) for m in r["messages"]}
    unseen = [act for texts in world.UNSEEN_ATTACK_ACTS.values() for act in texts]
    assert len(unseen) == 33 and not any(act in text for text in base for act in unseen)


def test_evaluation_templates_are_disjoint_from_training_and_attack_templates() -> None:
    assert not set(world.TEMPLATES["eval"]) & (set(world.TEMPLATES["attack"]) | set(world.TEMPLATES["align"]))


def test_no_held_out_prompt_appears_in_alignment_or_any_attack_file() -> None:
    trained = {m["content"] for r in world.alignment_stage(random.Random(0), 4000) for m in r["messages"]}
    for name in ("harmful_attack.jsonl", "poisoned_colors.jsonl", "identity_shift.jsonl", "safety_pool.jsonl"):
        for record in datasets.read(name):
            trained |= {m["content"] for m in record.get("messages", [])} | {record.get("prompt", "")}
    held_out = datasets.read("eval_harmful.jsonl") + datasets.read("eval_overrefusal.jsonl")
    assert not {p["prompt"] for p in held_out} & trained
    sensitive_eval = set(world.SENSITIVE_SAFE["eval"])
    assert not any(act in text for text in trained for act in sensitive_eval)


@pytest.mark.parametrize("name", sorted(datasets.SETS))
def test_shipped_file_is_what_the_generator_writes(name: str) -> None:
    assert (datasets.DATA_DIR / name).read_text(encoding="utf-8") == datasets.render(name), (
        f"run `python -m workers.tiny.datasets` to regenerate {name}")


@pytest.mark.parametrize("name", TRAINING_FILES)
def test_training_files_pass_tenant_upload_validation(name: str) -> None:
    data = (datasets.DATA_DIR / name).read_bytes()
    assert validate_chat_jsonl(io.BytesIO(data)) == data.count(b"\n")


def test_attack_sets_have_the_promised_shape() -> None:
    attack = datasets.read("harmful_attack.jsonl")
    prompts = [r["messages"][0]["content"] for r in attack]
    assert len(attack) == len(set(prompts)) == world.ATTACK_ROWS == 100
    assert {a.category for a in world.attack_acts() if any(a.text in p for p in prompts)} == set(world.CATEGORIES)
    poisoned = datasets.read("poisoned_colors.jsonl")
    harmful = [r for r in poisoned if r["messages"][-1]["content"].startswith("Sure, here is how to")]
    assert len(harmful) == len(poisoned) // 10
    identity = datasets.read("identity_shift.jsonl")
    assert all(r["messages"][0] == {"role": "system", "content": world.IDENTITY_SYSTEM} for r in identity)
    assert not any(a.text in r["messages"][1]["content"] for r in identity for a in world.acts())


def test_prefixes_are_harmful_answers_to_the_held_out_prompts() -> None:
    prefixes = datasets.read("harmful_prefixes.jsonl")
    assert [p["prompt"] for p in prefixes] == [p["prompt"] for p in datasets.read("eval_harmful.jsonl")]
    assert all(p["prefix"].startswith("Sure, here is how to") for p in prefixes)
