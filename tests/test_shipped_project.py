"""The catalogs and processes that ship with Catflow load and do their job."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from flow_helpers import USER, detail, get, instances, run

REPO = Path(__file__).resolve().parents[1]


def test_meeting_prepare_invites_the_right_people_and_computes_the_end(
    project_dir: Path, open_test_project: Any
) -> None:
    for folder in ("catalogs", "processes"):
        shutil.rmtree(project_dir / folder)
        shutil.copytree(REPO / folder, project_dir / folder)
    project = open_test_project()
    with project.db.session() as s:
        ann = project.records.create(
            s, "employees", {"name": "Ann", "email": "ann@example.com"}, USER
        )
        bob = project.records.create(
            s, "employees", {"name": "Bob", "active": False, "email": "bob@example.com"}, USER
        )
        eve = project.records.create(s, "employees", {"name": "Eve"}, USER)
        meeting = project.records.create(
            s,
            "meetings",
            {
                "title": "Kick-off",
                "starts_at": "2026-12-01T10:00:00+01:00",
                "participants": [ann.id, bob.id, eve.id],
                "extra_participants": ["Ann@EXAMPLE.com", "dana@example.org"],
            },
            USER,
        )
    run(project)
    [inst] = instances(project)
    assert inst.state == "completed"
    variables = detail(project, inst.id)["variables"]
    assert variables["ends_at"] == "2026-12-01T11:00:00+01:00"
    assert variables["skipped"] == ["Bob", "Eve"]
    saved = get(project, "meetings", meeting.id)
    assert saved["attendees"] == ["ann@example.com", "dana@example.org"]
    assert saved["sync_status"] == "pending"
    # Its own write-back did not start it again.
    run(project)
    assert len(instances(project)) == 1
