"""A real `catflow serve`, logging at debug level: no token ever reaches its log."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner
from process_helpers import catflow_env, free_port

from engine.cli import cli


def test_tokens_used_over_http_and_in_the_pages_never_reach_the_log(project_dir: Path) -> None:
    env = catflow_env(project_dir)
    made = CliRunner().invoke(cli, ["tokens", "create", "--role", "admin"], env=env)
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "engine", "--log-level", "debug", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and serve.poll() is None, "serve did not start"
                time.sleep(0.1)
        bearer = {"Authorization": f"Bearer {token}"}
        assert requests.get(base + "/api/catalogs", headers=bearer, timeout=10).status_code == 200
        wrong = {"Authorization": f"Bearer {token}x"}
        assert requests.get(base + "/api/catalogs", headers=wrong, timeout=10).status_code == 401
        made_token = requests.post(
            base + "/api/tokens",
            json={"role": "viewer", "name": "another"},
            headers=bearer,
            timeout=10,
        )
        assert made_token.status_code == 201, made_token.text
        second = made_token.json()["token"]
        with requests.Session() as browser:
            signed_in = browser.post(
                base + "/ui/sign-in",
                data={"token": second, "next": "/ui/instances"},
                headers={"Origin": base},
                timeout=10,
            )
            assert signed_in.status_code == 200 and "another" in signed_in.text
        serve.send_signal(signal.SIGINT)
        log, _ = serve.communicate(timeout=30)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.communicate()
    assert '"level": "debug"' in log or '"level": "info"' in log  # it did log
    for secret in (token, second, token[12:], second[12:]):
        assert secret not in log
