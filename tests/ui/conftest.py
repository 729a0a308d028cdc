"""Browser tests: Playwright (sync API) driving Debian's Chromium against a real server.

Each test gets the shipped meetings job connected to a Calendar emulator, served by
uvicorn on loopback with the workers running beside it, as `catflow serve` does.
Chromium is /usr/bin/chromium (`make chromium` installs it); Playwright downloads no
browser. Without Chromium these tests skip, loudly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from meetings_flow import open_meetings
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from ui.ui_helpers import CHROMIUM, WAIT_MS, Ui

from engine.api import ThreadedServer, create_app
from engine.api.tokens import ROLES, create_token
from engine.emulators.calendar import CalendarEmulator
from engine.runtime import Runner


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"LOUD SKIP: no Chromium at {CHROMIUM}; `make chromium` installs Debian's "
            "(apt-get install -y chromium) — the browser tests did NOT run"
        )
    try:
        browser = playwright_session.chromium.launch(executable_path=CHROMIUM)
    except Exception as exc:  # a browser that cannot start is the same as none
        pytest.skip(f"LOUD SKIP: Chromium at {CHROMIUM} does not start: {exc}")
    yield browser
    browser.close()


@pytest.fixture
def pages(open_test_project: Any, project_dir: Path, emulator: CalendarEmulator) -> Iterator[Ui]:
    """The meetings project's pages on a running server; no workers (nothing runs)."""
    project = open_meetings(open_test_project, project_dir, emulator)
    server = ThreadedServer(create_app(project)).start()
    app = Ui(project, emulator, server)
    with project.db.session() as s:
        for role in ROLES:
            app.tokens[role], _ = create_token(s, role, f"test-{role}")
    yield app
    server.stop()


@pytest.fixture
def ui(pages: Ui) -> Iterator[Ui]:
    """The pages with two workers running beside them, as `catflow serve` has."""
    stop = threading.Event()
    runner = threading.Thread(
        target=Runner(pages.project, workers=2).serve, args=(stop,), name="runner", daemon=True
    )
    runner.start()
    yield pages
    stop.set()
    runner.join(timeout=30)


@pytest.fixture
def page(browser: Browser, ui: Ui) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the pages: {errors}"
