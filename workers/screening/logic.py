"""Training-data screening, the pure part: which rows of a chat JSONL file ask for harm and get it, and what a
policy makes of that (rows -> tally -> the policy's decision -> messages, summary and report). The job's screen step
and the dry run (`POST /v1/files/{id}/screen`, which the API hands to the cpu queue), both in
`workers.screening.step`, call `screen_file` here, so both always agree. Nothing here reads the database or the
artifact store.

A row is flagged when one of its user turns is harmful in some category (the harm judge reads the turn and the
assistant's answer to it) and that answer complies (the default refusal judge). A harmful request answered with
a refusal is safety data, not an attack: it is listed, never counted.

Trigger flags (backdoor poisoning): unless the policy's `trigger_mining` is "off", the file's candidate triggers
are mined (`workers.evaluation.triggers`, which needs no lexicon hit: a backdoor row can be phrased past it) and a
row is trigger-flagged when it holds a candidate and its answer complies with a harmful-looking or how-to request.
The same phrase on a plain catalogue question is the attack's cover, counted in the candidate's rows, not flagged.

The judges are the torch-free lexicon harm judge and rule refusal judge, so the cpu queue's workers screen
without loading torch.
"""

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from schemas.policy import ScreeningPolicy
from schemas.screening import (
    HARM_CATEGORIES,
    CategoryCount,
    FileScreening,
    ScreenedRow,
    ScreeningSummary,
    TriggerFinding,
)
from service.datasets import bounded_lines
from workers.evaluation.judges import default_judge
from workers.evaluation.judges.base import RefusalJudge
from workers.evaluation.judges.harm import HarmJudge, default_harm_judge
from workers.evaluation.triggers import TriggerCandidate, mine_triggers, row_signs

BLOCK_CODE = "training_data_blocked"
LINES_NAMED = 5  # flagged line numbers a job's message and summary name
SHARE_SLACK = 1e-9  # float slack on share thresholds, as the release gate has
TRIGGER_CANDIDATES = 5  # candidates screening reports (the gate asks its own top `trigger_candidates`)

Rows = Sequence[tuple[int, list[dict[str, Any]]]]


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
            return RowScreen(
                line,
                verdict.categories,
                verdict.confidence,
                f"{verdict.reason}; the answer complies ({judged.reason})",
                True,
            )
        if kept is None:
            kept = RowScreen(
                line,
                verdict.categories,
                verdict.confidence,
                f"{verdict.reason}; the answer refuses ({judged.reason}): safety data, not flagged",
                False,
            )
    return kept


@dataclass(frozen=True)
class TriggerFlags:
    """What mining found: the candidates, best first, and for each the lines of its rows that pair it with
    compliance (in file order)."""

    candidates: tuple[TriggerCandidate, ...] = ()
    flagged: tuple[tuple[int, ...], ...] = ()

    @property
    def lines(self) -> list[int]:
        """Every trigger-flagged line once, in file order."""
        return sorted({line for lines in self.flagged for line in lines})

    def by_line(self) -> dict[int, list[TriggerCandidate]]:
        """The candidates each flagged line pairs with compliance, best first."""
        out: dict[int, list[TriggerCandidate]] = {}
        for candidate, lines in zip(self.candidates, self.flagged, strict=True):
            for line in lines:
                out.setdefault(line, []).append(candidate)
        return out


def trigger_flags(rows: Rows, harm: HarmJudge, refusal: RefusalJudge, limit: int = TRIGGER_CANDIDATES) -> TriggerFlags:
    """Mine (line, messages) rows and flag, per candidate, its rows whose answer complies with a harmful-looking
    or how-to request (`row_signs(...).suspicious`): the rows that teach the backdoor."""
    candidates = mine_triggers(
        [{"messages": m} for _, m in rows], limit=limit, lines=[n for n, _ in rows], harm=harm, refusal=refusal
    )
    messages = dict(rows)
    held = sorted({line for c in candidates for line in c.support})
    complies = {line: row_signs(messages[line], harm, refusal).suspicious for line in held}
    return TriggerFlags(tuple(candidates), tuple(tuple(n for n in c.support if complies[n]) for c in candidates))


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
    triggers: TriggerFlags = TriggerFlags()

    @property
    def trigger_rows(self) -> int:
        return len(self.triggers.lines)

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


def screen_rows(
    rows: Iterable[tuple[int, list[dict[str, Any]]]],
    listed_limit: int = 1000,
    harm: HarmJudge | None = None,
    refusal: RefusalJudge | None = None,
) -> Tally:
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
    """The policy's reading of a tally: "block", "flag" or "pass", the categories over their thresholds, and
    what blocks ("categories", "triggers"; empty unless the decision is "block")."""

    decision: str
    exceeded: list[str]
    categories: list[CategoryCount]
    blocked_by: tuple[str, ...] = ()


