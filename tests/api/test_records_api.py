"""/api/catalogs/{catalog}/records: what a client of the records API relies on."""

from __future__ import annotations

from api_helpers import ServeApi
from flow_helpers import catalog
from sqlalchemy import select

from engine.store import OutboxEvent

BASE = "/api/catalogs/items/records"


def test_a_record_created_over_http_is_there_with_its_event_naming_the_token(
    serve_api: ServeApi,
) -> None:
    api = serve_api(catalogs={"items": catalog()})
    made = api.post("editor", BASE, json={"title": "Weekly", "count": 3})
    assert made.status_code == 201, made.text
    record = made.json()
    assert record["catalog"] == "items" and record["version"] == 1
    assert record["data"] == {"title": "Weekly", "status": None, "count": 3, "note": None}
    got = api.get("viewer", f"{BASE}/{record['id']}")
    assert got.status_code == 200 and got.json() == record
    with api.project.db.session() as s:
        [event] = s.scalars(select(OutboxEvent))
        assert (event.kind, event.cause_user) == ("created", "token:test-editor")


def test_update_changes_only_the_fields_given_and_delete_answers_the_last_values(
    serve_api: ServeApi,
) -> None:
    api = serve_api(catalogs={"items": catalog()})
    rid = api.post("editor", BASE, json={"title": "a", "status": "draft"}).json()["id"]
    changed = api.call("editor", "PATCH", f"{BASE}/{rid}", json={"status": "ready"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["title"] == "a" and changed.json()["data"]["status"] == "ready"
    assert changed.json()["version"] == 2
    deleted = api.call("editor", "DELETE", f"{BASE}/{rid}")
    assert deleted.status_code == 200 and deleted.json()["data"]["status"] == "ready"
    gone = api.get("viewer", f"{BASE}/{rid}")
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == f"items record {rid} does not exist"


def test_filters_and_paging(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()})
    for n in range(7):
        status = "ready" if n % 2 else "draft"
        made = api.post("editor", BASE, json={"title": f"t{n}", "status": status, "count": n})
        assert made.status_code == 201
    page = api.get("viewer", BASE, params={"where": "status=draft", "limit": 2}).json()
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 0
    assert [r["data"]["title"] for r in page["items"]] == ["t0", "t2"]
    rest = api.get("viewer", BASE, params={"where": "status=draft", "limit": 2, "offset": 2})
    assert [r["data"]["title"] for r in rest.json()["items"]] == ["t4", "t6"]
    both = api.get("viewer", BASE, params={"where": ["status=ready", "count=3"]}).json()
    assert [r["data"]["title"] for r in both["items"]] == ["t3"]
    assert api.get("viewer", BASE).json()["total"] == 7


def test_refusals_are_4xx_that_name_the_problem(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()})
    missing_title = api.post("editor", BASE, json={"count": 1})
    assert missing_title.status_code == 422
    [problem] = missing_title.json()["error"]["problems"]
    assert problem["where"] == "items.title" and problem["message"] == "is required"
    readonly = api.post("editor", BASE, json={"title": "x", "note": "mine"})
    assert readonly.status_code == 422 and "read-only" in readonly.text
    unknown = api.post("editor", "/api/catalogs/nope/records", json={"title": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"].startswith("no catalog named 'nope'")
    bad_json = api.post(
        "editor", BASE, data="{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422 and bad_json.json()["error"]["message"]
    not_object = api.post("editor", BASE, json=[1, 2])
    assert not_object.status_code == 422
    nul = api.post("editor", BASE, json={"title": "a\x00b"})
    assert nul.status_code == 422 and "NUL" in nul.text
    for params in (
        {"limit": 501},
        {"limit": 0},
        {"offset": -1},
        {"where": "nofield=1"},
        {"where": "count=abc"},
        {"where": "id=99999999999999999999999"},
        {"where": "title"},
    ):
        answer = api.get("viewer", BASE, params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["error"]["message"]
    assert api.get("viewer", f"{BASE}/99999999999999999999999").status_code == 422
    assert api.get("viewer", f"{BASE}/abc").status_code == 422


def test_an_idempotency_key_makes_a_repeated_create_return_the_first_record(
    serve_api: ServeApi,
) -> None:
    api = serve_api(catalogs={"items": catalog()})
    headers = {"Idempotency-Key": "order-17"}
    first = api.post("editor", BASE, json={"title": "once"}, headers=headers).json()
    again = api.post("editor", BASE, json={"title": "once"}, headers=headers).json()
    assert again["id"] == first["id"]
    assert api.get("viewer", BASE).json()["total"] == 1
