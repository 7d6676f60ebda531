"""The options every client command shares, and the one place a failure becomes a line on stderr and an exit
status instead of a traceback."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from service.client.http import ApiClient, ClientFailure, connect

ApiUrl = Annotated[str, typer.Option("--api-url", envvar="GFT_API_URL", help="base URL of the Guardrail FT API")]
TenantKey = Annotated[
    str | None, typer.Option("--api-key", envvar="GFT_API_KEY", show_default=False, help="a tenant API key")
]
# An admin usually holds both keys; the admin one is preferred so tenant commands and admin commands can run from
# one shell.
AdminKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar=["GFT_ADMIN_KEY", "GFT_API_KEY"], show_default=False, help="the admin key"),
]
AsJson = Annotated[bool, typer.Option("--json", help="print the API's JSON instead of tables")]

FAILURE_EXIT = 1


@contextmanager
def api_session(api_url: str, api_key: str | None) -> Iterator[ApiClient]:
    """A client for the command's body; a ClientFailure raised anywhere in it ends the command with one line on
    stderr and exit status 1."""
    try:
        with connect(api_url, api_key) as client:
            yield client
    except ClientFailure as failure:
        typer.echo(f"error: {failure}", err=True)
        raise typer.Exit(FAILURE_EXIT) from None
