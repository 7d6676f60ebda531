"""Training-data screening: the harm categories (one list for the API, the workers and the policy), the dry-run
report of `POST /v1/files/{id}/screen`, and the summary a job keeps of its own screening."""

from typing import Literal, get_args

from pydantic import BaseModel

# The 11 HEx-PHI categories (Qi et al. 2023), in HEx-PHI's order. The tiny world uses the same names.
HarmCategory = Literal["illegal_activity", "child_abuse", "hate_harass_violence", "malware", "physical_harm",
                       "economic_harm", "fraud_deception", "adult_content", "political_campaigning",
                       "privacy_violation", "tailored_financial_advice"]
HARM_CATEGORIES: tuple[str, ...] = get_args(HarmCategory)

ScreeningDecision = Literal["pass", "flag", "block"]


class ScreenedRow(BaseModel):
    """One row whose request (or answer) is harmful in some category. `flagged`: the answer complies, so the
    row teaches harm; a row whose answer refuses is safety data and is listed with `flagged` false."""

    line: int
    categories: list[HarmCategory]
    confidence: float
    reason: str
    flagged: bool


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
    with a warning) or "pass". `data` lists harmful rows in file order, at most the policy's `report_rows`;
    `has_more` says more were found."""

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


class ScreeningSummary(BaseModel):
    """What a job keeps of its screen step (`safety.screening` on the job object)."""

    decision: ScreeningDecision | Literal["skipped"]
    rows: int = 0
    flagged_rows: int = 0
    counts: dict[str, int] = {}
    exceeded: list[str] = []
    lines: list[int] = []
