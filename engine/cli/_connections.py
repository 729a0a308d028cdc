"""`catflow connections ...`: OAuth2 connections to services such as Google Calendar."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import click
import requests

from engine.components.outbound import OutboundPolicy, guarded_session
from engine.connections import (
    PROVIDERS,
    add_connection,
    finish_authorization,
    list_connections,
    load_box,
    start_authorization,
)
from engine.errors import CatflowError
from engine.runtime import resume_after_authorization

from ._common import emit_json, handle_errors, state, table, who

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


class _Callback(BaseHTTPRequestHandler):
    """Catches the provider's redirect back to this machine (installed-app flow)."""

    query: ClassVar[dict[str, list[str]]] = {}
    arrived: ClassVar[threading.Event] = threading.Event()

    def do_GET(self) -> None:
        type(self).query = parse_qs(urlparse(self.path).query)
        type(self).arrived.set()
        ok = "code" in type(self).query
        body = (
            "Catflow: authorised; you can close this window."
            if ok
            else "Catflow: authorisation failed; see the terminal."
        ).encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the query holds the code: keep it out of logs


@connections.command("authorize")
@click.argument("name")
@click.option(
    "--port", default=0, show_default=True, help="Loopback port for the redirect (0: any free one)."
)
@click.option(
    "--auto-consent",
    is_flag=True,
    help="Follow the consent URL here instead of in a browser (the local emulator "
    "consents by itself; Google needs a person).",
)
@click.option(
    "--timeout",
    default=300,
    show_default=True,
    help="Seconds to wait for the consent to come back.",
)
@click.option(
    "--login-hint",
    metavar="EMAIL",
    help="The account to sign in with (Google pre-fills it; the emulator consents as it).",
)
@handle_errors
def authorize(
    name: str, port: int, auto_consent: bool, timeout: int, login_hint: str | None
) -> None:
    """Authorise connection NAME: open the consent URL, catch the redirect, keep the token."""
    project = state().project()
    box = load_box(project.settings.secret_key_file)
    policy = OutboundPolicy.from_settings(project.settings)
    _Callback.arrived = threading.Event()
    server = HTTPServer(("127.0.0.1", port), _Callback)
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    try:
        consent = start_authorization(project.db, policy, name, redirect_uri, login_hint)
        if auto_consent:
            session = guarded_session(policy)
            answer = session.get(consent.url, allow_redirects=False, timeout=30)
            location = answer.headers.get("Location", "")
            if not location.startswith(redirect_uri):
                raise CatflowError(
                    f"the consent page did not redirect back (HTTP {answer.status_code}); "
                    "--auto-consent works with the local emulator only"
                )
            # Back to our own callback (checked above): not an outbound call.
            with requests.Session() as local:
                local.trust_env = False
                local.get(location, timeout=30)
        else:
            click.echo("Open this address in a browser and consent:\n")
            click.echo(f"  {consent.url}\n")
            click.echo(
                f"waiting up to {timeout} s for the redirect to {redirect_uri} ...", err=True
            )
        if not _Callback.arrived.wait(timeout):
            raise CatflowError(f"no consent arrived within {timeout} s; run the command again")
    finally:
        server.shutdown()
        server.server_close()
    query = _Callback.query
    if query.get("state", [""])[0] != consent.state:
        raise CatflowError(
            "the redirect's state does not match; refusing it (run the command again)"
        )
    if "code" not in query:
        reason = query.get("error", ["no code in the redirect"])[0]
        raise CatflowError(f"the provider did not authorise connection {name!r}: {reason}")
    view = finish_authorization(project.db, box, policy, name, redirect_uri, query["code"][0])
    click.echo(f"connection {name} authorised; token valid until {view.expires_at}")
    with project.db.session() as db_session:
        resumed = resume_after_authorization(db_session, name, who())
    if resumed:
        ids = ", ".join(str(i) for i in resumed)
        click.echo(f"retrying {len(resumed)} instance(s) the connection had stopped: {ids}")
