"""Admin-provided evaluation files in the formats the public benchmarks publish, read into prompt records
({"prompt", "category"} plus "prefix" where the file has a harmful answer).

- JSONL (HEx-PHI style, `.jsonl`): one object a line with `prompt` (or `instruction`, `goal`), optional
  `category`, optional `prefix` (or `target`, `response`: a harmful answer for prefilling).
- HEx-PHI CSV (`.csv` with one column and no known header, or a folder of `category_N.csv`): one prompt per
  row; the category is the file name.
- AdvBench CSV (header `goal,target`): prompt = goal, prefix = target ("Sure, here is ..."); category advbench.
- XSTest CSV (header with `prompt` and `type`): safe rows (`label` safe, or a type not starting with
  `contrast`) for over-refusal, unsafe rows for harmful suites; the category is the type.
- any other CSV with a `prompt` column, optional `category` and `prefix` columns.

Every problem is reported as an EvalFileError naming the file and the line, never as a bare KeyError.

Shipped sets are named `builtin:tiny` (the tiny world's test split) and `builtin:general` (the general pool,
`workers.evaluation.sets.general`); `builtin` means the right one for the job's model (`sets_for_model`): tiny for
the bundled tiny model, general for any other. A model that is not the tiny model is never asked tiny-world
prompts: a policy that names them for it is refused with UnsuitableEvalSets.
"""

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal

from schemas.policy import EvaluationSets
from workers.evaluation.sets import BUILTIN_FILES, TINY_DIR

Purpose = Literal["harmful", "prefill", "over_refusal"]
TINY_MODEL_ID = "gft-tiny-chat"
TINY_BUILD_MARKER = "gft_recipe.json"  # written into every tiny model folder by workers.tiny.build
# Folders of tiny-world prompt files, named here by path so the gate never imports the tiny world.
TINY_WORLD_FOLDERS = (TINY_DIR, Path(__file__).resolve().parents[1] / "tiny" / "data")
UNSUITABLE_SETS_CODE = "evaluation_sets_unsuitable"
MAX_PROMPTS = 20_000
_PROMPT_KEYS = ("prompt", "instruction", "goal", "behavior", "question")
_PREFIX_KEYS = ("prefix", "target", "response")


class EvalFileError(ValueError):
    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"evaluation file {where}: {message}")
        self.path, self.line = str(path), line


class UnsuitableEvalSets(ValueError):
    """The policy's evaluation sets cannot measure this model; `param` is the first policy field to change. The
    job fails with `code` rather than be judged on prompts written for another model."""

    code = UNSUITABLE_SETS_CODE

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message, self.param = message, param


def _record(path: Path, line: int, prompt: Any, category: Any, prefix: Any = None) -> dict[str, Any]:
    if not isinstance(prompt, str) or not prompt.strip():
        raise EvalFileError(path, "empty or missing prompt", line)
    record: dict[str, Any] = {"prompt": prompt.strip(), "category": str(category or "uncategorised").strip()}
    if prefix is not None and str(prefix).strip():
        record["prefix"] = str(prefix).strip()
    return record


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((row[k] for k in keys if k in row and row[k] is not None), None)


def _read_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    records = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EvalFileError(path, f"not valid JSON ({exc.msg})", number) from exc
        if not isinstance(row, dict):
            raise EvalFileError(path, "each line must be a JSON object", number)
        if _first(row, _PROMPT_KEYS) is None:
            raise EvalFileError(path, f"no prompt field (expected one of {', '.join(_PROMPT_KEYS)})", number)
        records.append(_record(path, number, _first(row, _PROMPT_KEYS), row.get("category"), _first(row, _PREFIX_KEYS)))
    return records


def _xstest_safe(row: dict[str, str]) -> bool:
    label = (row.get("label") or "").strip().lower()
    if label in ("safe", "unsafe"):
        return label == "safe"
    return not (row.get("type") or "").strip().lower().startswith("contrast")


def _read_csv(path: Path, text: str, purpose: Purpose) -> list[dict[str, Any]]:
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    body = [dict(zip(header, r, strict=False)) for r in rows[1:]]
    for number, raw in enumerate(rows[1:], start=2):
        if len(header) > 1 and len(raw) != len(header):
            raise EvalFileError(path, f"{len(raw)} columns where the header has {len(header)}", number)
    if header[:2] == ["goal", "target"]:  # AdvBench
        return [_record(path, n, r["goal"], "advbench", r["target"]) for n, r in enumerate(body, start=2)]
    if "prompt" in header and "type" in header:  # XSTest
        want_safe = purpose == "over_refusal"
        return [
            _record(path, n, r["prompt"], r["type"])
            for n, r in enumerate(body, start=2)
            if _xstest_safe(r) == want_safe
        ]
    if "prompt" in header:
        return [
            _record(path, n, r["prompt"], r.get("category"), _first(r, _PREFIX_KEYS))
            for n, r in enumerate(body, start=2)
        ]
    if len(header) == 1:  # HEx-PHI: one prompt per row, no header; the file is the category
        return [_record(path, n, r[0], path.stem) for n, r in enumerate(rows, start=1)]
    raise EvalFileError(
        path,
        f"unrecognised CSV header {rows[0]!r}: expected goal,target (AdvBench), "
        "prompt,type,... (XSTest), a prompt column, or one prompt per row (HEx-PHI)",
        1,
    )


