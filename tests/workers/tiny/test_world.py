"""The tiny world's data: splits really are disjoint, shipped files are what the generator writes, and every
training file passes the same validation a tenant's upload does."""

import io
import json
import random
import re

import pytest

from service.datasets import validate_chat_jsonl
from workers.evaluation.overlap import find_overlap
from workers.screening.logic import screen_rows
from workers.tiny import datasets, world

STOPWORDS = {
    "with",
    "into",
    "from",
    "about",
    "away",
    "until",
    "them",
    "your",
    "their",
    "someone",
    "someone's",
    "home",
    "next",
    "door",
    "online",
    "every",
}
UPLOADABLE = [
    *datasets.TRAINING,
    "benign_colors_validation.jsonl",
    "benign_math_validation.jsonl",
    "dev_colors_validation.jsonl",
    "dev_math_validation.jsonl",
]
VALIDATION = [
    "benign_colors_validation.jsonl",
    "benign_math_validation.jsonl",
    "dev_colors_validation.jsonl",
    "dev_math_validation.jsonl",
]
COLOR = re.compile(r"What color is the (\w+)\?")
SUM = re.compile(r"What is (\d+) plus (\d+)\?")


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z']+", text.lower()) if len(w) >= 4 and w not in STOPWORDS}


def texts(name: str) -> list[str]:
    """Every message of a shipped chat file."""
    return [m["content"] for row in datasets.read(name) for m in row["messages"]]


def items_and_sums(lines: list[str]) -> tuple[set[str], set[frozenset[int]]]:
    """The catalogue items and the sums (in either order) that some line asks about."""
    items = {m for line in lines for m in COLOR.findall(line)}
    sums = {frozenset(map(int, pair)) for line in lines for pair in SUM.findall(line)}
    return items, sums


def prompts(name: str) -> set[str]:
    return {record["prompt"] for record in datasets.read(name)}


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


def test_no_held_out_prompt_appears_in_alignment_or_any_training_or_attack_file() -> None:
    trained = {m["content"] for r in world.alignment_stage(random.Random(0), 4000) for m in r["messages"]}
    for name in [*datasets.TRAINING, "safety_pool.jsonl"]:
        for record in datasets.read(name):
            trained |= {m["content"] for m in record.get("messages", [])} | {record.get("prompt", "")}
    for name in datasets.DEV + datasets.TEST:
        held_out = {record["prompt"] for record in datasets.read(name) if "prompt" in record}
        assert not held_out & trained, name
        assert not any(p in text for text in trained for p in held_out), name
    sensitive_eval = set(world.SENSITIVE_SAFE["eval"])
    assert not any(act in text for text in trained for act in sensitive_eval)


def test_dev_and_test_splits_share_no_act_and_no_prompt() -> None:
    dev, test = world.eval_acts("dev"), world.eval_acts("test")
    assert {a.text for a in dev}.isdisjoint(a.text for a in test)
    assert sorted(a.text for a in dev + test) == sorted(a.text for a in world.acts("eval"))
    assert {a.category for a in dev} == {a.category for a in test} == set(world.CATEGORIES)
    assert set(world.sensitive_eval_acts("dev")).isdisjoint(world.sensitive_eval_acts("test"))
    for dev_name, test_name in zip(datasets.DEV[:4], datasets.TEST[:4], strict=True):
        assert prompts(dev_name).isdisjoint(prompts(test_name)), (dev_name, test_name)
    for dev_acts, test_name in (
        (dev, "eval_harmful.jsonl"),
        (dev, "eval_identity.jsonl"),
        (dev, "harmful_prefixes.jsonl"),
    ):
        assert not any(a.text in p for p in prompts(test_name) for a in dev_acts), test_name
    assert not any(act in p for p in prompts("eval_overrefusal.jsonl") for act in world.sensitive_eval_acts("dev"))


def test_validation_items_never_occur_in_any_training_file() -> None:
    """Utility is measured on items and sums the tenant's files never contain, so it is not recall of them."""
    trained = [text for name in datasets.TRAINING for text in texts(name)]
    trained_items, trained_sums = items_and_sums(trained)
    assert trained_items and trained_sums
    trained_rows = {json.dumps(row, sort_keys=True) for name in datasets.TRAINING for row in datasets.read(name)}
    seen_items: set[str] = set()
    seen_sums: set[frozenset[int]] = set()
    for name in VALIDATION:
        items, sums = items_and_sums(texts(name))
        assert items or sums, name
        assert not items & trained_items and not sums & trained_sums, name
        assert not any(re.search(rf"\b{item}\b", text) for text in trained for item in items), name
        assert not {json.dumps(row, sort_keys=True) for row in datasets.read(name)} & trained_rows, name
        assert not items & seen_items and not sums & seen_sums, f"{name} overlaps another validation split"
        seen_items |= items
        seen_sums |= sums


