"""`catflow connections ...`: OAuth2 connections to services such as Google Calendar."""

from __future__ import annotations

import click

from engine.connections import PROVIDERS, add_connection, list_connections, load_box

from ._common import emit_json, handle_errors, state, table

JSON_HELP = "Print JSON for scripts instead of a table."


@click.group("connections")
def connections() -> None:
    """OAuth2 connections: client credentials and tokens, encrypted at rest.

    Secrets and tokens are sealed with the key in $CATFLOW_SECRET_KEY or, when it is
    not set, in .catflow/secret.key of the project (made on first use, owner-only).
    Back that key up with the database: without it the secrets cannot be read.
    """


@connections.command("add")
@click.argument("name")
@click.option(
    "--provider",
    type=click.Choice(sorted(PROVIDERS)),
    default="google",
    show_default=True,
    help="Which service; sets the default URLs and scopes.",
)
@click.option("--client-id", required=True, help="The OAuth2 client id.")
@click.option(
    "--client-secret",
    prompt=True,
    hide_input=True,
    help="The OAuth2 client secret (asked for, hidden, when not given).",
)
@click.option(
    "--scopes",
    multiple=True,
    metavar="SCOPE",
    help="A scope to ask for (repeatable; default: the provider's).",
)
@click.option("--auth-url", help="Authorization endpoint (default: the provider's).")
@click.option("--token-url", help="Token endpoint (default: the provider's).")
@click.option("--api-url", help="API base URL (default: the provider's).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def add(
    name: str,
    provider: str,
    client_id: str,
    client_secret: str,
    scopes: tuple[str, ...],
    auth_url: str | None,
    token_url: str | None,
    api_url: str | None,
    as_json: bool,
) -> None:
    """Add connection NAME; authorise it next with `catflow connections authorize NAME`."""
    project = state().project()
    box = load_box(project.settings.secret_key_file)
    with project.db.session() as session:
        view = add_connection(
            session,
            box,
            name=name,
            provider=provider,
            client_id=client_id,
            client_secret=client_secret,
            scopes=list(scopes) or None,
            auth_url=auth_url,
            token_url=token_url,
            api_url=api_url,
        )
    if as_json:
        emit_json(view.__dict__)
    else:
        click.echo(f"added connection {name} ({provider}); status {view.status}")


@connections.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def list_(as_json: bool) -> None:
    """List connections with their status and token expiry (never a secret)."""
    project = state().project()
    with project.db.session() as session:
        views = list_connections(session)
    if as_json:
        emit_json([v.__dict__ for v in views])
        return
    table(
        ["name", "provider", "status", "expires", "client id", "api"],
        [[v.name, v.provider, v.status, v.expires_at, v.client_id, v.api_url] for v in views],
    )
