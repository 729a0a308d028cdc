"""Google's JSON error shapes: the API's ``{"error": {...}}`` and OAuth2's flat form."""

from __future__ import annotations

from typing import Any

# google.rpc canonical codes for the HTTP statuses the emulator answers with.
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}

_DEFAULT_MESSAGE = {
    400: "Bad Request",
    401: "Invalid Credentials",
    403: "Forbidden",
    404: "Not Found",
    409: "The requested identifier already exists.",
    410: "Resource has been deleted",
    412: "Precondition Failed",
    429: "Rate Limit Exceeded",
    500: "Backend Error",
    501: "Not Implemented",
    503: "The service is currently unavailable.",
}


class ApiError(Exception):
    """A Calendar API failure, rendered in Google's error shape."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str | None = None,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message or _DEFAULT_MESSAGE.get(code, "Error")
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.headers = dict(headers or {})
        super().__init__(f"{code} {reason}: {self.message}")

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location is not None:
            item["location"] = self.location
            item["locationType"] = self.location_type or "parameter"
        error: dict[str, Any] = {"code": self.code, "message": self.message, "errors": [item]}
        if self.code in _STATUS:
            error["status"] = _STATUS[self.code]
        return {"error": error}


def invalid_param(name: str, message: str | None = None) -> ApiError:
    return ApiError(
        400, "invalid", message or f"Invalid value for parameter: {name}", location=name
    )


def required_param(name: str) -> ApiError:
    return ApiError(400, "required", f"Required parameter: {name}", location=name)


def invalid_field(path: str, message: str | None = None) -> ApiError:
    return ApiError(400, "invalid", message or f"Invalid value for field: {path}", location=path)


def required_field(path: str) -> ApiError:
    return ApiError(400, "required", f"Missing required field: {path}", location=path)


def not_found() -> ApiError:
    return ApiError(404, "notFound", "Not Found")


def auth_error(message: str = "Invalid Credentials") -> ApiError:
    return ApiError(
        401,
        "authError",
        message,
        location="Authorization",
        location_type="header",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


class OAuthError(Exception):
    """An OAuth2 endpoint failure: ``{"error": "...", "error_description": "..."}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(f"{error}: {description}")

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}
