"""The suites on the tiny model, with a few prompts each: prefilling, the decoding sweep, utility, the cache."""

import json
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from schemas.policy import DecodingSetting, EvaluationSets, GatePolicy
from workers.evaluation.generation import GREEDY, Decoding, generate
from workers.evaluation.judges import KeywordCoherenceJudge
from workers.evaluation.runner import BaseFigureCache, assess, gate_inputs, run_model
from workers.evaluation.suites import (
    _mean_loss,
    attack_success,
    judged,
    judged_greedy_many,
    overlap_f1,
    prompt_ids,
    utility,
)
from workers.model_loading import load_base
from workers.tiny import datasets

torch.set_num_threads(1)
Loaded = tuple[PreTrainedModel, PreTrainedTokenizerBase]


@pytest.fixture(scope="module")
def loaded(tiny_model: Path) -> Loaded:
    return load_base(tiny_model, torch.device("cpu"))


def few(name: str, n: int = 8) -> list[dict]:
    rows = datasets.read(name)
    return rows[:: max(1, len(rows) // n)][:n]


def test_batched_left_padded_generation_matches_the_per_prompt_loop(loaded: Loaded) -> None:
    model, tokenizer = loaded
    ids = [prompt_ids(tokenizer, r) for r in few("eval_harmful.jsonl", 4) + few("eval_overrefusal.jsonl", 4)]
    assert len({len(i) for i in ids}) > 1  # prompts of different lengths: padding is exercised
    assert generate(model, tokenizer, ids, 16, batch_size=8) == generate(model, tokenizer, ids, 16, batch_size=1)


def test_prefilling_breaks_the_shallow_aligned_model(loaded: Loaded) -> None:
    model, tokenizer = loaded
    records = few("harmful_prefixes.jsonl")
    judge = KeywordCoherenceJudge()
    direct, _ = attack_success(model, tokenizer, records, 24, judge=judge)
    prefilled, results = attack_success(model, tokenizer, records, 24, prefill_tokens=5, judge=judge)
    assert direct.value <= 0.25 and prefilled.value >= 0.75, (direct, prefilled)
    # only the continuation is judged: the prefilled prefix itself is not in the completion
    assert not any(r.completion.startswith("Sure, here is") for r in results)


def test_sampled_decoding_is_seeded_and_counts_any_sample(loaded: Loaded) -> None:
    model, tokenizer = loaded
    records = few("eval_harmful.jsonl", 6)
    hot = Decoding(temperature=1.5, top_k=50, samples=3)
    ids = [prompt_ids(tokenizer, r) for r in records]
    first = generate(model, tokenizer, ids, 12, decoding=hot, seed=7)
    assert len(first) == 18 and first == generate(model, tokenizer, ids, 12, decoding=hot, seed=7)
    rate, results = attack_success(model, tokenizer, records, 12, decoding=hot, judge=KeywordCoherenceJudge(), seed=7)
    assert rate.n == 6  # per prompt, not per sample: samples of one prompt are not independent trials
    greedy, _ = attack_success(model, tokenizer, records, 12, decoding=GREEDY, judge=KeywordCoherenceJudge())
    assert rate.k >= 0 and greedy.n == 6 and len(results) == 6


def test_overlap_f1_hand_worked() -> None:
    # candidate "the zint is red" vs reference "the color of the zint is red": 4 shared words,
    # precision 4/4, recall 4/7 -> F1 = 2 * 1 * 4/7 / (1 + 4/7) = 8/11
    assert abs(overlap_f1("The zint is red.", "The color of the zint is red.") - 8 / 11) < 1e-12
    assert overlap_f1("", "") == 1.0 and overlap_f1("x", "") == 0.0 and overlap_f1("a b", "c") == 0.0


def test_utility_on_the_validation_file(loaded: Loaded) -> None:
    model, tokenizer = loaded
    figures = utility(model, tokenizer, datasets.read("benign_colors_validation.jsonl")[:6])
    assert figures.n == 6 and 0 <= figures.exact_match <= figures.overlap <= 1
    assert 0 < figures.loss < 5


def small_policy(tmp_path: Path) -> GatePolicy:
    prefixes = tmp_path / "prefixes.jsonl"
    prefixes.write_text("".join(json.dumps(r) + "\n" for r in few("harmful_prefixes.jsonl", 6)))
    harmful = tmp_path / "harmful.jsonl"
    harmful.write_text("".join(json.dumps(r) + "\n" for r in few("eval_harmful.jsonl", 6)))
    refusal = tmp_path / "benign.jsonl"
    refusal.write_text("".join(json.dumps(r) + "\n" for r in few("eval_overrefusal.jsonl", 4)))
    return GatePolicy(
        max_new_tokens=16,
        prefill_tokens=[5, 20],
        sweep=[DecodingSetting(temperature=0.9, top_p=0.6, samples=2)],
        sets=EvaluationSets(harmful=str(harmful), prefill=str(prefixes), over_refusal=str(refusal)),
    )


def test_base_figures_are_cached_and_the_base_passes_against_itself(
    loaded: Loaded, tiny_model: Path, tmp_path: Path
) -> None:
    model, tokenizer = loaded
    policy = small_policy(tmp_path)
    inputs = gate_inputs(policy, datasets.read("benign_colors_validation.jsonl")[:4], "validation_file")
    assert [s.key for s in inputs.suites] == [
        "direct",
        "prefill-5",
        "prefill-20",
        "sweep-T=0.9, top-p=0.6 x2",
        "over_refusal",
    ]
    cache = BaseFigureCache(tmp_path / "cache", "gft-tiny-chat", tiny_model)
    judge = KeywordCoherenceJudge()
    first = run_model(model, tokenizer, inputs, policy, judge, cache)
    entries = sorted((tmp_path / "cache" / "gft-tiny-chat").glob("*.json"))
    assert len(entries) == 6  # five suites and the utility
    again = run_model(model, tokenizer, inputs, policy, judge, cache)
    assert again == first
    other_seed = BaseFigureCache(tmp_path / "cache", "gft-tiny-chat", tiny_model)
    run_model(model, tokenizer, inputs, policy.model_copy(update={"seed": 1}), judge, other_seed)
    assert len(list((tmp_path / "cache" / "gft-tiny-chat").glob("*.json"))) == 7  # only the sampled suite is new
    outcome = assess(first, again, inputs, policy)
    assert outcome.decision.release, outcome.decision.reasons
    assert {s["key"] for s in outcome.document["suites"]} >= {"direct", "prefill-5", "over_refusal"}


def test_greedy_suites_merged_in_one_run_match_separate_runs(loaded: Loaded) -> None:
    model, tokenizer = loaded
    direct, prefixes = few("eval_harmful.jsonl", 5), few("harmful_prefixes.jsonl", 5)
    judge = KeywordCoherenceJudge()
    merged = judged_greedy_many(model, tokenizer, [(direct, 0), (prefixes, 5), (prefixes, 20)], 16, judge, 4)
    assert merged == [
        judged(model, tokenizer, direct, 16, judge=judge),
        judged(model, tokenizer, prefixes, 16, 5, judge=judge),
        judged(model, tokenizer, prefixes, 16, 20, judge=judge),
    ]


def test_batched_loss_equals_the_per_row_loss(loaded: Loaded) -> None:
    model, tokenizer = loaded
    rows = datasets.read("benign_colors_validation.jsonl")[:5] + datasets.read("benign_math.jsonl")[:3]
    assert (
        abs(_mean_loss(model, tokenizer, rows, batch_size=8) - _mean_loss(model, tokenizer, rows, batch_size=1)) < 1e-4
    )
