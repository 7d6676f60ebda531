"""`guardrail-ft admin`: tenants and their keys, the audit log, and (from their own modules) policy and review.
Every command here needs the admin key."""

from typing import Annotated, Any

import typer

from service.client.admin_policy import policy_app
from service.client.admin_review import review_app
from service.client.http import DEFAULT_API_URL
from service.client.options import AdminKey, ApiUrl, AsJson, api_session
from service.client.output import print_json, show_fields, show_table, when

admin_app = typer.Typer(help="Administration (admin key): tenants, keys, policy, review, audit.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
keys_app = typer.Typer(help="A tenant's API keys.", no_args_is_help=True)
admin_app.add_typer(tenants_app, name="tenants")
tenants_app.add_typer(keys_app, name="keys")
admin_app.add_typer(policy_app, name="policy")
admin_app.add_typer(review_app, name="review")

TenantId = Annotated[str, typer.Argument(help="a tenant id (org-...)")]
KeyId = Annotated[str, typer.Argument(help="a key id (see `admin tenants keys list`)")]


def _quotas(quotas: dict[str, Any]) -> str:
    set_ = [f"{name} {value}" for name, value in quotas.items() if value is not None]
    return ", ".join(set_) or "none"


@tenants_app.command("create")
def create_tenant(
    name: str, as_json: AsJson = False, api_url: ApiUrl = DEFAULT_API_URL, api_key: AdminKey = None
) -> None:
    """Create a tenant and its first API key; the key is shown only now."""
    with api_session(api_url, api_key) as client:
        tenant = client.post("/admin/v1/tenants", {"name": name})
    if as_json:
        print_json(tenant)
        return
    show_fields(
        [
            ("tenant", tenant["id"]),
            ("name", tenant["name"]),
            ("key id", tenant["key_id"]),
            ("API key", tenant["api_key"]),
        ]
    )
    typer.echo("store the API key now: it is not shown again")


@tenants_app.command("list")
def list_tenants(as_json: AsJson = False, api_url: ApiUrl = DEFAULT_API_URL, api_key: AdminKey = None) -> None:
    """Every tenant with its quotas."""
    with api_session(api_url, api_key) as client:
        page = client.get("/admin/v1/tenants")
    if as_json:
        print_json(page)
        return
    rows = [(t["id"], t["name"], when(t["created_at"]), _quotas(t["quotas"])) for t in page["data"]]
    show_table(("id", "name", "created (UTC)", "quotas"), rows, title="Tenants")


@keys_app.command("list")
def list_keys(
    tenant_id: TenantId, as_json: AsJson = False, api_url: ApiUrl = DEFAULT_API_URL, api_key: AdminKey = None
) -> None:
    """The tenant's keys by display prefix (never the secret), revoked ones included."""
    with api_session(api_url, api_key) as client:
        page = client.get(f"/admin/v1/tenants/{tenant_id}/keys")
    if as_json:
        print_json(page)
        return
    rows = [(k["id"], k["prefix"], when(k["created_at"]), when(k["revoked_at"])) for k in page["data"]]
    show_table(("id", "prefix", "created (UTC)", "revoked (UTC)"), rows, title="Keys")


@keys_app.command("rotate")
def rotate_key(
    tenant_id: TenantId,
    key_id: KeyId,
    grace_seconds: Annotated[int, typer.Option(min=0, max=7 * 86_400, help="how long the old key keeps working")] = 0,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: AdminKey = None,
) -> None:
    """Replace a key with a new one (shown only now); the old one works for --grace-seconds more."""
    with api_session(api_url, api_key) as client:
        new = client.post(f"/admin/v1/tenants/{tenant_id}/keys/{key_id}/rotate", {"grace_seconds": grace_seconds})
    if as_json:
        print_json(new)
        return
    show_fields(
        [
            ("new key id", new["id"]),
            ("API key", new["api_key"]),
            ("old key", f"{key_id} " + (f"works for {grace_seconds}s more" if grace_seconds else "revoked")),
        ]
    )
    typer.echo("store the API key now: it is not shown again")


@keys_app.command("revoke")
def revoke_key(
    tenant_id: TenantId,
    key_id: KeyId,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: AdminKey = None,
) -> None:
    """Revoke a key now (also ends a rotation's grace period)."""
    with api_session(api_url, api_key) as client:
        key = client.post(f"/admin/v1/tenants/{tenant_id}/keys/{key_id}/revoke")
    if as_json:
        print_json(key)
        return
    typer.echo(f"revoked {key['id']} ({key['prefix']}...) at {when(key['revoked_at'])} UTC")


@admin_app.command("audit")
def audit(
    tenant: Annotated[str | None, typer.Option(help="one tenant's entries")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. api_key.rotate, policy.update, job.override")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    after: Annotated[str | None, typer.Option(help="page on from this entry id")] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: AdminKey = None,
) -> None:
    """Admin actions, newest first."""
    with api_session(api_url, api_key) as client:
        page = client.get("/admin/v1/audit", {"tenant_id": tenant, "action": action, "limit": limit, "after": after})
    if as_json:
        print_json(page)
        return
    rows = [
        (e["id"], when(e["created_at"]), e["actor"], e["action"], e["tenant_id"], e["target_id"]) for e in page["data"]
    ]
    show_table(("id", "when (UTC)", "actor", "action", "tenant", "target"), rows, title="Audit log")
    if page["has_more"]:
        typer.echo(f"more: --after {page['data'][-1]['id']}")
