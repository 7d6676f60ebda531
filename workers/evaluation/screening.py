"""Training-data screening: which rows of a chat JSONL file ask for harm and get it, and what a policy makes of
that. Used by the jobs' screen step and by the dry run (`POST /v1/files/{id}/screen`, which the API hands to the
cpu queue), both in `workers/screening.py`, so both always agree.

A row is flagged when one of its user turns is harmful in some category (the harm judge reads the turn and the
assistant's answer to it) and that answer complies (the default refusal judge). A harmful request answered with
a refusal is safety data, not an attack: it is listed, never counted.

The judges are the torch-free lexicon harm judge and rule refusal judge, so the cpu queue's workers screen
without loading torch.
"""

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from schemas.policy import ScreeningPolicy
from schemas.screening import HARM_CATEGORIES, CategoryCount, FileScreening, ScreenedRow, ScreeningSummary
from service.datasets import bounded_lines
from workers.evaluation.judges import default_judge
from workers.evaluation.judges.base import RefusalJudge
from workers.evaluation.judges.harm import HarmJudge, default_harm_judge

BLOCK_CODE = "training_data_blocked"
LINES_NAMED = 5  # flagged line numbers a job's message and summary name
SHARE_SLACK = 1e-9  # float slack on share thresholds, as the release gate has


@dataclass(frozen=True)
class RowScreen:
    """One harmful row: its categories, the deciding turn's reason, and whether it is flagged (the answer
    complies) or kept as safety data (the answer refuses)."""

    line: int
    categories: tuple[str, ...]
    confidence: float
    reason: str
    flagged: bool


