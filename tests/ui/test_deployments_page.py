"""Deploying from the page: a refused file shows each error at its element."""

from __future__ import annotations

import re

from bpmn_builder import chain, end, script, service, start
from playwright.sync_api import Page, expect
from ui.ui_helpers import Ui, screenshot

BROKEN = chain(
    "broken_lookup",
    start(),
    script("prepare", "ids = [1, 2]", name="Prepare"),
    service("lookup", "records.gte", "people", name="Look up", catalog="'employees'"),
    end(),
)
FINE = chain("hello", start(), script("greet", "greeting = 'hello'", name="Greet"), end())


def _upload(page: Page, name: str, xml: str) -> None:
    page.set_input_files(
        "#bpmn-file", files=[{"name": name, "mimeType": "application/xml", "buffer": xml.encode()}]
    )
    page.get_by_role("button", name="Validate and deploy").click()


def test_an_invalid_bpmn_is_refused_with_the_error_at_its_element(page: Page, ui: Ui) -> None:
    ui.sign_in(page, "designer", start="/ui/deployments")
    expect(page.get_by_test_id("processes")).to_contain_text("meeting_sync")

    _upload(page, "broken.bpmn", BROKEN)
    refused = page.get_by_test_id("refused")
    expect(refused).to_contain_text("broken.bpmn was refused")
    problem = page.get_by_test_id("problems").locator('li[data-element="lookup"]')
    expect(problem).to_contain_text("unknown service operator 'records.gte'")
    expect(problem).to_contain_text("did you mean 'records.get'?")
    line = problem.get_attribute("data-line")
    assert line and int(line) > 0
    expect(refused.locator("pre.source .marked")).to_contain_text('id="lookup"')

    diagram = page.locator("#refused-diagram")
    expect(diagram).to_have_attribute("data-state", "ready")
    marked = diagram.locator('g.djs-element[data-element-id="lookup"]')
    expect(marked).to_have_class(re.compile(r"\bcf-problem\b"))
    expect(diagram.locator('g.djs-element[data-element-id="prepare"]')).not_to_have_class(
        re.compile(r"\bcf-problem\b")
    )
    note = diagram.locator('.cf-note[data-element="lookup"]')
    expect(note).to_be_visible()
    expect(note).to_contain_text("unknown service operator 'records.gte'")
    expect(page.get_by_test_id("processes")).not_to_contain_text("broken_lookup")
    screenshot(page, "deployments")

    _upload(page, "hello.bpmn", FINE)
    expect(page.locator(".flash")).to_contain_text("deployed hello.bpmn: hello v1 (new)")
    expect(page.get_by_test_id("refused")).to_have_count(0)
    page.get_by_test_id("processes").get_by_role("link", name="hello").click()
    expect(page.locator("#diagram")).to_have_attribute("data-state", "ready")
    expect(page.locator('#diagram g.djs-element[data-element-id="greet"]')).to_be_visible()


def test_a_viewer_sees_the_deployments_but_no_upload(page: Page, ui: Ui) -> None:
    ui.sign_in(page, "viewer", start="/ui/deployments")
    expect(page.get_by_test_id("processes")).to_contain_text("meeting_sync")
    expect(page.locator("#bpmn-file")).to_have_count(0)
