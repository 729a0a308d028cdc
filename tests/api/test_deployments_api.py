"""/api/deployments: upload BPMN (multipart or raw XML); refusals located to element and line."""

from __future__ import annotations

from api_helpers import ServeApi
from bpmn_builder import chain, end, script, service, start
from flow_helpers import catalog

XML = {"Content-Type": "application/xml"}


def invoice(total: str = "1 + 2") -> str:
    return chain("invoice", start(), script("sum", f"total = {total}", name="Sum"), end())


BROKEN = chain(
    "broken",
    start(),
    service("load", "records.gte", "r", name="Load", catalog="'m'", id="1"),
    end(),
)


def test_a_multipart_upload_becomes_a_version_and_the_same_file_again_changes_nothing(
    serve_api: ServeApi,
) -> None:
    api = serve_api(catalogs={"items": catalog()})
    files = {"file": ("invoice.bpmn", invoice().encode(), "application/xml")}
    first = api.post("designer", "/api/deployments", files=files)
    assert first.status_code == 201, first.text
    assert first.json() == [
        {"filename": "invoice.bpmn", "process_id": "invoice", "version": 1, "status": "new"}
    ]
    again = api.post("designer", "/api/deployments", files=files)
    assert again.status_code == 200 and again.json()[0]["status"] == "unchanged"
    changed = api.post(
        "designer", "/api/deployments?filename=invoice.bpmn", data=invoice("3"), headers=XML
    )
    assert changed.status_code == 201, changed.text
    assert changed.json()[0]["version"] == 2 and changed.json()[0]["status"] == "new version"
    listed = api.get("viewer", "/api/deployments").json()
    assert listed["total"] == 2
    newest = listed["items"][0]
    assert newest["processes"] == [{"process_id": "invoice", "version": 2}]
    assert newest["deployed_by"] == "token:test-designer"
    detail = api.get("viewer", f"/api/deployments/{newest['id']}").json()
    assert "total = 3" in detail["xml"]
    missing = api.get("viewer", "/api/deployments/999")
    assert missing.status_code == 404 and "deployment 999" in missing.text


def test_an_invalid_file_is_422_with_element_id_line_and_message_and_nothing_is_deployed(
    serve_api: ServeApi,
) -> None:
    api = serve_api(catalogs={"items": catalog()})
    files = [
        ("file", ("good.bpmn", invoice().encode(), "application/xml")),
        ("file", ("broken.bpmn", BROKEN.encode(), "application/xml")),
    ]
    refused = api.post("designer", "/api/deployments", files=files)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert "nothing was deployed" in error["message"]
    [problem] = error["problems"]
    line = next(n for n, text in enumerate(BROKEN.splitlines(), 1) if 'id="load"' in text)
    assert problem["file"] == "broken.bpmn" and problem["line"] == line
    assert problem["element_id"] == "load" and problem["element_name"] == "Load"
    assert problem["element_type"] == "serviceTask"
    assert "records.gte" in problem["message"] and "records.get" in problem["hint"]
    assert api.get("viewer", "/api/deployments").json()["total"] == 0  # all or none


def test_a_body_that_is_not_a_bpmn_file_is_refused(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()}, max_bpmn_bytes=4096)
    not_xml = api.post("designer", "/api/deployments", data=b"\x00\xff garbage", headers=XML)
    assert not_xml.status_code == 422 and not_xml.json()["error"]["problems"]
    json_body = api.post("designer", "/api/deployments", json={"file": "x"})
    assert json_body.status_code == 415
    assert "multipart/form-data" in json_body.json()["error"]["message"]
    empty_form = api.post("designer", "/api/deployments", files={"other": ("", b"")})
    assert empty_form.status_code in (400, 422)
    form = api.post("designer", "/api/deployments", data={"file": "x"})
    assert form.status_code == 415  # url-encoded: not a file upload
    no_file = api.post("designer", "/api/deployments", files={"note": (None, "x")})
    assert no_file.status_code == 422 and "no file" in no_file.text
    too_big = api.post("designer", "/api/deployments", data=b"<a/>" * 2000, headers=XML)
    assert too_big.status_code == 422 and "4,096 bytes" in too_big.text
