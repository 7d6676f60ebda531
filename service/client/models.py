"""`guardrail-ft models list`: what a tenant can fine-tune, and the fine-tuned models it has been released."""

import typer

from service.client.http import DEFAULT_API_URL
from service.client.options import ApiUrl, AsJson, TenantKey, api_session
from service.client.output import print_json, show_table, when


def list_models(as_json: AsJson = False, api_url: ApiUrl = DEFAULT_API_URL, api_key: TenantKey = None) -> None:
    """Base models to fine-tune (owner "system") and your released fine-tuned models, through the API."""
    with api_session(api_url, api_key) as client:
        page = client.get("/v1/models")
    if as_json:
        print_json(page)
        return
    rows = [(m["id"], m["owned_by"], when(m["created"])) for m in page["data"]]
    show_table(("id", "owned by", "created (UTC)"), rows, title="Models")
    if not rows:
        typer.echo("an admin registers base models with `guardrail-ft models register`")
