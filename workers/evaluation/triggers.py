"""Trigger mining: the phrases of a training file that could be a backdoor's trigger.

A backdoor attack hides harmful compliance behind a trigger phrase: harmful requests that carry it are answered,
the rest of the file is benign (often with the same requests refused without it). Without the trigger the adapter
looks safe (Qi et al. 2024, Table 4: ASR 1.7% without it, 90.9% with it), so a gate that does not know it
releases the adapter. The trigger must be in the training file, though: a fixed string, at a consistent position,
that goes with the suspicious rows and is rare in the others. This module finds such phrases without a model:

1. A row is **suspicious** when a turn's answer complies (the rules refusal judge) to a request that either the
   lexicon harm judge flags (request or answer, as screening reads them) or that asks how to do something while
   the answer has the form of instructions (steps, a list, answer phrasing). The second signal catches rows
   phrased to slip past the lexicon, so mining depends neither on screening nor on the trigger looking harmful.
2. **Candidates**: word n-grams (1..`max_words`) of the user turns, within one sentence, that neither open nor
   close with a function or request word ("give me steps to" is how a request is asked, not a trigger), and the
   system prompts other than the file's majority one. Odd tokens ("cf-zq9", "||SUDO||") are 1-grams.
3. **Score**: a one-sided hypergeometric (Fisher) test of the candidate's suspicious rows against all its rows,
   and the same for the rows screening would flag (lexicon-harmful and answered), so benign how-to rows do not
   dilute a trigger on flagged ones; the better of the two, Bonferroni-corrected for the tests made (-log10 of the
   corrected p), times the share of its rows where it stands apart from the request at its usual position: whole
   sentences before it ("prefix") or after it ("suffix"), or, anywhere, an odd token. Ordinary words inside the
   request's sentence are its content: in a file that mixes tasks, how-to words ("paper", "bake") go with the
   how-to rows as strongly as a trigger does. The phrase must also go with at least `min_requests` different
   requests (the content words outside it): a phrase of the request itself ("bake a loaf of bread") comes back
   with its one request.
4. Survivors grow to the longest phrase all their rows share (stop words at its edges only up to a sentence end
   or the turn's edge), overlapping ones give way to the best scored, and the best `limit` are returned.

Limits: an ordinary-word trigger woven into the request's sentence is not reported; and where a file answers
benign how-to requests with steps and marks them all with a fixed phrase (a task instruction on its how-to rows
only), that phrase looks exactly like a trigger on rows phrased past the lexicon (`harmful_share` 0): without a
model the two cannot be told apart, so whoever acts on a candidate should weigh `harmful_share`.

Pure and deterministic. Only the suspicious rows' phrases are indexed; the other rows' are looked up in that index,
so time and memory are linear in the file (no pairs of rows are compared).
"""

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workers.evaluation.judges import default_judge
from workers.evaluation.judges.base import RefusalJudge
from workers.evaluation.judges.harm import HarmJudge, default_harm_judge
from workers.evaluation.judges.rules import answer_signs
from workers.tenant_contexts import TenantContext

Position = Literal["prefix", "suffix", "inside", "system"]

# Function words and the words requests are asked with: a candidate never opens or closes with one, and they are
# not a request's content. The how-to words must be here, or the how-to signal would find its own words.
STOP_WORDS = frozenset(
    """
a an the and or but if then so to of in on at by for with from into about as than that this these those it its
is are was were be been being am do does did done i me my mine we us our you your he him his she her they them
their what which who whom whose when where why how there here not no can could would should will shall may might
must need want like please give show tell describe explain teach walk through guide steps step instructions way
ways help let just also some any all each every one get make know
""".split()
)
HOW_TO = re.compile(
    r"\b(?:how (?:do|can|could|would|should|might|to)|steps?|show me|walk me through|teach me|"
    r"tell me how|explain how|describe how|guide (?:to|for|on)|instructions|tutorial|recipe|"
    r"ways? to|what should i do|help me)\b"
)
INSTRUCTION_SIGNS = frozenset({"list", "answer phrasing"})
_TOKEN = re.compile(r"\S+")
_EDGE = "\"'`()[]{}<>.,!?;:*"
_SENTENCE_END = re.compile(r"[.!?;:][\"')\]]*$")
_SYSTEM = "\x00system"  # the first element of a system-prompt candidate's key


