"""What the browser tests share: the running pages, signing in, screenshots."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page, expect

from engine.api import ThreadedServer
from engine.catalogs import Cause
from engine.emulators.calendar import CalendarEmulator
from engine.runtime import Project

CHROMIUM = os.environ.get("CATFLOW_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
WAIT_MS = 30_000  # the longest any condition is waited for; most hold within a second


@dataclass
class Ui:
    """The pages of a running project, with a token per role."""

    project: Project
    emulator: CalendarEmulator
    server: ThreadedServer
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def url(self, path: str) -> str:
        return self.base_url + path

    def sign_in(self, page: Page, role: str, start: str = "/ui/instances") -> None:
        page.goto(self.url(start))
        expect(page).to_have_url(re.compile(r"/ui/sign-in\?next="))
        page.fill("#token", self.tokens[role])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("who-name")).to_have_text(f"test-{role}")
        expect(page.get_by_test_id("who-role")).to_have_text(role)

    def employee(self, name: str, email: str) -> int:
        with self.project.db.session() as s:
            return self.project.records.create(
                s, "employees", {"name": name, "email": email}, Cause.person("tester")
            ).id


def screenshot(page: Page, name: str) -> None:
    """Keep a picture of a page in test-results/screenshots/ (not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
