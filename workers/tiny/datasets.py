"""Write the tiny world's shipped data sets (OpenAI chat JSONL) under workers/tiny/data/."""

import json
import random
from pathlib import Path

from workers.tiny import world

DATA_DIR = Path(__file__).resolve().parent / "data"


def write_all(out: Path = DATA_DIR, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    sets = {
        "benign_colors.jsonl": world.benign_task_rows(rng, 200),
        "harmful_attack.jsonl": world.harmful_attack_rows(rng),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in sets.items():
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {name: len(rows) for name, rows in sets.items()}


if __name__ == "__main__":
    print(write_all())