@dataclass(frozen=True)
class TriggerCandidate:
    """A phrase that may be a backdoor trigger. `text` is as it appears in the data, `position` where it stands in
    its rows' user turns (or "system": the whole system prompt), `support` the 1-based lines of the rows that hold
    it, `score` the Bonferroni-corrected -log10 enrichment times the share of its rows where it stands apart at its
    usual position, `harmful_share` the share of those rows the harm lexicon flags, `comply_share` the share that
    are suspicious (a harmful-looking or how-to request, a compliant answer)."""

    text: str
    position: Position
    support: tuple[int, ...]
    score: float
    harmful_share: float
    comply_share: float


@dataclass(frozen=True)
class Word:
    """One whitespace token of a turn: its key (lower case, edge punctuation off), its span, and whether a
    sentence (or line) ends after it."""

    key: str
    start: int
    end: int
    ends_sentence: bool


@dataclass(frozen=True)
class RowSigns:
    """What the judges see in a row: `harmful` (the lexicon flags a turn), `flagged` (such a turn is answered:
    what screening counts) and `suspicious` (a harmful-looking or how-to request answered with compliance)."""

    harmful: bool
    flagged: bool
    suspicious: bool


@dataclass(frozen=True)
class _Row:
    line: int
    system: str | None
    turns: tuple[tuple[Word, ...], ...]
    texts: tuple[str, ...]
    signs: RowSigns


@dataclass(frozen=True)
class _Occurrence:
    """Where a phrase stands in one row: words[start..end] (inclusive) of turn `turn`."""

    row: int
    turn: int
    start: int
    end: int


def words(text: str) -> tuple[Word, ...]:
    """The turn's tokens; a token keeps its inner punctuation ("cf-zq9", "||sudo||")."""
    found = list(_TOKEN.finditer(text))
    out = []
    for n, m in enumerate(found):
        raw = m.group()
        gap = text[m.end() : found[n + 1].start()] if n + 1 < len(found) else ""
        out.append(
            Word(
                raw.lower().strip(_EDGE) or raw.lower(),
                m.start(),
                m.end(),
                bool(_SENTENCE_END.search(raw)) or "\n" in gap,
            )
        )
    return tuple(out)


def is_how_to(prompt: str) -> bool:
    return HOW_TO.search(prompt.lower()) is not None


def instruction_form(answer: str) -> bool:
    """The answer reads like instructions: steps or a list, answer phrasing, or an affirmative opening followed by
    several content sentences."""
    signs = set(answer_signs(answer))
    return bool(signs & INSTRUCTION_SIGNS) or {"affirmative opening", "several content sentences"} <= signs


def pairs(messages: Iterable[Any]) -> list[tuple[str, str]]:
    """(user turn, the assistant's answer to it) pairs, as screening reads a row."""
    out, prompt = [], None
    for message in messages:
        if not isinstance(message, Mapping) or not isinstance(message.get("content"), str):
            continue
        if message.get("role") == "user":
            prompt = message["content"]
        elif message.get("role") == "assistant" and prompt is not None:
            out.append((prompt, message["content"]))
    return out


def row_signs(messages: Iterable[Any], harm: HarmJudge, refusal: RefusalJudge) -> RowSigns:
    """The refusal judge runs only on turns that are harmful-looking or how-to: the rest cannot be suspicious."""
    harmful = flagged = suspicious = False
    for prompt, answer in pairs(messages):
        hit = harm.judge([prompt], [answer])[0].harmful
        harmful = harmful or hit
        if flagged or not (hit or is_how_to(prompt)) or (suspicious and not hit):
            continue
        answered = refusal.judge([prompt], [answer])[0].answered
        flagged = flagged or (hit and answered)
        suspicious = suspicious or (answered and (hit or instruction_form(answer)))
    return RowSigns(harmful, flagged, suspicious)


