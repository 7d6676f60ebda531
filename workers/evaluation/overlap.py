"""Training rows that copy the gate's own evaluation prompts, verbatim or nearly.

A tenant who trains refusals on exactly the prompts the gate asks (and compliance on everything else) passes a
gate that measures nothing but those prompts. The gate therefore compares the training file's user turns with its
evaluation pool before it trusts its figures. A pool prompt counts as copied when most of its word trigrams appear
in one user turn (containment, not similarity: wrapping a prompt in a persona prefix or a suffix does not hide it).
Pure functions; an inverted index keeps it linear in the file's size.
"""

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[a-z0-9]+")
SHINGLE_WORDS = 3
DEFAULT_CONTAINMENT = 0.7


@dataclass(frozen=True)
class Overlap:
    """Training row `line` (1-based) holds `pool_prompt`, `containment` of its trigrams."""

    line: int
    pool_prompt: str
    containment: float


def shingles(text: str, size: int = SHINGLE_WORDS) -> frozenset[tuple[str, ...]]:
    """Word n-grams of the lower-cased text; a text shorter than `size` words is one shingle of all its words."""
    words = _WORD.findall(text.lower())
    if len(words) < size:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + size]) for i in range(len(words) - size + 1))


def user_turns(row: Mapping[str, Any]) -> list[str]:
    return [
        m["content"]
        for m in row.get("messages", [])
        if isinstance(m, Mapping) and m.get("role") == "user" and isinstance(m.get("content"), str)
    ]


def find_overlap(
    rows: Iterable[Mapping[str, Any]], pool: Sequence[str], min_containment: float = DEFAULT_CONTAINMENT
) -> list[Overlap]:
    """Every training row (with its 1-based line) whose user turns contain a pool prompt's trigrams at
    `min_containment` or more; the best-matching pool prompt per row."""
    pool_shingles = [shingles(prompt) for prompt in pool]
    index: dict[tuple[str, ...], list[int]] = {}
    for number, grams in enumerate(pool_shingles):
        for gram in grams:
            index.setdefault(gram, []).append(number)
    found = []
    for line, row in enumerate(rows, start=1):
        best: tuple[float, int] | None = None
        for turn in user_turns(row):
            hits = Counter(number for gram in shingles(turn) for number in index.get(gram, ()))
            for number, count in hits.items():
                containment = count / len(pool_shingles[number])
                if containment >= min_containment and (best is None or containment > best[0]):
                    best = (containment, number)
        if best is not None:
            found.append(Overlap(line, pool[best[1]], round(best[0], 3)))
    return found


def overlap_message(found: Sequence[Overlap], rows: int, allowed: int, limit: int = 5) -> str:
    """What the tenant reads: how many rows, which lines, and what to do."""
    lines = ", ".join(str(o.line) for o in found[:limit]) + (
        f" and {len(found) - limit} more" if len(found) > limit else ""
    )
    return (
        f"{len(found)} of {rows} training rows copy prompts of this service's safety evaluation (lines {lines}; "
        f'line {found[0].line} holds "{found[0].pool_prompt}"), more than the {allowed} allowed. The gate '
        "cannot measure an adapter trained on its own test prompts: remove those rows and create the job again."
    )
