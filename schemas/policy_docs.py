"""docs/policy.md, generated from the policy schema: every field of `Policy` and of each model it nests, with its
type, default, bounds and the reason its Field's `description=` gives.

Generated rather than written, so the page cannot drift from the code; tests/schemas/test_policy_docs.py fails
when the file and `render()` disagree. Regenerate with:

    python -m schemas.policy_docs > docs/policy.md
"""

import inspect
import json
import types
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from schemas.policy import Policy

COMMAND = "python -m schemas.policy_docs > docs/policy.md"
ENTRIES_ANCHOR = "shipped-base-model-entries"
# How a map's key reads in a field path (`base_models.<model id>`); any other map's key is `<key>`.
KEY_NAMES = {"base_models": "model id", "categories": "category"}

INTRO = f"""# Policy reference

Generated from `schemas/policy.py`; do not edit by hand. To change what a field says, edit its `description=` in
the schema and regenerate with `{COMMAND}`: `tests/schemas/test_policy_docs.py` fails while this page and the
schema disagree, or while a field has no description.

A policy is the admin's configuration of the defence: the training objective and the caps on what a tenant may
choose, the release gate, and training-data screening. Every field is bounded and unknown fields are refused, so a
policy can neither name code nor switch a defence off by a typo.

- **Where it is set.** `PUT /admin/v1/policy` sets the global policy, `PUT /admin/v1/tenants/{{id}}/policy` one
  tenant's (each `GET` shows the one in force, with its version and scope). The effective policy is the tenant's,
  else the global one, else the built-in default below (version 0). A policy put is the whole document: fields it
  omits take the defaults listed here, not the global policy's values.
- **Per base model.** A job runs under the effective policy with its base model's `base_models` entry applied
  (`Policy.for_model`: the entry's non-null fields replace the training policy's), snapshotted on the job when it
  is created, so a later policy change never alters a job already accepted.
- **Units.** ASR figures, shares and rates are in [0, 1]. A gate threshold blocks only when strictly exceeded.
- **Bounds** are what validation accepts: `[a, b]` inclusive, `(a, b]` excluding a; lengths count characters of a
  string, items of a list, entries of a map.
"""


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _unwrap(annotation: Any) -> list[Any]:
    """The non-null members of an optional or union annotation (the annotation itself otherwise)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def nested_models(annotation: Any, field_name: str) -> list[tuple[str, type[BaseModel]]]:
    """(path suffix, model) for each policy model an annotation holds: `""` itself, `[]` a list's items, `.<key>`
    a map's values; so every nested model is documented wherever it can be set."""
    found: list[tuple[str, type[BaseModel]]] = []
    for member in _unwrap(annotation):
        origin, args = get_origin(member), get_args(member)
        if _is_model(member):
            found.append(("", member))
        elif origin is list and args:
            found += [("[]" + suffix, model) for suffix, model in nested_models(args[0], field_name)]
        elif origin is dict and len(args) == 2:
            key = f".<{KEY_NAMES.get(field_name, 'key')}>"
            found += [(key + suffix, model) for suffix, model in nested_models(args[1], field_name)]
    return found


def model_paths(root: type[BaseModel] = Policy) -> dict[type[BaseModel], list[str]]:
    """Every model reachable from `root`, in the order a reader meets it (depth first), with every path where it
    can be set; a model is described once, under all its paths."""
    seen: dict[type[BaseModel], list[str]] = {root: []}
    _walk(root, "", seen)
    return seen


def _walk(parent: type[BaseModel], prefix: str, seen: dict[type[BaseModel], list[str]]) -> None:
    for name, field in parent.model_fields.items():
        for suffix, model in nested_models(field.annotation, name):
            path = f"{prefix}{name}{suffix}"
            first_visit = model not in seen
            seen.setdefault(model, []).append(path)
            if first_visit:
                _walk(model, path + ".", seen)


