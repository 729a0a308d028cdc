"""/api/processes: process definitions and their versions."""

from __future__ import annotations

from api_helpers import ServeApi
from bpmn_builder import chain, end, script, start
from flow_helpers import catalog


def invoice(total: str) -> str:
    return chain("invoice", start(), script("sum", f"total = {total}"), end(), name="Invoice total")


def test_processes_list_their_versions_and_each_version_its_bpmn(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()}, processes={"invoice": invoice("1")})
    upgraded = api.post(
        "designer",
        "/api/deployments?filename=invoice-v2.bpmn",
        data=invoice("2"),
        headers={"Content-Type": "application/xml"},
    )
    assert upgraded.status_code == 201, upgraded.text
    started = api.post("operator", "/api/instances", json={"process_id": "invoice"})
    assert started.status_code == 201, started.text

    [listed] = api.get("viewer", "/api/processes").json()
    assert listed["process_id"] == "invoice" and listed["name"] == "Invoice total"
    assert (listed["latest_version"], listed["versions"], listed["instances"]) == (2, 2, 1)
    assert listed["filename"] == "invoice-v2.bpmn"

    detail = api.get("viewer", "/api/processes/invoice").json()
    assert [v["version"] for v in detail["version_list"]] == [2, 1]
    assert [v["instances"] for v in detail["version_list"]] == [1, 0]
    assert detail["version_list"][1]["filename"].endswith("invoice.bpmn")

    first = api.get("viewer", "/api/processes/invoice/versions/1").json()
    assert first["version"] == 1 and "total = 1" in first["xml"]


def test_unknown_processes_and_versions_are_404_naming_them(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()}, processes={"invoice": invoice("1")})
    missing = api.get("viewer", "/api/processes/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no process 'nope' is deployed (deployed: invoice)"
    no_version = api.get("viewer", "/api/processes/invoice/versions/7")
    assert no_version.status_code == 404
    assert "process 'invoice' has no version 7" in no_version.json()["error"]["message"]
    assert api.get("viewer", "/api/processes/invoice/versions/0").status_code == 422
    assert api.get("viewer", "/api/processes/a%00b").status_code == 422
