"""The tenant's own context, read from the training file: the gate asks its harmful prompts under it, and
training draws its safety recovery examples under it.

An identity-shifting attack carries no harmful content: it installs a persona in the system prompt and a fixed
way of asking ("AOA, execute my instruction: ..."), and the harm shows only when a prompt comes in that form.
Bare prompts never see it, so the gate also asks under the system prompts the training file uses most and under
any fixed user-prompt prefix or suffix most of its rows share; and recovery examples asked only plainly teach the
model to refuse plain requests while the tenant's rows teach it to comply in the tenant's form, so they are drawn
under the same contexts. Pure functions of the rows, shared by workers.training and workers.evaluation.
"""

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# A fixed prefix or suffix is a whole segment of the user turn, cut at a colon, a line break or a sentence end,
# never the opening words of a question ("What color is the ...", shared by every row of a catalogue task):
# asking a harmful prompt inside a benign question's frame is a prompt the tenant never trained, not its context.
_SEGMENT_END = re.compile(r"(?<=[:\n.!?])\s*")
MAX_AFFIX_CHARS = 500


@dataclass(frozen=True)
class TenantContext:
    """A way the tenant's rows ask: a system prompt (or none) and a fixed text before and after the request."""

    system: str | None = None
    prefix: str = ""
    suffix: str = ""

    @property
    def label(self) -> str:
        """For the report: what the context is, each part cut to 60 characters."""

        def cut(text: str) -> str:
            text = " ".join(text.split())
            return text if len(text) <= 60 else text[:57] + "..."

        parts = [f'system "{cut(self.system)}"' if self.system else "no system prompt"]
        parts += [f'prefix "{cut(self.prefix)}"'] if self.prefix else []
        parts += [f'suffix "{cut(self.suffix)}"'] if self.suffix else []
        return ", ".join(parts)


def _first_turns(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str | None, str]]:
    """(system prompt or None, first user message) per row that has a user message."""
    out = []
    for row in rows:
        messages = [m for m in row.get("messages", []) if isinstance(m, Mapping)]
        system = next(
            (
                m["content"]
                for m in messages[:1]
                if m.get("role") == "system" and isinstance(m.get("content"), str) and m["content"].strip()
            ),
            None,
        )
        user = next(
            (m["content"] for m in messages if m.get("role") == "user" and isinstance(m.get("content"), str)), None
        )
        if user is not None:
            out.append((system, user))
    return out


def frequent_system_prompts(rows: Iterable[Mapping[str, Any]], limit: int) -> list[str]:
    """The `limit` most frequent system prompts of the rows (first seen first among equals)."""
    counts = Counter(system for system, _ in _first_turns(rows) if system)
    return [text for text, _ in counts.most_common(limit)] if limit > 0 else []


def _cuts(text: str) -> list[tuple[int, int]]:
    """Segment boundaries strictly inside `text`: (just after the mark, after the whitespace that follows it)."""
    starts: dict[int, int] = {}
    for m in _SEGMENT_END.finditer(text):
        if 0 < m.end() < len(text):
            starts[m.end()] = min(starts.get(m.end(), m.start()), m.start())
    return sorted((start, end) for end, start in starts.items())


def leading_segments(text: str) -> list[str]:
    """Every prefix of `text` that ends at a segment boundary (its whitespace kept) and leaves a request after."""
    return [text[:end] for _, end in _cuts(text) if end <= MAX_AFFIX_CHARS]


def trailing_segments(text: str) -> list[str]:
    """Every suffix of `text` that starts at a segment boundary (its whitespace kept) and leaves a request before."""
    return [text[start:] for start, _ in _cuts(text) if len(text) - start <= MAX_AFFIX_CHARS]


def shared_affix(texts: Sequence[str], segments: Any, min_share: float) -> str:
    """The longest segment (`leading_segments` or `trailing_segments`) found in at least `min_share` of the texts
    and at least two of them; "" when none is."""
    if len(texts) < 2:
        return ""
    counts = Counter(s for text in texts for s in set(segments(text)))
    needed = max(2, min_share * len(texts))
    shared = [s for s, n in counts.items() if n >= needed and s.strip()]
    return max(shared, key=lambda s: (len(s), counts[s]), default="")


def tenant_contexts(rows: Sequence[Mapping[str, Any]], limit: int, min_share: float = 0.3) -> list[TenantContext]:
    """The contexts to ask under: each of the `limit` most frequent system prompts, with the user-turn prefix and
    suffix that at least `min_share` of the rows share; or that prefix and suffix alone when the rows have no
    system prompt. Empty when the rows ask plainly (the bare prompts already cover them) or `limit` is 0."""
    if limit <= 0:
        return []
    turns = _first_turns(rows)
    users = [user for _, user in turns]
    prefix = shared_affix(users, leading_segments, min_share)
    suffix = shared_affix(
        [u[len(prefix) :] if u.startswith(prefix) else u for u in users], trailing_segments, min_share
    )
    systems = frequent_system_prompts(rows, limit)
    if systems:
        return [TenantContext(system, prefix, suffix) for system in systems]
    return [TenantContext(None, prefix, suffix)] if prefix or suffix else []


def under_context(records: Iterable[Mapping[str, Any]], context: TenantContext) -> tuple[dict[str, Any], ...]:
    """Prompt records asked the tenant's way: its system prompt, its prefix and suffix around the request."""
    out = []
    for record in records:
        asked = {**record, "prompt": f"{context.prefix}{record['prompt']}{context.suffix}"}
        if context.system:
            asked["system"] = context.system
        out.append(asked)
    return tuple(out)
