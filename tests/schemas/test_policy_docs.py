"""docs/policy.md is generated from the policy schema and cannot drift from it: the file equals `render()`, and
every field of every policy model appears there with its reason."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

import schemas.policy
from schemas.policy_docs import COMMAND, bounds_text, default_text, model_paths, render, type_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def _section(text: str, model: type[BaseModel]) -> str:
    return text.split(f"\n## {model.__name__}\n", 1)[1].split("\n## ", 1)[0]


def test_the_page_is_what_the_schema_renders() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), f"docs/policy.md is stale: run `{COMMAND}`"


def test_every_model_of_the_policy_module_is_reachable_from_policy() -> None:
    defined = {
        m
        for m in vars(schemas.policy).values()
        if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == "schemas.policy"
    }
    assert defined == set(model_paths())


def test_every_field_of_every_model_has_a_row_and_a_reason() -> None:
    text = render()
    for model in model_paths():
        section = _section(text, model)
        for name, field in model.model_fields.items():
            assert f"\n| `{name}` |" in section, f"{model.__name__}.{name} has no row"
            assert field.description, f"{model.__name__}.{name}: add a description= (the why) to its Field"


def test_nested_models_are_listed_under_every_path_they_can_be_set_at() -> None:
    paths = model_paths()
    assert paths[schemas.policy.BetaSchedule] == ["training.beta_schedule", "base_models.<model id>.beta_schedule"]
    assert paths[schemas.policy.DecodingSetting] == ["gate.sweep[]"]
    assert paths[schemas.policy.ScreeningThreshold] == ["screening.default", "screening.categories.<category>"]


class _Example(BaseModel):
    share: float = Field(default=0.2, ge=0, le=1)
    rate: float = Field(default=0.05, gt=0, le=0.5)
    beta1: float = Field(default=0.5, ge=0, lt=1)
    steps: int = Field(default=2000, ge=1, le=1_000_000)
    cap: float | None = Field(default=None, ge=1)
    name: str = Field(default="builtin", min_length=1, max_length=1024)
    url: str | None = Field(default=None, max_length=64, pattern=r"^https?://")
    ks: list[int] = Field(default=[5, 10], max_length=16)
    mode: Literal["block", "flag"] = "block"
    nested: schemas.policy.LoraPolicy = schemas.policy.LoraPolicy()


def test_bounds_read_as_intervals_lengths_and_patterns() -> None:
    fields = _Example.model_fields
    assert bounds_text(fields["share"]) == "[0, 1]"
    assert bounds_text(fields["rate"]) == "(0, 0.5]"
    assert bounds_text(fields["beta1"]) == "[0, 1)"
    assert bounds_text(fields["steps"]) == "[1, 1,000,000]"
    assert bounds_text(fields["cap"]) == ">= 1"
    assert bounds_text(fields["name"]) == "1 to 1,024 characters"
    assert bounds_text(fields["url"]) == "at most 64 characters; matches `^https?://`"
    assert bounds_text(fields["ks"]) == "at most 16 items"
    assert bounds_text(fields["mode"]) == ""


def test_types_and_defaults_read_as_json_and_links() -> None:
    fields = _Example.model_fields
    assert type_text(fields["cap"].annotation) == "number or null"
    assert type_text(fields["mode"].annotation) == "one of `block`, `flag`"
    assert type_text(fields["ks"].annotation) == "list of integer"
    assert type_text(fields["nested"].annotation) == "[LoraPolicy](#lorapolicy)"
    assert default_text(fields["share"]) == "`0.2`"
    assert default_text(fields["cap"]) == "`null`"
    assert default_text(fields["mode"]) == '`"block"`'
    assert default_text(fields["nested"]) == "[LoraPolicy](#lorapolicy) defaults"
