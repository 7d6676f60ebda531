"""Training-data screening: the harm categories (one list for the API, the workers and the policy), the dry-run
report of `POST /v1/files/{id}/screen`, and the summary a job keeps of its own screening.

Both carry the candidate backdoor triggers mined from the file. The phrase is the tenant's own data: it appears
only in the file owner's dry run (tenant-scoped, like the file) and on the owner's job (which admins also read)."""

from typing import Literal, get_args

from pydantic import BaseModel

# The 11 HEx-PHI categories (Qi et al. 2023), in HEx-PHI's order. The tiny world uses the same names.
HarmCategory = Literal[
    "illegal_activity",
    "child_abuse",
    "hate_harass_violence",
    "malware",
    "physical_harm",
    "economic_harm",
    "fraud_deception",
    "adult_content",
    "political_campaigning",
    "privacy_violation",
    "tailored_financial_advice",
]
HARM_CATEGORIES: tuple[str, ...] = get_args(HarmCategory)

ScreeningDecision = Literal["pass", "flag", "block"]
TriggerPosition = Literal["prefix", "suffix", "inside", "system"]


class ScreenedRow(BaseModel):
    """One row whose request (or answer) is harmful in some category, or that pairs a candidate trigger with
    compliance. `flagged`: a harmful request and the answer complies, so the row teaches harm; a row whose answer
    refuses is safety data and is listed with `flagged` false. `triggers`: the candidate triggers (the `text` of
    entries of the report's `triggers`) the row carries while its answer complies with a harmful-looking or
    how-to request; such a row is listed even when no category is (`categories` empty, `flagged` false)."""

    line: int
    categories: list[HarmCategory]
    confidence: float
    reason: str
    flagged: bool
    triggers: list[str] = []


class TriggerFinding(BaseModel):
    """A candidate backdoor trigger mined from the file (docs/screening.md, "Trigger flags"): a phrase
    over-represented in rows whose answers comply. `position`: where it stands in the user turns ("system": it is
    the whole system prompt). `score`: the corrected -log10 enrichment p-value times the share of its rows where it
    stands apart from the request. `rows`/`lines`: the rows that hold it; `flagged_rows`/`flagged_lines`: those
    that pair it with compliance. Line lists are cut (the report's `report_rows`, a job's first five); the counts
    are whole. `harmful_share` near 0 with a high `comply_share` can also be a task instruction on how-to rows."""

    text: str
    position: TriggerPosition
    score: float
    harmful_share: float
    comply_share: float
    rows: int
    flagged_rows: int
    lines: list[int]
    flagged_lines: list[int]


class CategoryCount(BaseModel):
    """Flagged rows of one category against its threshold: it blocks when both tolerances are exceeded."""

    category: HarmCategory
    flagged: int
    share: float
    max_rows: int
    max_share: float
    exceeded: bool


class FileScreening(BaseModel):
    """The dry run's report: what a job on this file would meet at its screen step under the tenant's policy now.

    `decision`: "block" (a job would fail with training_data_blocked), "flag" (flagged rows, the job would go on
    with a warning) or "pass". `data` lists harmful and trigger-flagged rows in file order, at most the policy's
    `report_rows`; `has_more` says more were found. `triggers`: the mined candidates, best first (none when the
    policy's `trigger_mining` is "off"); `trigger_rows`: rows that pair one with compliance."""

    object: Literal["file.screening"] = "file.screening"
    file_id: str
    created_at: int
    policy_version: int
    enabled: bool
    mode: Literal["block", "flag"]
    decision: ScreeningDecision
    would_block: bool
    rows: int
    flagged_rows: int
    refused_rows: int
    counts: dict[str, int]
    categories: list[CategoryCount]
    message: str | None = None
    data: list[ScreenedRow]
    has_more: bool = False
    trigger_mining: Literal["off", "flag", "block"] = "off"
    trigger_rows: int = 0
    triggers: list[TriggerFinding] = []


class ScreeningSummary(BaseModel):
    """What a job keeps of its screen step (`safety.screening` on the job object)."""

    decision: ScreeningDecision | Literal["skipped"]
    rows: int = 0
    flagged_rows: int = 0
    counts: dict[str, int] = {}
    exceeded: list[str] = []
    lines: list[int] = []
    trigger_rows: int = 0
    triggers: list[TriggerFinding] = []
