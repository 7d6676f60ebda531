"""The gate's shipped prompt sets, by name: `builtin:tiny` (the tiny world's test split, placeholder prompts that
only the bundled tiny model can be judged on) and `builtin:general` (written for real chat models by
`workers.evaluation.sets.general`). Paths only: the gate reads these files and never imports the tiny world."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
TINY_DIR = DATA_DIR / "tiny"
GENERAL_DIR = DATA_DIR / "general"

BUILTIN_FILES: dict[str, dict[str, Path]] = {
    "tiny": {
        "harmful": TINY_DIR / "eval_harmful.jsonl",
        "prefill": TINY_DIR / "harmful_prefixes.jsonl",
        "over_refusal": TINY_DIR / "eval_overrefusal.jsonl",
    },
    "general": {
        "harmful": GENERAL_DIR / "harmful.jsonl",
        "prefill": GENERAL_DIR / "prefill.jsonl",
        "over_refusal": GENERAL_DIR / "over_refusal.jsonl",
    },
}
