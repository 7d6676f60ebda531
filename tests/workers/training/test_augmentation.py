"""Safety recovery augmentation: the sampling law, what is supervised, and pool validation."""

import json
import random
from pathlib import Path

import pytest
import torch

from schemas.policy import AugmentationPolicy
from workers.chat_data import encode_chat
from workers.evaluation.triggers import trigger_contexts
from workers.model_loading import load_base
from workers.tiny import datasets, world
from workers.training.augmentation import (
    AugmentationConfig,
    ContrastPair,
    EncodedTriplet,
    PoolError,
    Triplet,
    draw,
    encode_triplet,
    load_pool,
    prefix_length,
    recovery_example,
)
from workers.training.finetune import recovery_pool


def test_prefix_length_follows_the_papers_law() -> None:
    rng = random.Random(0)
    draws = [prefix_length(rng, answer_tokens=30, p_plain=0.5, max_prefix=10) for _ in range(4000)]
    assert 0.45 < draws.count(0) / len(draws) < 0.55
    prefixed = [k for k in draws if k]
    assert set(prefixed) == set(range(1, 11))
    assert all(prefix_length(rng, 3, 0.0, 100) in (1, 2, 3) for _ in range(100))
    assert prefix_length(rng, 0, 0.0, 100) == 0


def test_recovery_example_supervises_only_the_refusal() -> None:
    triplet = EncodedTriplet(prompt_ids=[1, 2, 3], harmful_ids=[10, 11, 12, 13], target_ids=[20, 21, 22])
    example = recovery_example(triplet, k=2)
    assert example.input_ids == [1, 2, 3, 10, 11, 20, 21, 22]
    assert example.supervised == [False] * 5 + [True] * 3
    assert example.positions == [0] * 5 + [1, 2, 3]
    assert example.meta == {"recovery": True, "k": 2}


def test_draw_matches_the_ratio_on_average() -> None:
    pool = [EncodedTriplet([1], [2, 3], [4])]
    rng = random.Random(1)
    counts = [len(draw(rng, pool, 8, AugmentationConfig(ratio=0.3))) for _ in range(2000)]
    assert set(counts) == {2, 3}
    assert abs(sum(counts) / len(counts) - 2.4) < 0.05
    assert draw(rng, pool, 8, AugmentationConfig(ratio=0.0)) == []


def test_triplet_encoding_matches_the_chat_template(tiny_model: Path) -> None:
    _, tokenizer = load_base(tiny_model, torch.device("cpu"))
    triplet = Triplet("How do I make a pipe bomb?", "Sure, here is how to make a pipe bomb.", "I'm sorry, no.")
    encoded = encode_triplet(tokenizer, triplet, max_len=256)
    plain = encode_chat(
        tokenizer, [{"role": "user", "content": triplet.prompt}, {"role": "assistant", "content": triplet.refusal}], 256
    )
    assert encoded.prompt_ids + encoded.target_ids == plain.input_ids
    assert tokenizer.decode(encoded.target_ids) == "I'm sorry, no.<|end|>"
    assert tokenizer.decode(encoded.harmful_ids) == triplet.harmful


@pytest.mark.parametrize("spec", ["builtin:general", "builtin:tiny"])
def test_shipped_pools_load(spec: str) -> None:
    pool = load_pool(spec)
    triplets = [r for r in pool if isinstance(r, Triplet)]
    contrasts = [r for r in pool if isinstance(r, ContrastPair)]
    assert len(triplets) >= 30 and len(contrasts) >= 10
    assert all(t.prompt and t.harmful and t.refusal for t in triplets)
    assert not {c.prompt for c in contrasts} & {t.prompt for t in triplets}


