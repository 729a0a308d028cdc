"""`catflow emulator ...`: local stand-ins for external services."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from engine.emulators.calendar import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    GOOGLE_USER_QUOTA_PER_MINUTE,
    Faults,
)


@click.group("emulator")
def emulator() -> None:
    """Run local emulators of the services processes call (for development and tests)."""


def _error_rate(value: str) -> tuple[int, float]:
    status, sep, share = value.partition("=")
    try:
        code, rate = int(status), float(share)
    except ValueError:
        code, rate = 0, -1.0
    if not sep or code not in (429, 500, 503) or not 0.0 <= rate <= 1.0:
        raise click.BadParameter(f"{value!r}: expected STATUS=SHARE, e.g. 429=0.1 (429/500/503)")
    return code, rate


def _client(value: str) -> tuple[str, str]:
    client_id, sep, secret = value.partition(":")
    if not sep or not client_id or not secret:
        raise click.BadParameter(f"{value!r}: expected CLIENT_ID:CLIENT_SECRET")
    return client_id, secret


@emulator.command("calendar")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False),
    help="JSON file holding users, tokens, calendars and events: loaded at start, written "
    "after every change and at stop. Without it the state lives in memory only.",
)
@click.option(
    "--token-lifetime",
    default=3600,
    show_default=True,
    type=click.IntRange(1),
    help="Access-token lifetime in seconds (returned as expires_in).",
)
@click.option("--latency-ms", default=0.0, type=click.FloatRange(0), help="Delay every API call.")
@click.option(
    "--error-rate",
    "error_rates",
    multiple=True,
    metavar="STATUS=SHARE",
    help="Answer a share of API calls with 429 (rateLimitExceeded, Retry-After), 500 or 503, "
    "e.g. --error-rate 429=0.2. Repeatable.",
)
@click.option(
    "--retry-after",
    default=1,
    show_default=True,
    type=click.IntRange(0),
    help="Retry-After seconds on throttled answers.",
)
@click.option(
    "--user-quota",
    default=GOOGLE_USER_QUOTA_PER_MINUTE,
    show_default=True,
    type=click.IntRange(0),
    help="API calls per user per sliding minute before 403 userRateLimitExceeded (Google's "
    "published default); 0 switches it off.",
)
@click.option(
    "--project-quota",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="API calls per sliding minute for all users before 403 rateLimitExceeded; 0 = off.",
)
@click.option("--seed", type=int, help="Seed for the random error shares (reproducible runs).")
@click.option(
    "--client",
    "clients",
    multiple=True,
    metavar="ID:SECRET",
    help="Register an OAuth client besides the built-in one. Repeatable.",
)
def calendar(
    host: str,
    port: int,
    state_file: str | None,
    token_lifetime: int,
    latency_ms: float,
    error_rates: tuple[str, ...],
    retry_after: int,
    user_quota: int,
    project_quota: int,
    seed: int | None,
    clients: tuple[str, ...],
) -> None:
    """Serve a Google Calendar API v3 + OAuth2 emulator until Ctrl-C.

    Requests are validated against Google's calendar.v3 discovery document and
    failures use Google's error shapes. Consent is automatic: the authorization
    endpoint redirects straight back with a code for the user named by login_hint
    (or user=...). Admin endpoints under /_emulator/ read the request log
    (GET /_emulator/requests), change faults (PUT /_emulator/faults), force token
    expiry (POST /_emulator/expire-tokens) and mint tokens (POST /_emulator/tokens).
    """
    faults = Faults(
        latency_ms=latency_ms,
        error_rates=dict(_error_rate(v) for v in error_rates),
        retry_after_s=retry_after,
        user_quota_per_minute=user_quota or None,
        project_quota_per_minute=project_quota or None,
        seed=seed,
    )
    from engine.emulators.calendar import CalendarEmulator  # FastAPI: only when serving

    emu = CalendarEmulator(
        host=host, port=port, state_file=state_file, faults=faults, token_lifetime=token_lifetime
    )
    for value in clients:
        emu.add_client(*_client(value))
    try:
        emu.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    click.echo(f"Calendar API v3:   {emu.api_url}")
    click.echo(f"OAuth2 authorize:  {emu.auth_url}")
    click.echo(f"OAuth2 token:      {emu.token_url}")
    click.echo(f"OAuth2 revoke:     {emu.revoke_url}")
    click.echo(f"Admin:             {emu.base_url}/_emulator/requests")
    click.echo(f"Client:            {DEFAULT_CLIENT_ID} / {DEFAULT_CLIENT_SECRET}")
    if state_file:
        click.echo(f"State file:        {state_file}")
    click.echo("Press Ctrl-C to stop.")
    stopped = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    try:
        while emu.running and not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        click.echo("Stopping.")
    finally:
        emu.stop()
