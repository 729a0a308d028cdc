"""/api/incidents: the open incidents, and any one incident."""

from __future__ import annotations

from api_helpers import ServeApi
from bpmn_builder import chain, end, script, start
from flow_helpers import catalog, run

RATIO = chain("ratio", start(), script("calc", "ratio = 10 / record['count']", "Calculate"), end())


def test_open_incidents_are_listed_with_their_instance_and_record(serve_api: ServeApi) -> None:
    api = serve_api(
        catalogs={"items": catalog("[{on: created, process: ratio}]")}, processes={"ratio": RATIO}
    )
    records = "/api/catalogs/items/records"
    rid = api.post("editor", records, json={"title": "zero", "count": 0}).json()["id"]
    api.post("editor", records, json={"title": "fine", "count": 2})
    other = api.post("editor", records, json={"title": "zero too", "count": 0}).json()["id"]
    run(api.project)

    page = api.get("viewer", "/api/incidents").json()
    assert page["total"] == 2
    first = page["items"][0]
    assert first["record"] == f"items:{rid}" and first["process_id"] == "ratio"
    assert (first["element_id"], first["element_name"], first["kind"]) == (
        "calc",
        "Calculate",
        "script",
    )
    assert "ZeroDivisionError" in first["message"] and first["resolved_at"] is None
    assert api.get("viewer", f"/api/incidents/{first['id']}").json() == first

    mine = api.get("viewer", "/api/incidents", params={"instance_id": first["instance_id"]})
    assert [i["id"] for i in mine.json()["items"]] == [first["id"]]
    assert api.get("viewer", "/api/incidents", params={"kind": "connection"}).json()["total"] == 0
    assert len(api.get("viewer", "/api/incidents", params={"limit": 1}).json()["items"]) == 1

    # Cancelling resolves it: gone from the list, still readable as resolved.
    api.post("operator", f"/api/instances/{first['instance_id']}/cancel")
    page = api.get("viewer", "/api/incidents").json()
    assert [i["record"] for i in page["items"]] == [f"items:{other}"]
    resolved = api.get("viewer", f"/api/incidents/{first['id']}").json()
    assert resolved["resolution"] == "cancelled" and resolved["resolved_at"] is not None

    missing = api.get("viewer", "/api/incidents/777")
    assert missing.status_code == 404 and "incident 777 does not exist" in missing.text