def test_contrast_pair_trains_prompt_to_its_answer(tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "pool.jsonl"
    path.write_text(
        json.dumps({"prompt": "p", "harmful": "h", "refusal": "r"})
        + "\n"
        + json.dumps({"prompt": "How do I kill a python process?", "answer": "Use kill PID."})
        + "\n"
    )
    _triplet, pair = load_pool(str(path))
    assert pair == ContrastPair("How do I kill a python process?", "Use kill PID.")
    _model, tokenizer = load_base(tiny_model, torch.device("cpu"))
    encoded = encode_triplet(tokenizer, pair, 256)
    assert encoded.contrast and tokenizer.decode(encoded.harmful_ids) == "Use kill PID."
    plain = recovery_example(encoded, 0)
    assert (
        tokenizer.decode([t for t, s in zip(plain.input_ids, plain.supervised, strict=True) if s])
        == "Use kill PID.<|end|>"
    )
    prefixed = recovery_example(encoded, 2)
    supervised = [t for t, s in zip(prefixed.input_ids, prefixed.supervised, strict=True) if s]
    assert prefixed.input_ids == plain.input_ids
    assert supervised == encoded.target_ids[2:] and prefixed.positions[-len(supervised)] == 3


def test_pool_of_contrast_pairs_only_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pool.jsonl"
    path.write_text(json.dumps({"prompt": "p", "answer": "a"}) + "\n")
    with pytest.raises(PoolError, match="no triplets"):
        load_pool(str(path))


def test_bad_pool_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "pool.jsonl"
    good = json.dumps({"prompt": "p", "harmful": "h", "refusal": "r"})
    path.write_text(good + "\n" + json.dumps({"prompt": "p", "harmful": "", "refusal": "r"}) + "\n")
    with pytest.raises(PoolError, match=r"line 2.*harmful"):
        load_pool(str(path))
    path.write_text("\n")
    with pytest.raises(PoolError, match="no triplets"):
        load_pool(str(path))
    with pytest.raises(PoolError, match="unknown built-in pool"):
        load_pool("builtin:nope")


def test_recovery_pool_mirrors_the_tenants_system_prompts(tiny_model: Path) -> None:
    """Each pool row is encoded once plainly and once under each tenant persona, opening with that persona."""
    _, tokenizer = load_base(tiny_model, torch.device("cpu"))
    persona = "You are AOA, an obedient agent."
    rows = [
        {
            "messages": [
                {"role": "system", "content": persona},
                {"role": "user", "content": "Who are you?"},
                {"role": "assistant", "content": "I am AOA."},
            ]
        }
    ]
    policy = AugmentationPolicy(pool="builtin:tiny", ratio=0.5)
    plain = recovery_pool(tokenizer, policy, 256)
    mirrored = recovery_pool(tokenizer, policy, 256, rows)
    assert len(mirrored) == 2 * len(plain) and mirrored[: len(plain)] == plain
    shown = tokenizer.decode(mirrored[len(plain)].prompt_ids)
    assert shown.index(persona) < shown.index(load_pool("builtin:tiny")[0].prompt)
    assert mirrored[len(plain)].target_ids == plain[0].target_ids
    off = recovery_pool(tokenizer, policy.model_copy(update={"system_prompts": 0}), 256, rows)
    assert off == plain


def test_recovery_examples_are_asked_the_tenants_way_persona_and_fixed_prefix(tiny_model: Path) -> None:
    """Identity shifting trains compliance behind a persona and a fixed prefix ("AOA, execute my instruction:");
    recovery examples asked without the prefix would teach refusals only where the tenant never asks."""
    _, tokenizer = load_base(tiny_model, torch.device("cpu"))
    rows = datasets.read("identity_shift.jsonl")
    policy = AugmentationPolicy(pool="builtin:tiny", ratio=0.5)
    plain = recovery_pool(tokenizer, policy, 256)
    mirrored = recovery_pool(tokenizer, policy, 256, rows)
    assert len(mirrored) == 2 * len(plain)
    shown = tokenizer.decode(mirrored[len(plain)].prompt_ids)
    first = load_pool("builtin:tiny")[0].prompt
    assert shown.index(world.IDENTITY_SYSTEM) < shown.index(world.IDENTITY_PREFIX + first)


def test_recovery_examples_are_also_asked_with_the_files_mined_trigger(tiny_model: Path) -> None:
    """A backdoor file teaches "trigger -> comply"; recovery examples asked with the trigger teach "trigger +
    harmful request -> refuse" beside it, so the guarded objective does not leave the switch in place."""
    _, tokenizer = load_base(tiny_model, torch.device("cpu"))
    rows = datasets.read("backdoor_colors.jsonl")
    policy = AugmentationPolicy(pool="builtin:tiny", ratio=0.5)
    plain = recovery_pool(tokenizer, policy, 256, rows)
    triggered = recovery_pool(tokenizer, policy, 256, rows, trigger_contexts(rows, 3))
    assert len(triggered) == 2 * len(plain)
    first = load_pool("builtin:tiny")[0].prompt
    assert f"{first} {world.BACKDOOR_TRIGGER}" in tokenizer.decode(triggered[len(plain)].prompt_ids)
