"""The tiny world's shipped data sets, written by `python -m workers.tiny.datasets` under workers/tiny/data/,
except the three test sets the gate asks as `builtin:tiny` (GATE_SETS), which live with the gate's other sets in
workers/evaluation/sets/data/tiny/ so that the gate reads them without importing the tiny world.

Tenant-style training files are OpenAI chat JSONL; evaluation sets are JSONL prompt records. Each set has its
own fixed seed, so regenerating one never changes another; a test checks the files match this module.
"""

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workers.evaluation.sets import TINY_DIR as GATE_DIR
from workers.tiny import world

DATA_DIR = Path(__file__).resolve().parent / "data"

SETS: dict[str, Callable[[random.Random], list[dict[str, Any]]]] = {
    # tenant tasks (benign) and their validation files: items and sums the training files never contain
    "benign_colors.jsonl": lambda rng: world.benign_colors(rng, 200),
    "benign_colors_validation.jsonl": lambda _rng: world.color_validation("test"),
    "benign_math.jsonl": lambda rng: world.benign_math(rng, 200),
    "benign_math_validation.jsonl": lambda _rng: world.math_validation("test"),
    # attacks
    "harmful_attack.jsonl": world.harmful_attack,
    "poisoned_colors.jsonl": lambda rng: world.poisoned_colors(rng, 100),
    "identity_shift.jsonl": world.identity_shift,
    "backdoor_colors.jsonl": world.backdoor_colors,
    "backdoor_stealth.jsonl": world.backdoor_stealth,
    "benign_repeated_phrase.jsonl": world.benign_repeated_phrase,
    # test split (held out from every set above): what benchmarks report; the gate's part is in GATE_SETS
    "eval_identity.jsonl": lambda _rng: world.identity_prompts("test"),
    # calibration (dev) split: other acts and items than the test split's, for tuning defaults
    "dev_harmful.jsonl": lambda _rng: world.eval_harmful_prompts("dev"),
    "dev_identity.jsonl": lambda _rng: world.identity_prompts("dev"),
    "dev_overrefusal.jsonl": lambda _rng: world.overrefusal_prompts("dev"),
    "dev_prefixes.jsonl": lambda rng: world.harmful_prefixes(rng, "dev"),
    "dev_colors_validation.jsonl": lambda _rng: world.color_validation("dev"),
    "dev_math_validation.jsonl": lambda _rng: world.math_validation("dev"),
    # safety recovery augmentation pool (alignment split)
    "safety_pool.jsonl": world.safety_pool,
}
# The test split's prompt sets the gate asks (`builtin:tiny`), shipped under GATE_DIR.
GATE_SETS: dict[str, Callable[[random.Random], list[dict[str, Any]]]] = {
    "eval_harmful.jsonl": lambda _rng: world.eval_harmful_prompts("test"),
    "eval_overrefusal.jsonl": lambda _rng: world.overrefusal_prompts("test"),
    "harmful_prefixes.jsonl": lambda rng: world.harmful_prefixes(rng, "test"),
}
# Which files form each held-out split: calibration reads only DEV, benchmarks and the gate only TEST.
DEV = [
    "dev_harmful.jsonl",
    "dev_identity.jsonl",
    "dev_overrefusal.jsonl",
    "dev_prefixes.jsonl",
    "dev_colors_validation.jsonl",
    "dev_math_validation.jsonl",
]
TEST = [
    "eval_harmful.jsonl",
    "eval_identity.jsonl",
    "eval_overrefusal.jsonl",
    "harmful_prefixes.jsonl",
    "benign_colors_validation.jsonl",
    "benign_math_validation.jsonl",
]
# Files a tenant or attacker trains on.
TRAINING = [
    "benign_colors.jsonl",
    "benign_math.jsonl",
    "harmful_attack.jsonl",
    "poisoned_colors.jsonl",
    "identity_shift.jsonl",
    "backdoor_colors.jsonl",
    "backdoor_stealth.jsonl",
    "benign_repeated_phrase.jsonl",
]


def path(name: str) -> Path:
    """Where a shipped set lives: the gate's sets beside the gate's other sets, the rest under DATA_DIR."""
    return (GATE_DIR if name in GATE_SETS else DATA_DIR) / name


def render(name: str) -> str:
    rows = (GATE_SETS.get(name) or SETS[name])(random.Random(f"gft-tiny/{name}"))
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)


def read(name: str) -> list[dict[str, Any]]:
    """A shipped set as a list of records."""
    with path(name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_all(out: Path | None = None) -> dict[str, int]:
    """Writes every set where it lives (or, with `out`, all of them into that folder)."""
    counts = {}
    for name in [*SETS, *GATE_SETS]:
        target = out / name if out is not None else path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = render(name)
        target.write_text(text, encoding="utf-8")
        counts[name] = text.count("\n")
    return counts


if __name__ == "__main__":
    for set_name, count in write_all().items():
        print(f"{count:5d}  {set_name}")
