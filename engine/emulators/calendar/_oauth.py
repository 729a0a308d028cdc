"""OAuth2 authorization-code flow: auto-consent, token, refresh, revocation."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._errors import ApiError, OAuthError, auth_error
from ._state import DEFAULT_USER, State, new_token

CODE_LIFETIME_S = 600.0
DEFAULT_SCOPE = "https://www.googleapis.com/auth/calendar"


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def authorize(state: State, params: dict[str, str]) -> str:
    """Consent at once and return the redirect location (with ``code`` and ``state``).

    The user is ``login_hint`` (or ``user``), else the default user. Errors about the
    client or redirect URI raise :class:`OAuthError` (Google shows them on its page
    rather than redirecting); errors about the request are sent to the redirect URI.
    """
    client_id = params.get("client_id")
    redirect_uri = params.get("redirect_uri")
    if not client_id:
        raise OAuthError("invalid_request", "Missing required parameter: client_id")
    if client_id not in state.clients:
        raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
    if not redirect_uri:
        raise OAuthError("invalid_request", "Missing required parameter: redirect_uri")
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        raise OAuthError("redirect_uri_mismatch", "Invalid redirect_uri.")
    extra = {"state": params["state"]} if "state" in params else {}
    if params.get("response_type") != "code":
        return _with_query(redirect_uri, {"error": "unsupported_response_type", **extra})
    scope = params.get("scope") or DEFAULT_SCOPE
    user = params.get("login_hint") or params.get("user") or DEFAULT_USER
    code = new_token("4/")
    with state.lock:
        state.codes[code] = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "user": user,
            "scope": scope,
            "offline": params.get("access_type") == "offline",
            "expires_at": state.now() + CODE_LIFETIME_S,
        }
        state.ensure_user(user)
    state.save()
    return _with_query(redirect_uri, {"code": code, "scope": scope, **extra})


def _client(state: State, form: dict[str, str], authorization: str | None) -> str:
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Unauthorized", 401) from None
        client_id, _, secret = decoded.partition(":")
    if not client_id:
        raise OAuthError("invalid_request", "Missing required parameter: client_id")
    if state.clients.get(client_id) is None:
        raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
    if state.clients[client_id] != secret:
        raise OAuthError("invalid_client", "Unauthorized", 401)
    return client_id


def _issue_access(state: State, grant: dict[str, Any], lifetime: int, refresh: str | None) -> str:
    token = new_token("ya29.")
    state.access_tokens[token] = {
        "user": grant["user"],
        "client_id": grant["client_id"],
        "scope": grant["scope"],
        "expires_at": state.now() + lifetime,
        "refresh_token": refresh,
    }
    return token


def token(
    state: State, form: dict[str, str], authorization: str | None, lifetime: int
) -> dict[str, Any]:
    """The ``/token`` endpoint for ``authorization_code`` and ``refresh_token`` grants."""
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("unsupported_grant_type", "Invalid grant_type: ")
    if grant_type not in ("authorization_code", "refresh_token"):
        raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    with state.lock:
        client_id = _client(state, form, authorization)
        if grant_type == "authorization_code":
            answer = _exchange_code(state, form, client_id, lifetime)
        else:
            answer = _refresh(state, form, client_id, lifetime)
    state.save()
    return answer


def _exchange_code(
    state: State, form: dict[str, str], client_id: str, lifetime: int
) -> dict[str, Any]:
    code = form.get("code")
    if not code:
        raise OAuthError("invalid_request", "Missing required parameter: code")
    grant = state.codes.pop(code, None)  # single use
    if grant is None or grant["expires_at"] <= state.now():
        raise OAuthError("invalid_grant", "Malformed auth code.")
    if grant["client_id"] != client_id:
        raise OAuthError("invalid_grant", "Unauthorized")
    if form.get("redirect_uri") != grant["redirect_uri"]:
        raise OAuthError("redirect_uri_mismatch", "Bad Request")
    refresh: str | None = None
    if grant["offline"]:
        refresh = new_token("1//")
        state.refresh_tokens[refresh] = {
            "user": grant["user"],
            "client_id": client_id,
            "scope": grant["scope"],
        }
    access = _issue_access(state, grant, lifetime, refresh)
    answer: dict[str, Any] = {
        "access_token": access,
        "expires_in": lifetime,
        "scope": grant["scope"],
        "token_type": "Bearer",
    }
    if refresh is not None:
        answer["refresh_token"] = refresh
    return answer


def _refresh(state: State, form: dict[str, str], client_id: str, lifetime: int) -> dict[str, Any]:
    refresh = form.get("refresh_token")
    if not refresh:
        raise OAuthError("invalid_request", "Missing required parameter: refresh_token")
    grant = state.refresh_tokens.get(refresh)
    if grant is None:
        raise OAuthError("invalid_grant", "Token has been expired or revoked.")
    if grant["client_id"] != client_id:
        raise OAuthError("unauthorized_client", "Unauthorized", 401)
    access = _issue_access(state, {**grant, "client_id": client_id}, lifetime, refresh)
    return {
        "access_token": access,
        "expires_in": lifetime,
        "scope": grant["scope"],
        "token_type": "Bearer",
    }


def revoke(state: State, value: str | None) -> None:
    """Revoke an access or refresh token; a refresh token takes its access tokens along."""
    with state.lock:
        if value and value in state.refresh_tokens:
            del state.refresh_tokens[value]
            for key in [k for k, v in state.access_tokens.items() if v["refresh_token"] == value]:
                del state.access_tokens[key]
        elif value and value in state.access_tokens:
            grant = state.access_tokens.pop(value)
            # Google: revoking an access token also revokes its refresh token.
            if grant["refresh_token"] is not None:
                revoke(state, grant["refresh_token"])
        else:
            raise OAuthError("invalid_token", "Token expired or revoked")
    state.save()


def authenticate(state: State, authorization: str | None, query_token: str | None) -> str:
    """The user of a Calendar API request, or a 401 ``authError``."""
    value = query_token
    if authorization:
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "bearer" or not rest.strip():
            raise auth_error()
        value = rest.strip()
    if not value:
        raise ApiError(
            401,
            "authError",
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential.",
            location="Authorization",
            location_type="header",
            headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
        )
    with state.lock:
        grant = state.access_tokens.get(value)
        if grant is None or grant["expires_at"] <= state.now():
            raise auth_error()
        user: str = grant["user"]
        state.ensure_user(user)
    return user


def issue_token(state: State, user: str, lifetime: int, client_id: str | None = None) -> str:
    """Mint an access token for ``user`` directly (a test and development shortcut)."""
    with state.lock:
        state.ensure_user(user)
        grant = {
            "user": user,
            "client_id": client_id or next(iter(state.clients)),
            "scope": DEFAULT_SCOPE,
        }
        access = _issue_access(state, grant, lifetime, None)
    state.save()
    return access


def expire_all(state: State) -> int:
    """The forced-expiry fault: every current access token expires now."""
    with state.lock:
        now = state.now()
        count = 0
        for grant in state.access_tokens.values():
            if grant["expires_at"] > now:
                grant["expires_at"] = now
                count += 1
    state.save()
    return count
