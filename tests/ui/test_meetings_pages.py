"""The meetings job from the pages: a meeting made in the browser syncs before its eyes,
and a broken connection is repaired from the connections page."""

from __future__ import annotations

import re

import requests
from meetings_flow import OWNER, events, live
from playwright.sync_api import Page, expect
from ui.ui_helpers import Ui, screenshot


def _new_meeting(page: Page, ui: Ui, title: str, participant: str) -> int:
    page.goto(ui.url("/ui/records/meetings"))
    page.get_by_role("link", name="New record").click()
    page.fill("#f-title", title)
    page.fill("#f-starts_at", "2030-01-01T12:00:00+01:00")
    page.fill("#f-time_zone", "Europe/Paris")
    page.select_option("#f-participants", label=participant)
    page.fill("#f-extra_participants", "dana@example.org")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/ui/records/meetings/\d+$"))
    expect(page.locator(".flash")).to_contain_text("created meetings record")
    return int(page.url.rsplit("/", 1)[1])


def _mark_page(page: Page) -> None:
    """Leave a mark that a reload would wipe: the page must change without one."""
    page.evaluate("window.__catflowNoReload = true")


def _not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__catflowNoReload === true"), "the page was reloaded"


def test_a_meeting_made_on_the_page_syncs_and_shows_its_event_without_reloading(
    page: Page, ui: Ui
) -> None:
    ui.employee("Ann", OWNER)
    ui.sign_in(page, "editor")
    expect(page.get_by_test_id("counts")).to_be_visible()

    meeting = _new_meeting(page, ui, "Planning from the page", "Ann (#1)")
    _mark_page(page)
    event_id = page.locator('[data-field="calendar_event_id"]')
    expect(event_id).to_have_text(re.compile(r"^\w{10,}$"))
    expect(page.locator('[data-field="sync_status"]')).to_have_text("synced")
    row = page.get_by_test_id("record-instances").locator("tr[data-instance]")
    expect(row).to_have_count(1)
    expect(row.locator("[data-state]")).to_have_text("completed")
    expect(page.locator('[data-field="attendees"]')).to_have_text(
        "ann@example.com, dana@example.org"
    )
    _not_reloaded(page)
    shown_id = event_id.inner_text()
    assert live(events(ui.emulator))[shown_id]["summary"] == "Planning from the page"
    screenshot(page, "record")

    # The instance: its diagram with the path taken, its variables, its calls to Google.
    row.get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("meeting_sync")
    diagram = page.locator("#diagram")
    expect(diagram).to_have_attribute("data-state", "ready")
    for element in ("load_meeting", "find_people", "build_event", "insert_event", "write_back"):
        expect(diagram.locator(f'g.djs-element[data-element-id="{element}"]')).to_have_class(
            re.compile(r"\bcf-completed\b")
        )
    expect(diagram.locator(".cf-failed, .cf-active")).to_have_count(0)
    expect(page.get_by_test_id("variables")).to_contain_text(shown_id)
    steps = page.get_by_test_id("steps")
    expect(steps).to_contain_text("insert_event")
    expect(steps.locator("td.num").first).to_have_text(re.compile(r"\d+(\.\d+)? (ms|s)$"))
    calls = page.get_by_test_id("exchange")
    expect(calls.first).to_contain_text("POST")
    calls.first.locator("summary").click()
    expect(calls.first).to_contain_text("Authorization")
    assert ui.tokens["editor"] not in page.content()
    # An editor may not act on instances: no buttons (the server refuses too, see
    # test_pages_http.py).
    expect(page.get_by_test_id("actions")).to_have_count(0)
    screenshot(page, "instance-detail")

    page.goto(ui.url("/ui/records/meetings"))
    expect(page.get_by_test_id("records").locator(f'tr[data-record="{meeting}"]')).to_contain_text(
        shown_id
    )
    screenshot(page, "records")

    page.goto(ui.url(f"/ui/instances?record=meetings:{meeting}"))
    expect(page.get_by_test_id("instances").locator("tr[data-instance]")).to_have_count(1)
    page.goto(ui.url("/ui/instances?state=completed&process=meeting_sync"))
    expect(page.locator('[data-count="completed"]')).to_have_text("1")
    expect(page.get_by_test_id("instances")).to_contain_text("meeting_sync")
    screenshot(page, "instances")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/sign-in$"))
    page.goto(ui.url("/ui/instances"))
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next=/ui/instances"))


def test_a_broken_connection_is_repaired_from_the_pages_and_the_meeting_syncs(
    page: Page, ui: Ui
) -> None:
    ui.employee("Ann", OWNER)
    credentials = ui.project.http.credentials
    assert credentials is not None
    # The user revokes Catflow's access in their Google account.
    token = credentials.access_token("google")
    assert requests.post(ui.emulator.revoke_url, data={"token": token}, timeout=10).ok

    ui.sign_in(page, "admin")
    meeting = _new_meeting(page, ui, "Review after revocation", "Ann (#1)")
    _mark_page(page)
    expect(page.locator('[data-field="sync_status"]')).to_have_text("error")
    expect(page.locator('[data-field="sync_error"]')).to_contain_text("invalid_grant")
    row = page.get_by_test_id("record-instances").locator("tr[data-instance]")
    expect(row.locator("[data-state]")).to_have_text("incident")
    _not_reloaded(page)
    instance = int(row.first.get_attribute("data-instance") or 0)

    page.get_by_role("link", name="Incidents").click()
    incident = page.get_by_test_id("incidents").locator(f'tr[data-instance="{instance}"]')
    expect(incident).to_contain_text("connection")
    expect(incident).to_contain_text("invalid_grant")
    expect(incident.get_by_role("button", name="Retry")).to_be_visible()
    screenshot(page, "incidents")

    page.get_by_role("link", name="Connections").click()
    google = page.get_by_test_id("connections").locator('tr[data-connection="google"]')
    expect(google.locator("[data-status]")).to_have_text("broken")
    google.get_by_placeholder("account (optional)").fill(OWNER)
    google.get_by_role("button", name="Authorise").click()
    # The emulator consents by itself: the browser comes straight back to the callback.
    done = page.get_by_test_id("authorization")
    expect(done).to_contain_text("Connection google authorised")
    expect(done).to_contain_text(f"Retrying 1 instance(s) the connection had stopped: {instance}")
    expect(page).to_have_url(re.compile(r"/ui/connections$"))  # on by itself
    expect(google.locator("[data-status]")).to_have_text("authorized")
    expect(page.get_by_test_id("who-name")).to_have_text("test-admin")
    screenshot(page, "connections")
    assert "code=" not in page.url and ui.tokens["admin"] not in page.url

    page.goto(ui.url(f"/ui/records/meetings/{meeting}"))
    _mark_page(page)
    expect(page.locator('[data-field="sync_status"]')).to_have_text("synced")
    expect(page.locator('[data-field="calendar_event_id"]')).to_have_text(re.compile(r"^\w{10,}$"))
    expect(page.locator('[data-field="sync_error"]')).to_have_text("")
    expect(row.locator("[data-state]")).to_have_text("completed")
    _not_reloaded(page)

    page.goto(ui.url("/ui/incidents"))
    expect(page.get_by_text("No open incidents.")).to_be_visible()