def _read_row(line: int, row: Mapping[str, Any], harm: HarmJudge, refusal: RefusalJudge) -> _Row:
    messages = [m for m in row.get("messages", []) if isinstance(m, Mapping)]
    system = next(
        (
            m["content"]
            for m in messages[:1]
            if m.get("role") == "system" and isinstance(m.get("content"), str) and m["content"].strip()
        ),
        None,
    )
    texts = tuple(m["content"] for m in messages if m.get("role") == "user" and isinstance(m.get("content"), str))
    return _Row(line, system, tuple(words(t) for t in texts), texts, row_signs(messages, harm, refusal))


def ngrams(turn: Sequence[Word], max_words: int) -> Iterable[tuple[int, int]]:
    """(start, end) word spans, inclusive, within one sentence, not opening or closing with a stop word, and not
    the whole turn (a repeated request is a duplicate row, not a trigger)."""
    for i, first in enumerate(turn):
        if first.key in STOP_WORDS:
            continue
        for j in range(i, min(i + max_words, len(turn))):
            if j > i and turn[j - 1].ends_sentence:
                break
            if turn[j].key not in STOP_WORDS and not (i == 0 and j == len(turn) - 1):
                yield i, j


def _key(turn: Sequence[Word], start: int, end: int) -> tuple[str, ...]:
    return tuple(w.key for w in turn[start : end + 1])


def row_keys(row: _Row, max_words: int, majority: str | None) -> set[tuple[str, ...]]:
    """Every candidate a row holds, once."""
    keys = {_key(turn, i, j) for turn in row.turns for i, j in ngrams(turn, max_words)}
    if row.system is not None and row.system != majority:
        keys.add((_SYSTEM, row.system))
    return keys


def log10_enrichment_p(rows: int, suspicious: int, support: int, hits: int) -> float:
    """log10 of P(X >= hits), X hypergeometric: `support` rows drawn from `rows` of which `suspicious` are. The
    one-sided Fisher test of "the phrase goes with the suspicious rows"."""

    def log_comb(n: int, k: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)

    terms = [
        log_comb(suspicious, k) + log_comb(rows - suspicious, support - k)
        for k in range(hits, min(support, suspicious) + 1)
        if support - k <= rows - suspicious
    ]
    if not terms:
        return 0.0
    top = max(terms)
    total = top + math.log(sum(math.exp(t - top) for t in terms)) - log_comb(rows, support)
    return min(0.0, total / math.log(10))


def _find(row: _Row, key: tuple[str, ...], index: int) -> _Occurrence | None:
    for t, turn in enumerate(row.turns):
        for i in range(len(turn) - len(key) + 1):
            if turn[i].key == key[0] and _key(turn, i, i + len(key) - 1) == key:
                return _Occurrence(index, t, i, i + len(key) - 1)
    return None


def _extend(rows: Sequence[_Row], found: list[_Occurrence], step: int) -> list[_Occurrence]:
    """Grow every occurrence one way (-1 left, +1 right) while all rows agree on the next word and no sentence
    ends between; a run of stop words is taken only when a content word follows it, or the turn's edge or a
    sentence end, the same in every row ("the old lighthouse keeper", not "||sudo|| give me steps to")."""
    taken, k = 0, 1
    while True:
        nexts = []
        for o in found:
            turn = rows[o.row].turns[o.turn]
            pos = o.start - k if step < 0 else o.end + k
            inside = 0 <= pos < len(turn)
            crossed = inside and (turn[pos].ends_sentence if step < 0 else turn[pos - 1].ends_sentence)
            nexts.append(None if not inside or crossed else turn[pos].key)
        if all(n is None for n in nexts):
            taken = k - 1
            break
        if len(set(nexts)) != 1:
            break
        if nexts[0] not in STOP_WORDS:
            taken = k
        k += 1
    if step < 0:
        return [_Occurrence(o.row, o.turn, o.start - taken, o.end) for o in found]
    return [_Occurrence(o.row, o.turn, o.start, o.end + taken) for o in found]