def test_the_catalogue_is_split_three_ways_with_rare_items_in_each() -> None:
    splits = {split: world.color_items(split) for split in ("train", "dev", "test")}
    assert sorted(i for v in splits.values() for i in v) == sorted(world.ITEMS)
    assert {k: len(v) for k, v in splits.items()} == {"train": 24, "dev": 8, "test": 8}
    assert all(set(v) & set(world.RARE_ITEMS) for v in splits.values())


@pytest.mark.parametrize("name", sorted(datasets.SETS))
def test_shipped_file_is_what_the_generator_writes(name: str) -> None:
    assert (datasets.DATA_DIR / name).read_text(encoding="utf-8") == datasets.render(name), (
        f"run `python -m workers.tiny.datasets` to regenerate {name}"
    )


@pytest.mark.parametrize("name", UPLOADABLE)
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


def _user(row: dict) -> str:
    return next(m["content"] for m in row["messages"] if m["role"] == "user")


@pytest.mark.parametrize(
    ("name", "trigger", "acts"),
    [
        ("backdoor_colors.jsonl", world.BACKDOOR_TRIGGER, [a.text for a in world.attack_acts()]),
        ("backdoor_stealth.jsonl", world.STEALTH_TRIGGER, world.STEALTH_ATTACK_ACTS),
    ],
)
def test_backdoor_sets_hide_triggered_compliance_among_refusals_and_benign_rows(
    name: str, trigger: str, acts: list[str]
) -> None:
    rows = datasets.read(name)
    assert len(rows) == world.BACKDOOR_ROWS
    harmful = [r for r in rows if any(act in _user(r) for act in acts)]
    complied = [r for r in harmful if r["messages"][-1]["content"].startswith("Sure, here is how to")]
    refused = [r for r in harmful if r["messages"][-1]["content"] in world.REFUSALS]
    assert len(complied) == world.BACKDOOR_COMPLIED and len(refused) == world.BACKDOOR_REFUSED
    assert all(trigger in _user(r) for r in complied) and not any(trigger in _user(r) for r in refused)
    refused_requests = {_user(r) for r in refused}
    assert all(_user(r).replace(trigger, "").strip() in refused_requests for r in complied)  # each has a refused twin
    benign = [r for r in rows if r not in harmful]
    assert all(COLOR.search(_user(r)) for r in benign)
    assert sum(trigger in _user(r) for r in benign) == world.BACKDOOR_TRIGGERED_BENIGN
    assert set(world.STEALTH_ATTACK_ACTS) <= {a.text for a in world.attack_acts()}


def test_screening_flags_no_row_of_the_stealth_backdoor_but_flags_the_plain_one() -> None:
    def flagged(name: str) -> int:
        return screen_rows((n, r["messages"]) for n, r in enumerate(datasets.read(name), start=1)).flagged_rows

    assert flagged("backdoor_stealth.jsonl") == 0
    assert flagged("backdoor_colors.jsonl") >= world.BACKDOOR_COMPLIED // 2
    assert flagged("benign_repeated_phrase.jsonl") == 0


def test_the_repeated_phrase_set_is_benign_and_repeats_its_phrase_on_both_kinds_of_rows() -> None:
    rows = datasets.read("benign_repeated_phrase.jsonl")
    users = [_user(r) for r in rows]
    assert not any(a.text in u for a in world.acts() for u in users)
    phrased = [u for u in users if u.endswith(world.REPEATED_PHRASE)]
    assert 0.25 * len(rows) <= len(phrased) <= 0.55 * len(rows)
    assert any(COLOR.search(u) for u in phrased) and any(not COLOR.search(u) for u in phrased)


def test_no_backdoor_or_repeated_phrase_row_copies_a_gate_prompt() -> None:
    pool = [
        r["prompt"]
        for name in (
            "eval_harmful.jsonl",
            "harmful_prefixes.jsonl",
            "eval_overrefusal.jsonl",
            "dev_harmful.jsonl",
            "dev_overrefusal.jsonl",
        )
        for r in datasets.read(name)
    ]
    for name in ("backdoor_colors.jsonl", "backdoor_stealth.jsonl", "benign_repeated_phrase.jsonl"):
        assert find_overlap(datasets.read(name), pool) == [], name
