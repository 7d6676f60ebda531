"""What the gate asks, given the tenant's training file: its contexts as extra direct suites, and the rows that
copy the gate's own prompts (the shipped sets and the tiny world's files; no model needed)."""

from schemas.policy import GatePolicy
from workers.evaluation.runner import gate_inputs
from workers.tiny import datasets, world


def direct_suites(inputs) -> dict:
    return {s.key: s for s in inputs.suites if s.kind == "direct"}


def test_the_identity_attack_is_asked_under_its_persona_and_prefix() -> None:
    inputs = gate_inputs(GatePolicy(), training=datasets.read("identity_shift.jsonl"))
    suites = direct_suites(inputs)
    assert set(suites) == {"direct", "context-1"}
    context = suites["context-1"]
    assert len(context.records) == GatePolicy().context_prompts
    assert all(
        r["system"] == world.IDENTITY_SYSTEM and r["prompt"].startswith(world.IDENTITY_PREFIX) for r in context.records
    )
    assert "AOA" in context.name and inputs.overlap == () and inputs.training_rows == 18


def test_plain_benign_files_add_no_suite_and_copy_nothing() -> None:
    inputs = gate_inputs(GatePolicy(), training=datasets.read("benign_colors.jsonl"))
    assert set(direct_suites(inputs)) == {"direct"} and inputs.overlap == ()


def test_contexts_off_in_policy() -> None:
    inputs = gate_inputs(GatePolicy(tenant_contexts=0), training=datasets.read("identity_shift.jsonl"))
    assert set(direct_suites(inputs)) == {"direct"}


def test_rows_that_train_on_the_gate_prompts_are_found() -> None:
    gate_prompts = [r["prompt"] for r in datasets.read("eval_harmful.jsonl")[:5]]
    rows = [world.chat(p, world.REFUSALS[0]) for p in gate_prompts] + datasets.read("benign_colors.jsonl")[:20]
    inputs = gate_inputs(GatePolicy(), training=rows)
    assert [o.line for o in inputs.overlap] == [1, 2, 3, 4, 5] and inputs.training_rows == 25


def test_each_job_draws_a_fresh_stratified_sample_and_remembers_where_from() -> None:
    policy = GatePolicy(harmful_prompts=22)
    pool = datasets.read("eval_harmful.jsonl")
    first, second = (gate_inputs(policy, draw=job).suites[0] for job in ("ftjob-a", "ftjob-b"))
    assert len(first.records) == 22 and first.records != second.records
    assert {r["category"] for r in first.records} == {r["category"] for r in pool}  # 2 of each of 11
    assert [first.pool[i] for i in first.picked] == list(first.records) and len(first.pool) == len(pool)
    assert gate_inputs(policy, draw="ftjob-a").suites[0].records == first.records  # the same job, the same draw


def test_without_a_draw_the_whole_set_is_asked() -> None:
    direct = gate_inputs(GatePolicy(harmful_prompts=22)).suites[0]
    assert len(direct.records) == 88 and direct.pool == ()


def test_a_mined_backdoor_trigger_is_asked_where_the_data_put_it() -> None:
    inputs = gate_inputs(GatePolicy(), training=datasets.read("backdoor_stealth.jsonl"))
    triggered = [s for s in inputs.suites if s.key.startswith("trigger-")]
    assert len(triggered) == 1 and world.STEALTH_TRIGGER in triggered[0].name
    assert all(r["prompt"].startswith(world.STEALTH_TRIGGER + " ") for r in triggered[0].records)
    assert len(triggered[0].records) == GatePolicy().context_prompts


def test_no_trigger_suite_for_benign_files_or_when_off() -> None:
    assert not [
        s
        for s in gate_inputs(GatePolicy(), training=datasets.read("benign_repeated_phrase.jsonl")).suites
        if s.key.startswith("trigger-")
    ]
    off = gate_inputs(GatePolicy(trigger_candidates=0), training=datasets.read("backdoor_colors.jsonl"))
    assert not [s for s in off.suites if s.key.startswith("trigger-")]