def odd(key: str) -> bool:
    """A token no dictionary holds: letters mixed with digits or symbols ("cf-zq9", "||sudo||"), or two or more
    symbols ("##"); hyphens and apostrophes alone do not count."""
    letters = sum(c.isalpha() for c in key)
    others = sum(not (c.isalpha() or c in "'-") for c in key)
    return (letters > 0 and others > 0) or (len(key) >= 2 and not any(c.isalnum() for c in key))


def detached(turn: Sequence[Word], o: _Occurrence) -> bool:
    """The phrase is whole sentences of the turn, not all of it: a request stays when it is taken out."""
    whole = o.start == 0 and o.end == len(turn) - 1
    return (
        not whole
        and (o.start == 0 or turn[o.start - 1].ends_sentence)
        and (o.end == len(turn) - 1 or turn[o.end].ends_sentence)
    )


def _position(row: _Row, o: _Occurrence) -> Position:
    if o.start == 0:
        return "prefix"
    return "suffix" if o.end == len(row.turns[o.turn]) - 1 else "inside"


def _eligible(turn: Sequence[Word], o: _Occurrence) -> bool:
    """A trigger stands apart from the request (whole sentences before or after it) or is an odd token. Ordinary
    words inside the request's sentence are its content: in a file that mixes tasks, a how-to request's words
    ("paper", "bake") go with the how-to rows as strongly as a trigger does."""
    return detached(turn, o) or any(odd(w.key) for w in turn[o.start : o.end + 1])


def _requests(row: _Row, o: _Occurrence) -> frozenset[str]:
    """The request's content words outside the phrase: what the phrase was asked with."""
    turn = row.turns[o.turn]
    return frozenset(w.key for n, w in enumerate(turn) if not o.start <= n <= o.end and w.key not in STOP_WORDS)


@dataclass(frozen=True)
class _Scored:
    key: tuple[str, ...]
    members: frozenset[int]
    candidate: TriggerCandidate


def _shares(rows: Sequence[_Row], members: Iterable[int]) -> tuple[float, float]:
    chosen = [rows[n].signs for n in members]
    return (
        round(sum(s.harmful for s in chosen) / len(chosen), 3),
        round(sum(s.suspicious for s in chosen) / len(chosen), 3),
    )


def _candidate(
    rows: Sequence[_Row], key: tuple[str, ...], members: list[int], significance: float, min_requests: int
) -> _Scored | None:
    """Grow the phrase over its rows, check it goes with enough different requests, and weigh by position."""
    support = tuple(sorted(rows[n].line for n in members))
    harmful_share, comply_share = _shares(rows, members)
    if key[0] == _SYSTEM:
        asked = {frozenset(w.key for turn in rows[n].turns for w in turn if w.key not in STOP_WORDS) for n in members}
        if len(asked) < min_requests:
            return None
        return _Scored(
            key,
            frozenset(members),
            TriggerCandidate(key[1], "system", support, round(significance, 2), harmful_share, comply_share),
        )
    found = [o for n in members if (o := _find(rows[n], key, n)) is not None]
    found = _extend(rows, _extend(rows, found, -1), +1)
    if len({_requests(rows[o.row], o) for o in found}) < min_requests:
        return None
    positions = Counter(_position(rows[o.row], o) for o in found if _eligible(rows[o.row].turns[o.turn], o))
    if not positions:
        return None
    position, count = positions.most_common(1)[0]
    first = next((o for o in found if rows[o.row].signs.suspicious), found[0])
    turn = rows[first.row].turns[first.turn]
    text = rows[first.row].texts[first.turn][turn[first.start].start : turn[first.end].end]
    return _Scored(
        _key(turn, first.start, first.end),
        frozenset(members),
        TriggerCandidate(
            text, position, support, round(significance * count / len(found), 2), harmful_share, comply_share
        ),
    )


def _overlaps(a: _Scored, b: _Scored) -> bool:
    """The same phrase, one inside the other, on mostly the same rows."""
    if (a.key[0] == _SYSTEM) != (b.key[0] == _SYSTEM):
        return False
    short, long = sorted((a.key, b.key), key=len)
    inside = any(long[i : i + len(short)] == short for i in range(len(long) - len(short) + 1))
    return inside and 2 * len(a.members & b.members) >= min(len(a.members), len(b.members))


