"""`guardrail-ft files`: upload training data, list it, and dry-run the screening a job would meet."""

from pathlib import Path
from typing import Annotated, Any

import typer

from service.client.http import DEFAULT_API_URL, ClientFailure
from service.client.options import ApiUrl, AsJson, TenantKey, api_session
from service.client.output import print_json, show_fields, show_table, size, transfer_progress, when

files_app = typer.Typer(help="Training files (tenant).", no_args_is_help=True)


@files_app.command("upload")
def upload(
    path: Annotated[Path, typer.Argument(help="a chat JSONL file")],
    purpose: Annotated[str, typer.Option(help="the OpenAI file purpose")] = "fine-tune",
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: TenantKey = None,
) -> None:
    """Upload a training file; the API validates it line by line and names the first bad line."""
    with api_session(api_url, api_key) as client:
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise ClientFailure(f"Cannot read {path}: {exc.strerror or exc}.") from None
        with handle, transfer_progress("uploading") as progress:
            reader = progress.wrap_file(handle, total=path.stat().st_size, description=path.name)
            created = client.post("/v1/files", files={"file": (path.name, reader)}, data={"purpose": purpose})
    if as_json:
        print_json(created)
        return
    typer.echo(f"uploaded {created['id']} ({created['filename']}, {size(created['bytes'])}, {created['status']})")


@files_app.command("list")
def list_files(
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many, newest first")] = None,
    after: Annotated[str | None, typer.Option(help="page on from this file id")] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: TenantKey = None,
) -> None:
    """The tenant's files, newest first."""
    with api_session(api_url, api_key) as client:
        page = client.get("/v1/files", {"limit": limit, "after": after})
    if as_json:
        print_json(page)
        return
    rows = [
        (f["id"], f["filename"], size(f["bytes"]), f["status"], f["purpose"], when(f["created_at"]))
        for f in page["data"]
    ]
    show_table(("id", "filename", "size", "status", "purpose", "created (UTC)"), rows, title="Files")


@files_app.command("screen")
def screen(
    file_id: str,
    rows: Annotated[int, typer.Option(min=0, help="harmful rows to list (--json lists all)")] = 20,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: TenantKey = None,
) -> None:
    """Dry-run the training-data screening a job on this file would meet under your policy now (nothing is
    charged): every harmful row, counts per category, and whether a job would be blocked."""
    with api_session(api_url, api_key) as client:
        report = client.post(f"/v1/files/{file_id}/screen")
    if as_json:
        print_json(report)
        return
    _show_screening(report, rows)


def _show_screening(report: dict[str, Any], rows: int) -> None:
    show_fields(
        [
            ("file", report["file_id"]),
            ("decision", report["decision"]),
            ("would block a job", "yes" if report["would_block"] else "no"),
            ("rows", report["rows"]),
            ("flagged rows", report["flagged_rows"]),
            ("refused rows (safety data)", report["refused_rows"]),
            ("policy version", report["policy_version"]),
            ("mode", report["mode"]),
            ("message", report["message"]),
        ]
    )
    categories = [
        (
            c["category"],
            c["flagged"],
            f"{c['share']:.1%}",
            c["max_rows"],
            f"{c['max_share']:.1%}",
            "yes" if c["exceeded"] else "no",
        )
        for c in report["categories"]
    ]
    if categories:
        show_table(
            ("category", "flagged", "share", "max rows", "max share", "exceeded"), categories, title="Categories"
        )
    listed = [
        (r["line"], r["categories"], f"{r['confidence']:.2f}", "yes" if r["flagged"] else "no", r["reason"])
        for r in report["data"][:rows]
    ]
    if listed:
        show_table(("line", "categories", "confidence", "flagged", "reason"), listed, title="Harmful rows")
    hidden = len(report["data"]) - len(listed)
    if hidden > 0:
        typer.echo(f"{hidden} more harmful rows: --rows {len(report['data'])} or --json to see them")
    if report["has_more"]:
        typer.echo("the policy's report_rows cut the list short; the counts above cover every row")