def load_prompts(path: Path | str, purpose: Purpose = "harmful") -> list[dict[str, Any]]:
    """Prompt records from a file or a folder of HEx-PHI category files; raises EvalFileError when unusable."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".csv", ".jsonl"))
        if not files:
            raise EvalFileError(path, "the folder holds no .csv or .jsonl files")
        records = [r for f in files for r in load_prompts(f, purpose)]
    else:
        if not path.is_file():
            raise EvalFileError(path, "no such file")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise EvalFileError(path, "not UTF-8 text") from exc
        if path.suffix == ".jsonl":
            records = _read_jsonl(path, text)
        elif path.suffix == ".csv":
            records = _read_csv(path, text, purpose)
        else:
            raise EvalFileError(path, f"unknown format {path.suffix!r}: use .csv or .jsonl")
    if not records:
        raise EvalFileError(path, f"no {purpose.replace('_', '-')} prompts in the file")
    if len(records) > MAX_PROMPTS:
        raise EvalFileError(path, f"{len(records)} prompts, more than the {MAX_PROMPTS} the gate accepts")
    if purpose == "prefill":
        missing = sum("prefix" not in r for r in records)
        if missing:
            raise EvalFileError(path, f"{missing} prompts have no harmful answer (prefix/target) to prefill")
    return records


def is_tiny_model(model_id: str, model_path: Path | str | None = None) -> bool:
    """The bundled tiny model: its id, and (when the folder is known) the tiny build's marker file in it, so a
    real model registered under the tiny model's id is not taken for it."""
    return model_id == TINY_MODEL_ID and (model_path is None or (Path(model_path) / TINY_BUILD_MARKER).is_file())


def builtin_for(model_id: str, model_path: Path | str | None = None) -> str:
    """What `builtin` means for a model: the tiny world's sets for the tiny model, the general pool otherwise."""
    return "builtin:tiny" if is_tiny_model(model_id, model_path) else "builtin:general"


def _tiny_world(spec: str) -> bool:
    """`builtin:tiny`, or a file in one of the tiny world's folders."""
    if spec == "builtin:tiny":
        return True
    path = Path(spec)
    return path.is_absolute() and any(path.resolve().is_relative_to(folder) for folder in TINY_WORLD_FOLDERS)


def _known_builtin(spec: str) -> bool:
    return not spec.startswith("builtin") or spec == "builtin" or spec.removeprefix("builtin:") in BUILTIN_FILES


def _unsuitable_message(model_id: str, fields: list[str], specs: dict[str, str], reason: str) -> str:
    named = ", ".join(f"gate.sets.{f} is {specs[f]!r}" for f in fields)
    to_set = " and ".join(f"gate.sets.{f}" for f in fields)
    return (
        f"Model '{model_id}' has no suitable evaluation sets: {named}, {reason}. An admin sets {to_set} in the "
        "policy (PUT /admin/v1/policy, or the tenant's) to `builtin` (the right shipped set for this model), "
        "`builtin:general`, or an absolute path to a prompt file of the deployment's own (docs/evaluation.md, "
        "Prompt sets); the job must then be created again."
    )


def sets_for_model(sets: EvaluationSets, model_id: str, model_path: Path | str | None = None) -> EvaluationSets:
    """The policy's sets with `builtin` made explicit for this model. Raises UnsuitableEvalSets when a set names
    an unknown built-in, or tiny-world prompts for a model that is not the tiny model (its figures there would
    measure nothing: the prompts are the tiny world's placeholders)."""
    specs = {purpose: str(spec) for purpose, spec in sets.model_dump().items()}
    unknown = [purpose for purpose, spec in specs.items() if not _known_builtin(spec)]
    if unknown:
        known = ", ".join(["builtin", *(f"builtin:{name}" for name in BUILTIN_FILES)])
        raise UnsuitableEvalSets(
            _unsuitable_message(model_id, unknown, specs, f"not a shipped set ({known})"), f"gate.sets.{unknown[0]}"
        )
    explicit = {
        purpose: builtin_for(model_id, model_path) if spec == "builtin" else spec for purpose, spec in specs.items()
    }
    if not is_tiny_model(model_id, model_path):
        tiny = [purpose for purpose, spec in explicit.items() if _tiny_world(spec)]
        if tiny:
            reason = (
                f"the tiny world's prompts, written for the bundled tiny model ({TINY_MODEL_ID}), which "
                "cannot measure this model"
            )
            raise UnsuitableEvalSets(_unsuitable_message(model_id, tiny, specs, reason), f"gate.sets.{tiny[0]}")
    return EvaluationSets(**explicit)


def _read_builtin(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def resolve_set(spec: str, purpose: Purpose) -> tuple[str, list[dict[str, Any]]]:
    """(a name for the report, the records) for a policy's set: `builtin:tiny`, `builtin:general` or an absolute
    path. A bare `builtin` here is `builtin:tiny`, for callers without a model (benchmarks and tests of the tiny
    model); a job's gate resolves it for its model first (`sets_for_model`)."""
    name = "tiny" if spec == "builtin" else spec.removeprefix("builtin:") if spec.startswith("builtin:") else None
    if name is not None:
        if name not in BUILTIN_FILES:
            raise EvalFileError(spec, f"no such built-in set; known: {', '.join(sorted(BUILTIN_FILES))}")
        path = BUILTIN_FILES[name][purpose]
        return f"builtin:{name}/{path.name}", _read_builtin(path)
    if not Path(spec).is_absolute():
        raise EvalFileError(spec, "evaluation sets are `builtin`, `builtin:<name>` or an absolute path")
    return spec, load_prompts(spec, purpose)
