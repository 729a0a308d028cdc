"""/api/instances: list with counts by state, detail, step log, variables, and the actions."""

from __future__ import annotations

from typing import Any

from api_helpers import Api, ServeApi
from bpmn_builder import chain, end, script, start, user_task
from flow_helpers import catalog, run

APPROVE = chain(
    "approve", start(), user_task("review", "Review"), script("after", "done = approved"), end()
)
RATIO = chain("ratio", start(), script("calc", "ratio = 10 / divisor", "Calculate"), end())
FIXED = chain("ratio", start(), script("calc", "ratio = 10 / (divisor or 1)", "Calculate"), end())
PROCESSES = {"approve": APPROVE, "ratio": RATIO}


def serve(serve_api: ServeApi) -> Api:
    rules = "[{on: created, process: approve}]"
    return serve_api(catalogs={"items": catalog(rules)}, processes=PROCESSES)


def start_instance(api: Api, process_id: str, **variables: Any) -> int:
    answer = api.post(
        "operator", "/api/instances", json={"process_id": process_id, "variables": variables}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["state"] == "queued"
    return int(answer.json()["id"])


def state_of(api: Api, instance_id: int) -> str:
    return str(api.get("viewer", f"/api/instances/{instance_id}").json()["state"])


def test_the_list_counts_by_state_and_filters_by_state_process_and_record(
    serve_api: ServeApi,
) -> None:
    api = serve(serve_api)
    rid = api.post("editor", "/api/catalogs/items/records", json={"title": "a"}).json()["id"]
    api.post("editor", "/api/catalogs/items/records", json={"title": "b"})
    failing = start_instance(api, "ratio", divisor=0)
    run(api.project)

    everything = api.get("viewer", "/api/instances").json()
    assert everything["total"] == 3
    assert everything["counts"]["waiting"] == 2 and everything["counts"]["incident"] == 1
    assert everything["counts"]["completed"] == 0  # every state is counted
    assert [i["id"] for i in everything["items"]] == sorted(
        (i["id"] for i in everything["items"]), reverse=True
    )

    waiting = api.get("viewer", "/api/instances", params={"state": "waiting"}).json()
    assert waiting["total"] == 2 and {i["process_id"] for i in waiting["items"]} == {"approve"}
    assert waiting["counts"]["incident"] == 1  # counts ignore the state filter

    by_process = api.get("viewer", "/api/instances", params={"process": "ratio"}).json()
    assert [i["id"] for i in by_process["items"]] == [failing]
    by_record = api.get("viewer", "/api/instances", params={"record": f"items:{rid}"}).json()
    assert [i["record"] for i in by_record["items"]] == [f"items:{rid}"]
    paged = api.get("viewer", "/api/instances", params={"limit": 1, "offset": 1}).json()
    assert len(paged["items"]) == 1 and paged["items"][0]["id"] == everything["items"][1]["id"]

    for params in ({"state": "sleeping"}, {"record": "items"}, {"record": "items:x"}, {"limit": 0}):
        refused = api.get("viewer", "/api/instances", params=params)
        assert refused.status_code == 422, (params, refused.text)


def test_detail_has_the_step_log_variables_and_incident(serve_api: ServeApi) -> None:
    api = serve(serve_api)
    failing = start_instance(api, "ratio", divisor=0)
    run(api.project)
    detail = api.get("viewer", f"/api/instances/{failing}").json()
    assert detail["state"] == "incident" and detail["version"] == 1
    assert detail["variables"] == {"divisor": 0}
    assert detail["error"]["element_id"] == "calc"
    [incident] = detail["incidents"]
    assert incident["kind"] == "script" and "ZeroDivisionError" in incident["message"]
    assert (
        detail["steps"]
        and detail["steps"] == api.get("viewer", f"/api/instances/{failing}/steps").json()
    )
    assert api.get("viewer", f"/api/instances/{failing}/variables").json() == {"divisor": 0}
    missing = api.get("viewer", "/api/instances/9999")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "instance 9999 does not exist"
    unknown = api.post("operator", "/api/instances", json={"process_id": "nope"})
    assert unknown.status_code == 404 and "no process 'nope'" in unknown.text


def test_retry_skip_and_upgrade_of_failed_instances(serve_api: ServeApi) -> None:
    api = serve(serve_api)
    skipped = start_instance(api, "ratio", divisor=0)
    upgraded = start_instance(api, "ratio", divisor=0)
    run(api.project)
    # Retrying without a fix fails the same way again.
    retried = api.post("operator", f"/api/instances/{skipped}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "running"
    run(api.project)
    assert state_of(api, skipped) == "incident"

    skip = api.post("operator", f"/api/instances/{skipped}/skip", json={"data": {"ratio": 5}})
    assert skip.status_code == 200, skip.text
    run(api.project)
    detail = api.get("viewer", f"/api/instances/{skipped}").json()
    assert detail["state"] == "completed" and detail["variables"]["ratio"] == 5
    assert any("skipped by token:test-operator" in (s["message"] or "") for s in detail["steps"])

    same_version = api.post("operator", f"/api/instances/{upgraded}/retry", json={"upgrade": True})
    assert same_version.status_code == 409 and "already runs the latest" in same_version.text
    api.post(
        "designer",
        "/api/deployments",
        files={"file": ("ratio.bpmn", FIXED.encode(), "application/xml")},
    )
    moved = api.post("operator", f"/api/instances/{upgraded}/retry", json={"upgrade": True})
    assert moved.status_code == 200, moved.text
    run(api.project)
    detail = api.get("viewer", f"/api/instances/{upgraded}").json()
    assert (detail["state"], detail["version"], detail["variables"]["ratio"]) == (
        "completed",
        2,
        10,
    )

    for action in ("retry", "skip"):
        done = api.post("operator", f"/api/instances/{skipped}/{action}")
        assert done.status_code == 409, done.text
        assert f"cannot {action} instance {skipped}: it is completed" in done.text


def test_suspend_resume_cancel_and_complete_a_user_task(serve_api: ServeApi) -> None:
    api = serve(serve_api)
    first = start_instance(api, "approve")
    second = start_instance(api, "approve")
    run(api.project)
    assert state_of(api, first) == "waiting"

    assert api.post("operator", f"/api/instances/{first}/suspend").json()["state"] == "suspended"
    refused = api.post("operator", f"/api/instances/{first}/tasks/review/complete", json={})
    assert refused.status_code == 409 and "it is suspended" in refused.text
    assert api.post("operator", f"/api/instances/{first}/suspend").status_code == 409
    assert api.post("operator", f"/api/instances/{first}/resume").json()["state"] == "waiting"
    assert api.post("operator", f"/api/instances/{first}/resume").status_code == 409

    wrong_task = api.post(
        "operator", f"/api/instances/{first}/tasks/nope/complete", json={"data": {}}
    )
    assert wrong_task.status_code == 404 and "waiting: review" in wrong_task.text
    completed = api.post(
        "operator",
        f"/api/instances/{first}/tasks/review/complete",
        json={"data": {"approved": "yes"}},
    )
    assert completed.status_code == 200 and completed.json()["state"] == "running"
    run(api.project)
    detail = api.get("viewer", f"/api/instances/{first}").json()
    assert detail["state"] == "completed" and detail["variables"]["done"] == "yes"

    cancelled = api.post("operator", f"/api/instances/{second}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = api.post("operator", f"/api/instances/{second}/cancel")
    assert again.status_code == 409 and "it is cancelled" in again.json()["error"]["message"]
    assert api.post("operator", "/api/instances/9999/cancel").status_code == 404