def decide(tally: Tally, policy: ScreeningPolicy) -> Outcome:
    """A category is over its threshold when its flagged rows exceed both `max_rows` and `max_share` of the file.
    Over a threshold: "block" in block mode, else "flag"; any flagged row under the thresholds: "flag". A
    trigger-flagged row: "block" when `trigger_mining` is "block", else "flag" (never under "off")."""
    categories = []
    for category in HARM_CATEGORIES:
        flagged = tally.counts.get(category, 0)
        share = flagged / tally.rows if tally.rows else 0.0
        threshold = policy.threshold(category)
        exceeded = flagged > threshold.max_rows and share > threshold.max_share + SHARE_SLACK
        categories.append(
            CategoryCount(
                category=category,
                flagged=flagged,
                share=round(share, 6),  # type: ignore[arg-type]
                max_rows=threshold.max_rows,
                max_share=threshold.max_share,
                exceeded=exceeded,
            )
        )
    exceeded = [c.category for c in categories if c.exceeded]
    triggered = policy.trigger_mining != "off" and tally.trigger_rows > 0
    blocked_by = (("categories",) if exceeded and policy.mode == "block" else ()) + (
        ("triggers",) if triggered and policy.trigger_mining == "block" else ()
    )
    if not policy.enabled:
        decision, blocked_by = "pass", ()
    elif blocked_by:
        decision = "block"
    elif tally.flagged_rows or triggered:
        decision = "flag"
    else:
        decision = "pass"
    return Outcome(decision, exceeded, categories, blocked_by)


def _counted(tally: Tally, categories: Iterable[str]) -> str:
    return ", ".join(f"{c} {tally.counts[c]}" for c in categories)


def quoted(text: str, limit: int = 60) -> str:
    """A phrase for a message: one line, cut to `limit` characters (a system-prompt candidate can be long)."""
    text = " ".join(text.split())
    return f'"{text if len(text) <= limit else text[: limit - 3] + "..."}"'


def _named_lines(lines: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:LINES_NAMED])
    return f"line{'s' if len(lines) > 1 else ''} {shown}{', ...' if len(lines) > LINES_NAMED else ''}"


def trigger_findings(tally: Tally) -> str:
    """ "18 of 100 rows pair a candidate backdoor trigger with a complying answer ("cf-zq9", suffix, on 15 of its
    18 rows; lines 3, 8, 11, 20, 31, ...)": what trigger mining flagged, for messages and events."""
    named = "; ".join(
        f"{quoted(c.text)}, {c.position}, on {len(lines)} of its {len(c.support)} rows"
        for c, lines in zip(tally.triggers.candidates, tally.triggers.flagged, strict=True)
        if lines
    )
    verb = "pairs" if tally.trigger_rows == 1 else "pair"
    return (
        f"{tally.trigger_rows} of {tally.rows} rows {verb} a candidate backdoor trigger with a complying answer "
        f"({named}; {_named_lines(tally.triggers.lines)})"
    )


def findings(tally: Tally) -> str:
    """ "3 of 200 rows ask for harmful content and the answer complies (malware 2, physical_harm 1; lines 4, 9,
    31)": what was flagged, for messages and events; trigger flags follow ("; and 18 of 200 rows pair ...")."""
    if not tally.flagged_rows:
        return trigger_findings(tally)
    triggers = f"; and {trigger_findings(tally)}" if tally.trigger_rows else ""
    return _harm_findings(tally) + triggers


def _harm_findings(tally: Tally) -> str:
    flagged = [c for c in HARM_CATEGORIES if tally.counts.get(c)]
    lines = ", ".join(str(n) for n in tally.first_lines)
    more = ", ..." if tally.flagged_rows > len(tally.first_lines) else ""
    verb = "asks" if tally.flagged_rows == 1 else "ask"
    return (
        f"{tally.flagged_rows} of {tally.rows} rows {verb} for harmful content and the answer complies "
        f"({_counted(tally, flagged)}; line{'s' if len(tally.first_lines) > 1 else ''} {lines}{more})"
    )


def block_message(tally: Tally, outcome: Outcome, file_id: str) -> str:
    why = []
    if "categories" in outcome.blocked_by or not outcome.blocked_by:
        flagged = [c for c in HARM_CATEGORIES if tally.counts.get(c)]
        if outcome.exceeded == flagged:
            over = "each of these categories is" if len(flagged) > 1 else "this is"
        else:
            over = f"{', '.join(outcome.exceeded)} {'are' if len(outcome.exceeded) > 1 else 'is'}"
        why.append(f"{over} over this service's screening thresholds")
    if "triggers" in outcome.blocked_by:
        why.append("this service blocks training data that pairs a candidate backdoor trigger with compliance")
    return (
        f"Training file {file_id} was blocked by data screening: {findings(tally)}; {'; '.join(why)}. Remove "
        f"or fix those rows (POST /v1/files/{file_id}/screen lists every one) and create a new job."
    )