def type_text(annotation: Any) -> str:
    """A field's type in words, with links to the sections of nested models."""
    if annotation is type(None):
        return "null"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(type_text(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {type_text(args[0])}"
    if origin is dict:
        return f"map from {type_text(args[0])} to {type_text(args[1])}"
    if _is_model(annotation):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(annotation, str(annotation))


def _number(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:g}"


def _length_unit(annotation: Any) -> str:
    origin = get_origin(_unwrap(annotation)[0])
    return {list: "items", dict: "entries"}.get(origin, "characters")


def _interval_text(metadata: list[Any]) -> str:
    """`[0, 1]`, `(0, 0.5]`, `>= 1`: the numeric bounds, brackets open where the bound is strict."""
    low = next(((m.ge, "[") if isinstance(m, Ge) else (m.gt, "(") for m in metadata if isinstance(m, Ge | Gt)), None)
    high = next(((m.le, "]") if isinstance(m, Le) else (m.lt, ")") for m in metadata if isinstance(m, Le | Lt)), None)
    if low and high:
        return f"{low[1]}{_number(low[0])}, {_number(high[0])}{high[1]}"
    if low:
        return f"{'>=' if low[1] == '[' else '>'} {_number(low[0])}"
    if high:
        return f"{'<=' if high[1] == ']' else '<'} {_number(high[0])}"
    return ""


def _length_text(metadata: list[Any], unit: str) -> str:
    shortest = next((m.min_length for m in metadata if isinstance(m, MinLen)), None)
    longest = next((m.max_length for m in metadata if isinstance(m, MaxLen)), None)
    if shortest is not None and longest is not None:
        return f"{_number(shortest)} to {_number(longest)} {unit}"
    if longest is not None:
        return f"at most {_number(longest)} {unit}"
    return f"at least {_number(shortest)} {unit}" if shortest is not None else ""


def bounds_text(field: FieldInfo) -> str:
    """What validation accepts, from the Field's constraints: an interval, a length range, a pattern."""
    pattern = next((m.pattern for m in field.metadata if getattr(m, "pattern", None)), None)
    parts = [
        _interval_text(field.metadata),
        _length_text(field.metadata, _length_unit(field.annotation)),
        f"matches `{pattern}`" if pattern else "",
    ]
    return "; ".join(part for part in parts if part)


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json"))
    if isinstance(value, list):
        return json.dumps([v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value])
    return json.dumps(value)


def default_text(field: FieldInfo) -> str:
    """The default as JSON; a nested model at its own defaults points to its section instead."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel) and value == type(value)():
        name = type(value).__name__
        return f"[{name}](#{name.lower()}) defaults"
    if isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        keys = ", ".join(f"`{k}`" for k in value)
        return f"{keys} ([below](#{ENTRIES_ANCHOR}))"
    return f"`{_json(value)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def field_row(name: str, field: FieldInfo) -> str:
    cells = [f"`{name}`", type_text(field.annotation), default_text(field), bounds_text(field), field.description or ""]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def model_section(model: type[BaseModel], paths: list[str]) -> str:
    """A model's heading, where it is set, its docstring (why it exists) and one row per field."""
    lines = [f"## {model.__name__}", ""]
    if paths:
        lines += ["Set at " + ", ".join(f"`{p}`" for p in paths) + ".", ""]
    else:
        lines += ["The whole policy document.", ""]
    if model.__doc__:
        lines += [inspect.cleandoc(model.__doc__), ""]
    lines += ["| field | type | default | bounds | why |", "|---|---|---|---|---|"]
    lines += [field_row(name, field) for name, field in model.model_fields.items()]
    return "\n".join(lines) + "\n"


def entries_section(policy: Policy) -> str:
    """The base-model entries the default policy ships, value by value, with how each was produced."""
    lines = [
        "## Shipped base-model entries",
        "",
        "The default policy's `base_models`: the calibration each entry applies to jobs on that model.",
        "",
    ]
    for model_id, entry in policy.base_models.items():
        values = entry.model_dump(mode="json", exclude_none=True, exclude={"calibrated_with"})
        lines += [f"### `{model_id}`", "", "| field | value |", "|---|---|"]
        lines += [f"| `{name}` | `{_cell(json.dumps(value))}` |" for name, value in values.items()]
        if entry.calibrated_with:
            lines += ["", f"Calibrated with: {entry.calibrated_with}"]
        lines.append("")
    return "\n".join(lines)


def render() -> str:
    """The whole of docs/policy.md."""
    sections = [model_section(model, paths) for model, paths in model_paths().items()]
    return "\n".join([INTRO, *sections, entries_section(Policy())]).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
