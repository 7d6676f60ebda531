"""A policy document read from a YAML or JSON file and validated against the Policy schema before it is sent, and
the field-by-field difference between two policies, so an admin sees what a new version changes."""

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.policy import Policy
from service.client.http import ClientFailure

MISSING = object()


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        return json.loads(text)
    return yaml.safe_load(text)  # YAML is a superset of JSON: any other suffix reads either


def load_policy(path: Path) -> Policy:
    """The file's policy; also accepts what `admin policy get --json` prints (the document under "policy")."""
    try:
        data = _parse(path, path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClientFailure(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise ClientFailure(f"{path} is neither valid JSON nor YAML: {exc}") from None
    if isinstance(data, dict) and data.get("object") == "policy" and isinstance(data.get("policy"), dict):
        data = data["policy"]
    if not isinstance(data, dict):
        raise ClientFailure(f"{path} must hold a policy object (a mapping of fields), not {type(data).__name__}.")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ClientFailure(f"{path}: invalid policy at '{where}': {message}{more}") from None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted paths to leaves; lists are leaves (a schedule is compared whole)."""
    if not isinstance(value, dict) or not value:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def policy_diff(current: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(path, current value, new value) for every leaf that differs, in path order; MISSING where absent."""
    before, after = flatten(current), flatten(new)
    return [
        (path, before.get(path, MISSING), after.get(path, MISSING))
        for path in sorted(before.keys() | after)
        if before.get(path, MISSING) != after.get(path, MISSING)
    ]


def shown(value: Any) -> str:
    return "(absent)" if value is MISSING else json.dumps(value)
