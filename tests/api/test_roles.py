"""Every API endpoint and the least role it needs: that role gets in, the one below does not.

The table must name every route the app has (in the OpenAPI document or under /api),
so a new endpoint without a row here fails this test until its role is decided.
"""

from __future__ import annotations

from typing import Any

from api_helpers import ServeApi
from fastapi.routing import APIRoute, iter_route_contexts
from flow_helpers import catalog

from engine.api.tokens import ROLES

PUBLIC = "public"  # no token: health, and the OAuth callback (its one-time state admits it)

ROLE_OF: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): "viewer",
    ("GET", "/api/catalogs"): "viewer",
    ("GET", "/api/catalogs/{catalog}"): "viewer",
    ("GET", "/api/catalogs/{catalog}/records"): "viewer",
    ("POST", "/api/catalogs/{catalog}/records"): "editor",
    ("GET", "/api/catalogs/{catalog}/records/{record_id}"): "viewer",
    ("PATCH", "/api/catalogs/{catalog}/records/{record_id}"): "editor",
    ("DELETE", "/api/catalogs/{catalog}/records/{record_id}"): "editor",
    ("GET", "/api/deployments"): "viewer",
    ("POST", "/api/deployments"): "designer",
    ("GET", "/api/deployments/{deployment_id}"): "viewer",
    ("GET", "/api/processes"): "viewer",
    ("GET", "/api/processes/{process_id}"): "viewer",
    ("GET", "/api/processes/{process_id}/versions/{version}"): "viewer",
    ("GET", "/api/instances"): "viewer",
    ("POST", "/api/instances"): "operator",
    ("GET", "/api/instances/{instance_id}"): "viewer",
    ("GET", "/api/instances/{instance_id}/steps"): "viewer",
    ("GET", "/api/instances/{instance_id}/variables"): "viewer",
    ("POST", "/api/instances/{instance_id}/retry"): "operator",
    ("POST", "/api/instances/{instance_id}/skip"): "operator",
    ("POST", "/api/instances/{instance_id}/cancel"): "operator",
    ("POST", "/api/instances/{instance_id}/suspend"): "operator",
    ("POST", "/api/instances/{instance_id}/resume"): "operator",
    ("POST", "/api/instances/{instance_id}/tasks/{element_id}/complete"): "operator",
    ("GET", "/api/incidents"): "viewer",
    ("GET", "/api/incidents/{incident_id}"): "viewer",
    ("GET", "/api/connections"): "viewer",
    ("POST", "/api/connections"): "admin",
    ("GET", "/api/connections/{name}"): "viewer",
    ("GET", "/api/connections/{name}/authorize"): "admin",
    ("GET", "/api/connections/{name}/callback"): PUBLIC,
    ("GET", "/api/tokens"): "admin",
    ("POST", "/api/tokens"): "admin",
    ("DELETE", "/api/tokens/{name}"): "admin",
}

# Routes whose OpenAPI entry does not list the 401/403 answers (yet).
ERRORS_NOT_DESCRIBED: set[tuple[str, str]] = set()

SAMPLE = {
    "catalog": "items",
    "record_id": "1",
    "deployment_id": "1",
    "process_id": "nope",
    "version": "1",
    "instance_id": "1",
    "element_id": "review",
    "incident_id": "1",
    "name": "nope",
}


def api_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every endpoint: in the OpenAPI document, or under /api."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):  # through included routers
        path = route.path or ""
        if isinstance(route.original_route, APIRoute) and (
            route.include_in_schema or path.startswith("/api")
        ):
            found.update((method, path) for method in route.methods or ())
    return found


def test_every_endpoint_lets_its_least_role_in_and_refuses_the_one_below(
    serve_api: ServeApi,
) -> None:
    api = serve_api(catalogs={"items": catalog()})
    routes = api_routes(api.server.app)
    assert sorted(routes - ROLE_OF.keys()) == [], "endpoints without a row in ROLE_OF"
    assert sorted(ROLE_OF.keys() - routes) == [], "rows in ROLE_OF for no endpoint"

    wrong: list[str] = []
    for (method, template), role in sorted(ROLE_OF.items()):
        path = template.format(**SAMPLE)
        body: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH") else {}
        below = None if role in (PUBLIC, "viewer") else ROLES[ROLES.index(role) - 1]
        who = None if role == PUBLIC else role
        allowed = api.call(who, method, path, allow_redirects=False, **body)
        if allowed.status_code in (401, 403) or allowed.status_code >= 500:
            wrong.append(f"{method} {template} as {role}: {allowed.status_code} {allowed.text}")
        if role == PUBLIC:
            continue
        refused = api.call(below, method, path, allow_redirects=False, **body)
        expected = 401 if below is None else 403
        if refused.status_code != expected:
            wrong.append(
                f"{method} {template} as {below or 'no token'}: {refused.status_code}, "
                f"not {expected}"
            )
        elif expected == 403:
            assert f"this needs the {role} role" in refused.json()["error"]["message"]
    assert wrong == []


def test_every_endpoint_is_described_in_the_openapi_document(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()})
    spec = api.get(None, "/openapi.json").json()
    for method, path in ROLE_OF:
        operation = spec["paths"][path][method.lower()]
        assert operation.get("summary"), (method, path)
        described = operation["responses"].keys()
        if ROLE_OF[method, path] == PUBLIC:
            assert not {"401", "403"} & described, (method, path)
        elif path.startswith("/api/") and (method, path) not in ERRORS_NOT_DESCRIBED:
            assert {"401", "403"} <= described, (method, path)