def turns(messages: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(user turn, the assistant's answer) pairs: each assistant message with the user message before it."""
    prompt = None
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if not isinstance(content, str):
            continue
        if role == "user":
            prompt = content
        elif role == "assistant" and prompt is not None:
            yield prompt, content


def screen_row(line: int, messages: list[dict[str, Any]], harm: HarmJudge, refusal: RefusalJudge) -> RowScreen | None:
    """None when no turn is harmful. A flagged turn decides over a refused one."""
    kept: RowScreen | None = None
    for prompt, answer in turns(messages):
        verdict = harm.judge([prompt], [answer])[0]
        if not verdict.harmful:
            continue
        judged = refusal.judge([prompt], [answer])[0]
        if judged.answered:  # a partial refusal that answers anyway teaches the answer
            return RowScreen(line, verdict.categories, verdict.confidence,
                             f"{verdict.reason}; the answer complies ({judged.reason})", True)
        if kept is None:
            kept = RowScreen(line, verdict.categories, verdict.confidence,
                             f"{verdict.reason}; the answer refuses ({judged.reason}): safety data, not flagged",
                             False)
    return kept


@dataclass
class Tally:
    """What screening a file found. Keeps counts for every row but lists at most `listed_limit` harmful rows, so
    memory stays flat in file size."""

    listed_limit: int = 1000
    rows: int = 0
    flagged_rows: int = 0
    refused_rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    first_lines: list[int] = field(default_factory=list)
    listed: list[RowScreen] = field(default_factory=list)
    has_more: bool = False

    def add(self, screened: RowScreen | None) -> None:
        self.rows += 1
        if screened is None:
            return
        if screened.flagged:
            self.flagged_rows += 1
            self.counts.update(screened.categories)
            if len(self.first_lines) < LINES_NAMED:
                self.first_lines.append(screened.line)
        else:
            self.refused_rows += 1
        if len(self.listed) < self.listed_limit:
            self.listed.append(screened)
        else:
            self.has_more = True


def screen_rows(rows: Iterable[tuple[int, list[dict[str, Any]]]], listed_limit: int = 1000,
                harm: HarmJudge | None = None, refusal: RefusalJudge | None = None) -> Tally:
    """Screen (line number, messages) rows with the default judges unless others are given."""
    harm, refusal = harm or default_harm_judge(), refusal or default_judge()
    tally = Tally(listed_limit=listed_limit)
    for line, messages in rows:
        tally.add(screen_row(line, messages, harm, refusal))
    return tally


def jsonl_rows(handle: BinaryIO) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(line number, messages) of a stored training file, read line by line (it was validated at upload)."""
    for number, raw in enumerate(bounded_lines(handle), start=1):
        if not raw.strip():
            continue
        messages = json.loads(raw).get("messages")
        yield number, messages if isinstance(messages, list) else []


@dataclass(frozen=True)
class Outcome:
    """The policy's reading of a tally: "block", "flag" or "pass", and the categories over their thresholds."""

    decision: str
    exceeded: list[str]
    categories: list[CategoryCount]


def decide(tally: Tally, policy: ScreeningPolicy) -> Outcome:
    """A category is over its threshold when its flagged rows exceed both `max_rows` and `max_share` of the file.
    Over a threshold: "block" in block mode, else "flag"; any flagged row under the thresholds: "flag"."""
    categories = []
    for category in HARM_CATEGORIES:
        flagged = tally.counts.get(category, 0)
        share = flagged / tally.rows if tally.rows else 0.0
        threshold = policy.threshold(category)
        exceeded = flagged > threshold.max_rows and share > threshold.max_share + SHARE_SLACK
        categories.append(CategoryCount(category=category, flagged=flagged, share=round(share, 6),  # type: ignore[arg-type]
                                        max_rows=threshold.max_rows, max_share=threshold.max_share, exceeded=exceeded))
    exceeded = [c.category for c in categories if c.exceeded]
    if not policy.enabled:
        decision = "pass"
    elif exceeded and policy.mode == "block":
        decision = "block"
    elif tally.flagged_rows:
        decision = "flag"
    else:
        decision = "pass"
    return Outcome(decision, exceeded, categories)


def _counted(tally: Tally, categories: Iterable[str]) -> str:
    return ", ".join(f"{c} {tally.counts[c]}" for c in categories)


def findings(tally: Tally) -> str:
    """"3 of 200 rows ask for harmful content and the answer complies (malware 2, physical_harm 1; lines 4, 9,
    31)": what was flagged, for messages and events."""
    flagged = [c for c in HARM_CATEGORIES if tally.counts.get(c)]
    lines = ", ".join(str(n) for n in tally.first_lines)
    more = ", ..." if tally.flagged_rows > len(tally.first_lines) else ""
    verb = "asks" if tally.flagged_rows == 1 else "ask"
    return (f"{tally.flagged_rows} of {tally.rows} rows {verb} for harmful content and the answer complies "
            f"({_counted(tally, flagged)}; line{'s' if len(tally.first_lines) > 1 else ''} {lines}{more})")


def block_message(tally: Tally, outcome: Outcome, file_id: str) -> str:
    flagged = [c for c in HARM_CATEGORIES if tally.counts.get(c)]
    if outcome.exceeded == flagged:
        over = "each of these categories is" if len(flagged) > 1 else "this is"
    else:
        over = f"{', '.join(outcome.exceeded)} {'are' if len(outcome.exceeded) > 1 else 'is'}"
    return (f"Training file {file_id} was blocked by data screening: {findings(tally)}; {over} over this "
            f"service's screening thresholds. Remove or fix those rows (POST /v1/files/{file_id}/screen lists "
            f"every one) and create a new job.")


def summary(tally: Tally, outcome: Outcome) -> ScreeningSummary:
    return ScreeningSummary(decision=outcome.decision, rows=tally.rows,  # type: ignore[arg-type]
                            flagged_rows=tally.flagged_rows, counts=dict(sorted(tally.counts.items())),
                            exceeded=outcome.exceeded, lines=tally.first_lines)


def report(*, file_id: str, created_at: int, policy: ScreeningPolicy, policy_version: int, tally: Tally,
           outcome: Outcome) -> FileScreening:
    """The dry run's response."""
    return FileScreening(
        file_id=file_id, created_at=created_at, policy_version=policy_version, enabled=policy.enabled,
        mode=policy.mode, decision=outcome.decision, would_block=outcome.decision == "block",  # type: ignore[arg-type]
        rows=tally.rows, flagged_rows=tally.flagged_rows, refused_rows=tally.refused_rows,
        counts=dict(sorted(tally.counts.items())), categories=outcome.categories,
        message=block_message(tally, outcome, file_id) if outcome.decision == "block" else None,
        data=[ScreenedRow(line=r.line, categories=list(r.categories), confidence=r.confidence,  # type: ignore[arg-type]
                          reason=r.reason, flagged=r.flagged) for r in tally.listed],
        has_more=tally.has_more)


def screen_file(handle: BinaryIO, policy: ScreeningPolicy) -> tuple[Tally, Outcome]:
    tally = screen_rows(jsonl_rows(handle), listed_limit=policy.report_rows)
    return tally, decide(tally, policy)