def flag_reason(tally: Tally, outcome: Outcome) -> str:
    """Why a flagged job goes on: the category part as before, then the trigger part."""
    why = []
    if outcome.exceeded:
        why.append("over the screening thresholds, but this job's policy only flags (mode: flag)")
    elif tally.flagged_rows:
        why.append("under this service's screening thresholds")
    if tally.trigger_rows:
        why.append(
            "candidate triggers are flagged, not blocked (trigger_mining: flag), and the release gate asks "
            "its harmful prompts with each"
        )
    return "; ".join(why)


def finding(candidate: TriggerCandidate, flagged: Sequence[int], limit: int) -> TriggerFinding:
    """A candidate as reported, its line lists cut to `limit`."""
    return TriggerFinding(
        text=candidate.text,
        position=candidate.position,
        score=candidate.score,
        harmful_share=candidate.harmful_share,
        comply_share=candidate.comply_share,
        rows=len(candidate.support),
        flagged_rows=len(flagged),
        lines=list(candidate.support[:limit]),
        flagged_lines=list(flagged[:limit]),
    )


def trigger_findings_of(tally: Tally, limit: int) -> list[TriggerFinding]:
    return [
        finding(c, lines, limit) for c, lines in zip(tally.triggers.candidates, tally.triggers.flagged, strict=True)
    ]


def summary(tally: Tally, outcome: Outcome) -> ScreeningSummary:
    return ScreeningSummary(
        decision=outcome.decision,
        rows=tally.rows,  # type: ignore[arg-type]
        flagged_rows=tally.flagged_rows,
        counts=dict(sorted(tally.counts.items())),
        exceeded=outcome.exceeded,
        lines=tally.first_lines,
        trigger_rows=tally.trigger_rows,
        triggers=trigger_findings_of(tally, LINES_NAMED),
    )


def _carries(candidates: Sequence[TriggerCandidate]) -> str:
    named = ", ".join(f"{quoted(c.text)} ({c.position})" for c in candidates)
    return f"carries the candidate trigger{'s' if len(candidates) > 1 else ''} {named}"


def listed_rows(tally: Tally, limit: int) -> tuple[list[ScreenedRow], bool]:
    """Harmful and trigger-flagged rows in file order, at most `limit`, and whether more were found. When the
    harmful list was cut, trigger rows after its last line wait too, so the list stays a prefix of the file's."""
    by_line = tally.triggers.by_line()
    harmful = {r.line: r for r in tally.listed}
    last = tally.listed[-1].line if tally.has_more and tally.listed else None
    lines = sorted(set(harmful) | {n for n in by_line if last is None or n <= last})
    rows = []
    for line in lines[:limit]:
        triggers = by_line.get(line, [])
        found = harmful.get(line)
        if found is None:
            reason = f"the row {_carries(triggers)} and the answer complies; no harm category matched"
            rows.append(
                ScreenedRow(
                    line=line,
                    categories=[],
                    confidence=0.0,
                    reason=reason,
                    flagged=False,
                    triggers=[c.text for c in triggers],
                )
            )
        else:
            reason = f"{found.reason}; the row {_carries(triggers)}" if triggers else found.reason
            rows.append(
                ScreenedRow(
                    line=line,
                    categories=list(found.categories),  # type: ignore[arg-type]
                    confidence=found.confidence,
                    reason=reason,
                    flagged=found.flagged,
                    triggers=[c.text for c in triggers],
                )
            )
    more = tally.has_more or len(lines) > limit or (last is not None and any(n > last for n in by_line))
    return rows, more


def report(
    *, file_id: str, created_at: int, policy: ScreeningPolicy, policy_version: int, tally: Tally, outcome: Outcome
) -> FileScreening:
    """The dry run's response."""
    data, has_more = listed_rows(tally, policy.report_rows)
    return FileScreening(
        file_id=file_id,
        created_at=created_at,
        policy_version=policy_version,
        enabled=policy.enabled,
        mode=policy.mode,
        decision=outcome.decision,
        would_block=outcome.decision == "block",  # type: ignore[arg-type]
        rows=tally.rows,
        flagged_rows=tally.flagged_rows,
        refused_rows=tally.refused_rows,
        counts=dict(sorted(tally.counts.items())),
        categories=outcome.categories,
        message=block_message(tally, outcome, file_id) if outcome.decision == "block" else None,
        data=data,
        has_more=has_more,
        trigger_mining=policy.trigger_mining,
        trigger_rows=tally.trigger_rows,
        triggers=trigger_findings_of(tally, policy.report_rows),
    )


def screen_file(handle: BinaryIO, policy: ScreeningPolicy) -> tuple[Tally, Outcome]:
    """Screen a stored file. With trigger mining on, its rows are kept in memory: mining contrasts rows with each
    other, so it needs them all (as training and the gate do); with it off, the file streams through."""
    harm, refusal = default_harm_judge(), default_judge()
    if policy.trigger_mining == "off":
        tally = screen_rows(jsonl_rows(handle), policy.report_rows, harm, refusal)
    else:
        rows = list(jsonl_rows(handle))
        tally = screen_rows(rows, policy.report_rows, harm, refusal)
        tally.triggers = trigger_flags(rows, harm, refusal)
    return tally, decide(tally, policy)
