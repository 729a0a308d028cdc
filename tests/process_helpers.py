"""Catflow as separate processes: a project folder, its environment, `catflow` commands."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from engine.emulators.calendar import CalendarEmulator

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shipped_project(home: Path) -> Path:
    """A project folder with the repository's catalogs and processes."""
    for folder in ("catalogs", "processes"):
        shutil.copytree(REPO / folder, home / folder)
    return home


def catflow_env(home: Path, **settings: str) -> dict[str, str]:
    """This environment without any CATFLOW_* of ours, for the project in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATFLOW_")}
    env["CATFLOW_HOME"] = str(home)
    env.update(settings)
    return env


def catflow(env: dict[str, str], *args: str) -> str:
    """Run a `catflow` command to its end; its standard output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "engine", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def connect_by_cli(
    env: dict[str, str], emulator: CalendarEmulator, *authorize_options: str
) -> None:
    """`catflow connections add google` for the emulator, then authorise it."""
    settings = emulator.connection_settings()
    catflow(
        env,
        *("connections", "add", "google", "--client-id", settings["client_id"]),
        *("--client-secret", settings["client_secret"], "--auth-url", settings["auth_url"]),
        *("--token-url", settings["token_url"], "--api-url", settings["api_url"]),
    )
    catflow(env, "connections", "authorize", "google", "--auto-consent", *authorize_options)
