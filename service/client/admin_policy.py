"""`guardrail-ft admin policy`: read the policy in force, and set a new version from a file after seeing what
changes."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from service.client.http import DEFAULT_API_URL, ApiClient, ClientFailure
from service.client.options import AdminKey, ApiUrl, AsJson, api_session
from service.client.output import print_json, show_table, when
from service.client.policy_file import load_policy, policy_diff, shown

policy_app = typer.Typer(help="The global policy and per-tenant overrides.", no_args_is_help=True)

Tenant = Annotated[str | None, typer.Option("--tenant", help="a tenant's override (default: the global policy)")]
PolicyPath = Annotated[Path, typer.Argument(help="a Policy document, YAML or JSON")]


def _path(tenant: str | None) -> str:
    return f"/admin/v1/tenants/{tenant}/policy" if tenant else "/admin/v1/policy"


def _headline(version: dict[str, Any]) -> str:
    scope = version["scope"] + (f" {version['tenant_id']}" if version.get("tenant_id") else "")
    since = f", set {when(version['created_at'])} UTC" if version.get("created_at") else ""
    return f"policy v{version['version']} ({scope}{since})"


@policy_app.command("get")
def get(
    tenant: Tenant = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="save the document (.json, else YAML)")] = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: AdminKey = None,
) -> None:
    """The policy in force: a tenant's override, else the global policy, else the built-in default (v0)."""
    with api_session(api_url, api_key) as client:
        version = client.get(_path(tenant))
        if output is not None:
            text = (
                json.dumps(version["policy"], indent=2) + "\n"
                if output.suffix.lower() == ".json"
                else yaml.safe_dump(version["policy"], sort_keys=False)
            )
            try:
                output.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise ClientFailure(f"Cannot write {output}: {exc.strerror or exc}.") from None
    if as_json:
        print_json(version)
    elif output is not None:
        typer.echo(f"saved {_headline(version)} to {output}")
    else:
        typer.echo(f"# {_headline(version)}")
        typer.echo(yaml.safe_dump(version["policy"], sort_keys=False), nl=False)


def _show_diff(current: dict[str, Any], new: dict[str, Any]) -> int:
    changes = [(path, shown(old), shown(value)) for path, old, value in policy_diff(current["policy"], new)]
    if changes:
        in_force = f"v{current['version']} ({current['scope']})"
        show_table(("field", in_force, "file"), changes, title="Changes")
    else:
        typer.echo(f"no field differs from {_headline(current)}")
    return len(changes)


def _current_and_new(client: ApiClient, file: Path, tenant: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    new = load_policy(file).model_dump(mode="json")
    return client.get(_path(tenant)), new


@policy_app.command("diff")
def diff(file: PolicyPath, tenant: Tenant = None, api_url: ApiUrl = DEFAULT_API_URL, api_key: AdminKey = None) -> None:
    """Validate a policy file and show how it differs from the policy in force; nothing is changed."""
    with api_session(api_url, api_key) as client:
        current, new = _current_and_new(client, file, tenant)
    _show_diff(current, new)


@policy_app.command("set")
def set_(
    file: PolicyPath,
    tenant: Tenant = None,
    as_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: AdminKey = None,
) -> None:
    """Validate a policy file, show what it changes, and make it the new version (a whole document, not merged;
    running jobs keep the policy they started with)."""
    with api_session(api_url, api_key) as client:
        current, new = _current_and_new(client, file, tenant)
        if not as_json:
            _show_diff(current, new)
        version = client.put(_path(tenant), new)
    if as_json:
        print_json(version)
    else:
        typer.echo(f"now in force: {_headline(version)}")
