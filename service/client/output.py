"""How results are shown: rich tables for people, the API's JSON for scripts, times in UTC."""

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table


def console() -> Console:
    """A fresh console per command, so the width follows the terminal (or COLUMNS) at the time it runs."""
    return Console(highlight=False)


def transfer_progress(verb: str) -> Progress:
    """A bar for an upload or download (`verb` and the task's description label it), drawn only on a terminal
    and gone once done: scripts get no noise."""
    screen = console()
    columns = (TextColumn(f"{verb} {{task.description}}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    return Progress(*columns, console=screen, transient=True, disable=not screen.is_terminal)


def print_json(data: Any) -> None:
    """Plain text, never wrapped or coloured: the output of `--json` is for other programs."""
    typer.echo(json.dumps(data, indent=2))


def when(timestamp: int | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def size(n_bytes: int) -> str:
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n_bytes} B"


def cell(value: Any) -> str:
    """Table cells: nothing shows as '-', lists as comma-separated values."""
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def show_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
    """The first column holds ids: never wrapped, so they can be copied whole; the others fold when narrow."""
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, no_wrap=i == 0, overflow="fold")
    count = 0
    for row in rows:
        table.add_row(*(cell(v) for v in row))
        count += 1
    if count:
        console().print(table)
    else:
        typer.echo(f"(no {title.lower() if title else 'results'})")


def show_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """One object as a two-column table of field and value."""
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in pairs:
        table.add_row(name, cell(value))
    console().print(table)
