"""`catflow tokens ...`: API tokens for the HTTP API and the pages."""

from __future__ import annotations

import click

from engine.api.tokens import ROLES, create_token, list_tokens, revoke_token

from ._common import emit_json, handle_errors, state, table, who

JSON_HELP = "Print JSON for scripts instead of a table."


@click.group("tokens")
def tokens() -> None:
    """API tokens: each has a name and a role (viewer < editor < designer < operator < admin).

    A token is shown once, when it is made; only its hash is stored.
    """


@tokens.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the token may do.")
@click.option("--name", help="A name to tell it apart (default: ROLE-N).")
@handle_errors
def create(role: str, name: str | None) -> None:
    """Make a token; it is printed once — keep it in your secret store."""
    project = state().project()
    with project.db.session() as session:
        if name is None:
            taken = {t.name for t in list_tokens(session)}
            name = next(
                f"{role}-{n}" for n in range(1, len(taken) + 2) if f"{role}-{n}" not in taken
            )
        token, view = create_token(session, role, name, created_by=who())
    click.echo(f"token {view.name} ({view.role}) made; it is shown this once:", err=True)
    click.echo(token)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def list_(as_json: bool) -> None:
    """Tokens by name, role and use — never the token itself."""
    project = state().project()
    with project.db.session() as session:
        views = list_tokens(session)
    if as_json:
        emit_json([v.__dict__ for v in views])
        return
    table(
        ["name", "role", "starts with", "created", "last used", "revoked"],
        [
            [v.name, v.role, v.prefix + "…", v.created_at, v.last_used_at, v.revoked_at]
            for v in views
        ],
    )


@tokens.command("revoke")
@click.argument("name")
@handle_errors
def revoke(name: str) -> None:
    """Stop token NAME from working, at once."""
    project = state().project()
    with project.db.session() as session:
        view = revoke_token(session, name)
    click.echo(f"token {view.name} revoked")
