"""``http.request``: any web call, through the outbound layer (guard, retries, step log)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from engine.errors import BpmnError, ValidationFailed

from ._registry import OPERATORS, Operator, OperatorContext, Param
from .outbound import HttpCall
from .outbound._redact import BODY_LIMIT

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def parsed_body(response: requests.Response) -> Any:
    """The body as JSON when it says it is JSON, else text; None when empty."""
    if not response.content:
        return None
    if "json" in response.headers.get("Content-Type", "").lower():
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


def _mapping(params: dict[str, Any], name: str) -> Mapping[str, Any] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationFailed(f"parameter {name!r} must be an object, got {value!r}")
    return value


def _expected(params: dict[str, Any]) -> set[int] | None:
    value = params.get("expected")
    if value is None:
        return None
    items = value if isinstance(value, list | tuple) else [value]
    if not items or any(isinstance(i, bool) or not isinstance(i, int) for i in items):
        raise ValidationFailed(
            f"parameter 'expected' must be a status or a list of statuses, got {value!r}"
        )
    return set(items)


def _call(params: dict[str, Any]) -> HttpCall:
    method = str(params.get("method") or "GET").upper()
    if method not in METHODS:
        raise ValidationFailed(f"parameter 'method' must be one of {', '.join(METHODS)}")
    url = params["url"]
    if not isinstance(url, str) or not url:
        raise ValidationFailed(f"parameter 'url' must be a URL, got {url!r}")
    bodies = [name for name in ("json", "form", "text") if params.get(name) is not None]
    if len(bodies) > 1:
        raise ValidationFailed(f"give one body, not {' and '.join(bodies)}")
    text = params.get("text")
    if text is not None and not isinstance(text, str):
        raise ValidationFailed(f"parameter 'text' must be a string, got {type(text).__name__}")
    headers = _mapping(params, "headers")
    timeout = params.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ValidationFailed(f"parameter 'timeout' must be a number of seconds, got {timeout!r}")
    connection = params.get("connection")
    if connection is not None and not isinstance(connection, str):
        raise ValidationFailed(
            f"parameter 'connection' must be a connection name, not {connection!r}"
        )
    repeatable = params.get("repeatable")
    return HttpCall(
        method=method,
        url=url,
        query=_mapping(params, "query"),
        headers={str(k): str(v) for k, v in headers.items()} if headers else None,
        json_body=params.get("json"),
        form=_mapping(params, "form"),
        text=text,
        connection=connection,
        repeatable=bool(repeatable) if repeatable is not None else None,
        timeout_s=float(timeout) if timeout is not None else None,
    )


def _request(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    call = _call(params)
    expected = _expected(params)
    response = ctx.http(call)
    body = parsed_body(response)
    result = {"status": response.status_code, "headers": dict(response.headers), "body": body}
    ok = response.status_code in expected if expected else 200 <= response.status_code < 300
    if not ok:
        shown = body if not isinstance(body, str) else body[:BODY_LIMIT]
        raise BpmnError(
            str(response.status_code),
            f"{call.method} {response.url} answered {response.status_code} {response.reason}"
            + (f", expected {sorted(expected)}" if expected else ""),
            {"status": response.status_code, "response": shown},
        )
    return result


OPERATORS.register(
    Operator(
        "http.request",
        "A web request. Result: {status, headers, body} (body parsed when JSON). A status "
        "outside `expected` (default: any 2xx) is the BPMN error whose code is the status, "
        "e.g. '404'. Network errors, 5xx and 429 are retried with back-off.",
        (
            Param("url", "absolute URL, or a path under the connection's API URL"),
            Param("method", "GET (default), HEAD, POST, PUT, PATCH, DELETE, OPTIONS", False),
            Param("query", "an object of query parameters (a list repeats one)", False),
            Param("headers", "an object of request headers", False),
            Param("json", "a JSON body", False),
            Param("form", "a form body (an object)", False),
            Param("text", "a text body", False),
            Param("connection", "an OAuth2 connection whose token is sent", False),
            Param("expected", "a status or list of statuses that count as success", False),
            Param("timeout", "read timeout in seconds", False),
            Param(
                "repeatable",
                "whether the request may be sent again after a failure (default: by method; "
                "POST and PATCH only when the service surely did not act on it)",
                False,
            ),
        ),
        _request,
    )
)
