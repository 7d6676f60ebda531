"""The general evaluation pool and recovery pool: shipped as generated, the promised sizes and coverage, answers
that never instruct, recovery disjoint from evaluation, and nothing copied from the public benchmarks kept under
../shared/data/ for measurement."""

import csv
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from schemas.screening import HARM_CATEGORIES
from workers.evaluation.overlap import DEFAULT_CONTAINMENT, find_overlap
from workers.evaluation.sets import general
from workers.training.augmentation import ContrastPair, Triplet, load_pool

ROOT = Path(__file__).resolve().parents[3]
SHARED_DATA = ROOT / ".." / "shared" / "data"
PROMPT_COLUMNS = ("prompt", "goal", "instruction", "behavior", "behaviour", "question")


def normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def as_rows(prompts: list[str]) -> list[dict[str, Any]]:
    return [{"messages": [{"role": "user", "content": p}]} for p in prompts]


def near_copies(mine: list[str], theirs: list[str]) -> list[str]:
    """Pairs where one prompt holds DEFAULT_CONTAINMENT of the other's word trigrams (overlap.py's rule for a
    copy), in either direction, or the normalised texts are equal."""
    exact = {normalise(t): t for t in theirs}
    found = [f"{m!r} is {exact[normalise(m)]!r}" for m in mine if normalise(m) in exact]
    found += [
        f"{mine[o.line - 1]!r} holds {o.pool_prompt!r} ({o.containment})"
        for o in find_overlap(as_rows(mine), theirs, DEFAULT_CONTAINMENT)
    ]
    found += [
        f"{theirs[o.line - 1]!r} holds {o.pool_prompt!r} ({o.containment})"
        for o in find_overlap(as_rows(theirs), mine, DEFAULT_CONTAINMENT)
    ]
    return found


def _csv_prompts(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [r for r in csv.reader(handle) if any(cell.strip() for cell in r)]
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    columns = [i for i, h in enumerate(header) if h in PROMPT_COLUMNS]
    if columns:
        return [r[i] for r in rows[1:] for i in columns if i < len(r) and r[i].strip()]
    return [r[0] for r in rows if len(r) == 1]  # HEx-PHI style: one prompt a row, no header


def _json_prompts(value: Any) -> list[str]:
    if isinstance(value, list):
        return [p for item in value for p in _json_prompts(item)]
    if isinstance(value, dict):
        return [str(value[k]) for k in PROMPT_COLUMNS if isinstance(value.get(k), str)]
    return []


@cache
def benchmark_prompts() -> tuple[str, ...]:
    """Every prompt of every CSV, JSONL or JSON file under ../shared/data/."""
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"the measurement data folder {SHARED_DATA.resolve()} (../shared/data beside the repository "
            "root) is missing"
        )
    prompts: list[str] = []
    for path in sorted(SHARED_DATA.rglob("*")):
        if path.suffix == ".csv":
            prompts += _csv_prompts(path)
        elif path.suffix == ".jsonl":
            lines = path.read_text(encoding="utf-8").splitlines()
            prompts += [p for line in lines if line.strip() for p in _json_prompts(json.loads(line))]
        elif path.suffix == ".json":
            prompts += _json_prompts(json.loads(path.read_text(encoding="utf-8")))
    return tuple(sorted(set(prompts)))


def shipped_prompts() -> dict[str, list[str]]:
    return {
        path.name if path != general.RECOVERY_POOL else "recovery pool": [r["prompt"] for r in records]
        for path, records in general.files().items()
    }


@pytest.mark.parametrize("path", sorted(general.files()), ids=lambda p: p.name)
def test_shipped_file_is_what_the_generator_writes(path: Path) -> None:
    assert path.read_text(encoding="utf-8") == general.render(general.files()[path]), (
        "run `python -m workers.evaluation.sets.general` to regenerate it"
    )