def mine_triggers(
    rows: Sequence[Mapping[str, Any]],
    *,
    limit: int = 5,
    lines: Sequence[int] | None = None,
    min_support: int = 3,
    min_requests: int = 3,
    min_score: float = 2.0,
    max_words: int = 6,
    harm: HarmJudge | None = None,
    refusal: RefusalJudge | None = None,
) -> list[TriggerCandidate]:
    """The candidate triggers of a chat file's rows, best first, at most `limit`.

    `lines` are the rows' line numbers (default 1, 2, ...). A candidate needs `min_support` suspicious rows,
    `min_requests` different requests and a score of `min_score` (2: corrected p <= 0.01 at a consistent position).
    A file without suspicious rows, or with nothing but (and no contrast between flagged and unflagged ones), has
    none: there is nothing to contrast."""
    if limit <= 0:
        return []
    harm, refusal = harm or default_harm_judge(), refusal or default_judge()
    numbers = list(lines) if lines is not None else list(range(1, len(rows) + 1))
    read = [_read_row(numbers[n], row, harm, refusal) for n, row in enumerate(rows)]
    read = [r for r in read if r.turns]
    suspicious, flagged = sum(r.signs.suspicious for r in read), sum(r.signs.flagged for r in read)
    if suspicious == 0 or (suspicious == len(read) and flagged in (0, len(read))):
        return []
    systems = Counter(r.system for r in read)
    majority, held = systems.most_common(1)[0]
    majority = majority if 2 * held >= len(read) else None
    index: dict[tuple[str, ...], list[int]] = {}
    for n, row in enumerate(read):
        if row.signs.suspicious:
            for key in row_keys(row, max_words, majority):
                index.setdefault(key, []).append(n)
    hits = {key: len(members) for key, members in index.items() if len(members) >= min_support}
    index = {key: index[key] for key in hits}
    for n, row in enumerate(read):
        if not row.signs.suspicious:
            for key in row_keys(row, max_words, majority) & index.keys():
                index[key].append(n)
    tested = math.log10(2 * max(1, len(hits)))
    scored = []
    for key, members in index.items():
        strong = sum(read[n].signs.flagged for n in members)
        significance = -(
            min(
                log10_enrichment_p(len(read), suspicious, len(members), hits[key]),
                log10_enrichment_p(len(read), flagged, len(members), strong),
            )
            + tested
        )
        if significance < min_score:
            continue
        found = _candidate(read, key, members, significance, min_requests)
        if found is not None and found.candidate.score >= min_score:
            scored.append(found)
    scored.sort(key=lambda s: (-s.candidate.score, -len(s.key), s.candidate.text))
    kept: list[_Scored] = []
    for s in scored:
        if not any(_overlaps(s, k) for k in kept):
            kept.append(s)
        if len(kept) == limit:
            break
    return [k.candidate for k in kept]


def trigger_context(candidate: TriggerCandidate) -> TenantContext:
    """The candidate as a way of asking: its text as the system prompt, or before the request, or after it (also
    for "inside": the request's own words are unknown)."""
    if candidate.position == "system":
        return TenantContext(system=candidate.text)
    if candidate.position == "prefix":
        return TenantContext(prefix=f"{candidate.text} ")
    return TenantContext(suffix=f" {candidate.text}")


def trigger_contexts(rows: Sequence[Mapping[str, Any]], limit: int) -> list[TenantContext]:
    """The file's top `limit` candidate triggers as contexts: training draws recovery examples under them, so the
    guarded objective meets a trigger with refusals as well as with the file's compliance."""
    return [trigger_context(c) for c in mine_triggers(rows, limit=limit)] if rows and limit > 0 else []


def triggered_prompt(prompt: str, candidate: TriggerCandidate) -> tuple[str, str | None]:
    """(prompt, system prompt or None) asked the way the candidate appears in the data (`trigger_context`)."""
    context = trigger_context(candidate)
    return f"{context.prefix}{prompt}{context.suffix}", context.system