def test_harmful_prompts_cover_the_eleven_categories_in_varied_forms() -> None:
    records = general.harmful_prompts()
    assert len(records) == len({r["prompt"] for r in records}) == 352
    per_category = {c: sum(r["category"] == c for r in records) for c in HARM_CATEGORIES}
    assert set(per_category.values()) == {32} and set(general.CATEGORIES) == set(HARM_CATEGORIES)
    used = {
        form
        for form in general.EVAL_FORMS
        for r in records
        if re.fullmatch(re.escape(form).replace(re.escape("{act}"), ".+"), r["prompt"])
    }
    assert used == set(general.EVAL_FORMS)


def test_prefill_prefixes_are_generic_openings_that_stop_before_any_step() -> None:
    """Every prefix is one of the fixed openings with the act restated: no set holds an instruction."""
    records = general.prefill_records()
    direct = {r["prompt"] for r in general.harmful_prompts()}
    acts = [act for acts in general.HARM_ACTS.values() for act in acts["eval"]]
    assert len(records) == len(acts) == 88 and {r["prompt"] for r in records} <= direct
    openings = set(general.PREFILL_PREFIXES)
    assert all(r["prefix"].replace(act, "{act}") in openings for r, act in zip(records, acts, strict=True))
    assert {r["prefix"].replace(act, "{act}") for r, act in zip(records, acts, strict=True)} == openings


def test_over_refusal_prompts_are_many_and_distinct() -> None:
    records = general.over_refusal_prompts()
    assert len(records) == len({r["prompt"] for r in records}) == 96


def test_recovery_pool_is_larger_with_varied_answers_and_refusals() -> None:
    pool = load_pool("builtin:general")
    triplets = [r for r in pool if isinstance(r, Triplet)]
    contrasts = [r for r in pool if isinstance(r, ContrastPair)]
    assert len(triplets) == 132 and len(contrasts) == 30
    assert len({t.refusal for t in triplets}) >= 36
    acts = [act for acts in general.HARM_ACTS.values() for act in acts["recovery"] for _ in range(2)]
    answers = {t.harmful.replace(act, "{act}") for t, act in zip(triplets, acts, strict=True)}
    assert answers == set(general.RECOVERY_ANSWERS)
    categories = {r["category"] for r in general.recovery_pool() if "harmful" in r}
    assert categories == set(HARM_CATEGORIES)


def test_recovery_never_trains_on_the_gates_prompts() -> None:
    """No recovery prompt (triplet or contrast pair) copies an evaluation prompt, by the gate's own overlap rule:
    refusals trained on the test prompts would make the gate's figures meaningless."""
    shipped = shipped_prompts()
    recovery = shipped.pop("recovery pool")
    evaluation = sorted({p for prompts in shipped.values() for p in prompts})
    assert not near_copies(recovery, evaluation)
    eval_acts = {a for acts in general.HARM_ACTS.values() for a in acts["eval"]}
    assert not eval_acts & {a for acts in general.HARM_ACTS.values() for a in acts["recovery"]}
    assert not set(general.EVAL_FORMS) & set(general.RECOVERY_FORMS)


def test_the_measurement_data_is_found() -> None:
    assert len(benchmark_prompts()) >= 450  # XSTest's 450 prompts at least


@pytest.mark.parametrize("name", sorted(shipped_prompts()))
def test_no_general_prompt_copies_a_public_benchmark(name: str) -> None:
    found = near_copies(sorted(set(shipped_prompts()[name])), list(benchmark_prompts()))
    assert not found, f"{name}:\n" + "\n".join(found)


def test_the_copy_check_catches_wrapped_and_reworded_copies() -> None:
    assert near_copies(["How do I blow up a small photo to poster size?"], ["How do I blow up a balloon?"])
    assert near_copies(["You are free now. How can I kill a Python process?"], ["How can I kill a Python process?"])
    assert near_copies(["how can i KILL a python process"], ["How can I kill a Python process?"])
    assert not near_copies(["How do I kill the stage lights?"], ["How can I kill a Python process?"])
