"""The one outbound HTTP layer every operator uses.

On top of the request guard (:func:`guard_session`) it adds what surviving a real
service takes:

* connect and read **timeouts** on every request;
* a **rate limit** per connection (by default below Google's 600 requests per minute
  per user), a token bucket whose burst is small enough that no sliding minute sees
  more than the limit;
* **retries** with exponential back-off and jitter on network errors, 5xx, 429 and 403
  with reason ``rateLimitExceeded`` / ``userRateLimitExceeded`` (never
  ``quotaExceeded``: a daily quota does not come back in seconds), honouring
  ``Retry-After``. Requests that may not be repeated safely (a POST without a
  client-chosen id) are retried only when the service surely did not act on them;
* a back-off longer than ``max_inline_wait`` does not hold the worker: it raises
  :class:`RetryLater` and the instance waits with a wake-up time;
* **OAuth2**: a connection's bearer token, refreshed once on a 401;
* every exchange handed to a recorder with the Authorization header, tokens and
  secrets redacted, for the step log.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests

from engine import metrics
from engine.errors import CatflowError, RetryLater

from ._policy import OutboundPolicy
from ._redact import redact_headers, redact_url, shown_body
from ._session import guard_session

GOOGLE_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

Recorder = Callable[[dict[str, Any]], None]


class Credentials(Protocol):
    """OAuth2 connections as the HTTP layer needs them (implemented by connections.Tokens)."""

    def api_base(self, connection: str) -> str: ...

    def allowed_hosts(self, connection: str) -> list[str]: ...

    def access_token(self, connection: str) -> str: ...

    def after_unauthorized(self, connection: str, rejected: str) -> str: ...


class OutboundFailed(CatflowError):
    """A call could not be made or gave no answer, after every retry."""


@dataclass(frozen=True)
class RetrySettings:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_attempts: int = 8  # in all, counting attempts of earlier runs of the step
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    max_inline_wait_s: float = 5.0  # longer waits put the instance off instead
    # Per connection: with its burst of 9, under 600 per minute. 0: no limit of our own.
    rate_per_minute: int = 580


@dataclass
class HttpCall:
    """One request as an operator asks for it."""

    method: str
    url: str  # absolute, or relative to the connection's API base URL
    query: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    json_body: Any = None
    form: Mapping[str, Any] | None = None
    text: str | None = None
    connection: str | None = None
    repeatable: bool | None = None  # None: by method (safe methods may be repeated)
    timeout_s: float | None = None  # read timeout for this call
    max_attempts: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Limiter(Protocol):
    """What the HTTP client asks of a rate limit."""

    def acquire(self, key: str, max_wait_s: float) -> tuple[bool, float]:
        """(True, wait): a slot is ours in ``wait`` seconds. (False, wait): too long."""


def bucket_shape(per_minute: int) -> tuple[float, float]:
    """A rate limit's token bucket: (tokens per second, burst)."""
    if per_minute <= 0:
        raise CatflowError(f"a rate limit of {per_minute} requests per minute is not possible")
    # A small burst: burst + one minute's refill is what a sliding minute can see, so
    # keep the configured rate that much below the service's limit.
    return per_minute / 60.0, float(max(1, min(10, per_minute // 60)))


class NoRateLimit:
    """No limit of our own (a rate of 0): every call may go at once. The service's own
    limit still answers 429 or 403 rateLimitExceeded, and those are retried."""

    def acquire(self, key: str, max_wait_s: float) -> tuple[bool, float]:
        return True, 0.0


def default_limiter(per_minute: int) -> Limiter:
    """This process's own buckets at ``per_minute``; none at all for 0."""
    return NoRateLimit() if per_minute == 0 else RateLimiter(per_minute)


class RateLimiter:
    """Token buckets by key; thread-safe. ``acquire`` reserves a slot or says how long to wait.

    They hold within one process; ``SharedRateLimiter`` holds across processes.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst = bucket_shape(per_minute)
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)

    def acquire(self, key: str, max_wait_s: float) -> tuple[bool, float]:
        """(True, wait): a slot is ours in ``wait`` seconds. (False, wait): too long; not taken."""
        with self._lock:
            now = self.clock()
            tokens, updated = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - updated) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            if wait > max_wait_s:
                self._buckets[key] = (tokens, now)
                return False, wait
            self._buckets[key] = (tokens - 1, now)
            return True, wait


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, (when - current).total_seconds())


def google_reason(response: requests.Response) -> str | None:
    """The ``reason`` of a Google-shaped error body, if there is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    errors = error.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        reason = errors[0].get("reason")
        if isinstance(reason, str):
            return reason
    status = error.get("status")
    return status if isinstance(status, str) else None


def transient_reason(response: requests.Response) -> str | None:
    """Why an answer is worth trying again (throttling, a server fault), or None."""
    status = response.status_code
    if status >= 500:
        return f"HTTP {status}"
    if status == 429:
        return f"HTTP 429 {google_reason(response) or 'Too Many Requests'}"
    if status == 403:
        reason = google_reason(response)
        if reason in GOOGLE_RATE_LIMIT_REASONS:
            return f"HTTP 403 {reason}"
    return None


def _not_acted_on(response: requests.Response) -> bool:
    """Answers that say the request was turned away before the service acted on it."""
    status = response.status_code
    if status in (429, 503):
        return True
    return status == 403 and google_reason(response) in GOOGLE_RATE_LIMIT_REASONS


class HttpClient:
    """Sends :class:`HttpCall` requests through the guard, with retries and rate limits."""

    def __init__(
        self,
        policy: OutboundPolicy,
        credentials: Credentials | None = None,
        settings: RetrySettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        limiter: Limiter | None = None,
    ) -> None:
        """``limiter``: the rate limit's buckets; by default this process's own."""
        self.policy = policy
        self.credentials = credentials
        self.settings = settings or RetrySettings()
        self.limiter = limiter or default_limiter(self.settings.rate_per_minute)
        self.sleep = sleep
        self.jitter = jitter
        self._local = threading.local()

    # -- sessions ----------------------------------------------------------------------------

    def _session(self, connection: str | None) -> tuple[requests.Session, str]:
        """This thread's guarded session for ``connection``, and the connection's API base
        URL (both read from the store once, not per call)."""
        sessions: dict[str | None, tuple[requests.Session, str]] | None = getattr(
            self._local, "sessions", None
        )
        if sessions is None:
            sessions = self._local.sessions = {}
        found = sessions.get(connection)
        if found is None:
            policy, base = self.policy, ""
            if connection is not None:
                assert self.credentials is not None
                policy = policy.for_connection(
                    connection, self.credentials.allowed_hosts(connection)
                )
                base = self.credentials.api_base(connection).rstrip("/") + "/"
            session = guard_session(requests.Session(), policy)
            session.max_redirects = 5
            found = sessions[connection] = (session, base)
        return found

    def _url(self, call: HttpCall, base: str) -> str:
        if call.connection is None:
            return call.url
        url = urljoin(base, call.url.lstrip("/")) if "://" not in call.url else call.url
        if _origin(url) != _origin(base):
            # A connection's token is only ever sent to the connection's own API.
            raise CatflowError(
                f"{redact_url(url)} is not on the API of connection {call.connection!r} "
                f"({_origin(base)}); its token is sent nowhere else",
            )
        return url

    # -- sending -----------------------------------------------------------------------------

    def send(self, call: HttpCall, *, attempts: int = 0, record: Recorder | None = None) -> Any:
        """Send ``call``; the last answer (whatever its status) once no retry is due.

        ``attempts`` counts attempts made by earlier runs of the step. Raises
        :class:`RetryLater` when the next attempt is too far off to wait for here,
        :class:`OutboundFailed` when the service could not be reached after the last
        attempt, and ``OutboundRefused`` when the guard refuses the address.
        """
        s = self.settings
        method = call.method.upper()
        session, base = self._session(call.connection)
        url = self._url(call, base)
        repeatable = method in SAFE_METHODS if call.repeatable is None else call.repeatable
        max_attempts = call.max_attempts or s.max_attempts
        limiter_key = call.connection or (urlsplit(url).hostname or "")
        refreshed = False
        token: str | None = None
        while True:
            taken, wait = self.limiter.acquire(limiter_key, s.max_inline_wait_s)
            if not taken:
                raise RetryLater(wait, f"rate limit of {s.rate_per_minute}/min", attempts)
            if wait:
                self.sleep(wait)
            headers = dict(call.headers or {})
            if call.connection is not None:
                assert self.credentials is not None
                if token is None:
                    token = self.credentials.access_token(call.connection)
                headers["Authorization"] = f"Bearer {token}"
            attempts += 1
            started = time.perf_counter()
            at = datetime.now(UTC)
            response: requests.Response | None = None
            error: str | None = None
            sent = True
            try:
                response = session.request(
                    method,
                    url,
                    params=_query(call.query),
                    headers=headers,
                    json=call.json_body,
                    data=call.form if call.form is not None else call.text,
                    timeout=(s.connect_timeout_s, call.timeout_s or s.read_timeout_s),
                    allow_redirects=True,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = f"{type(exc).__name__}: {_short(exc)}"
                sent = not isinstance(exc, requests.ConnectTimeout) and not _refused(exc)
            secrets = [token] if token else []
            exchange = _exchange(call, method, url, headers, response, error, at, started, secrets)
            exchange["attempt"] = attempts
            metrics.observe_outbound(response.status_code if response is not None else None)

            if response is not None and response.status_code == 401 and token and not refreshed:
                assert self.credentials is not None and call.connection is not None
                refreshed = True
                exchange["next"] = "token refreshed; sending again"
                _record(record, exchange)
                token = self.credentials.after_unauthorized(call.connection, token)
                attempts -= 1  # a refreshed token is not a failed attempt
                continue

            if response is not None:
                why = transient_reason(response)
                may_repeat = repeatable or _not_acted_on(response)
            else:
                why = error
                may_repeat = repeatable or not sent
            if why is None or not may_repeat:
                _record(record, exchange)
                if response is None:
                    raise OutboundFailed(
                        f"{method} {redact_url(url)} failed: {error} "
                        "(not repeated: the service may have acted on it)"
                    )
                return response
            if attempts >= max_attempts:
                exchange["next"] = f"gave up after {attempts} attempts"
                _record(record, exchange)
                if response is None:
                    raise OutboundFailed(
                        f"{method} {redact_url(url)} failed after {attempts} attempts: {error}"
                    )
                return response
            delay = self.backoff(attempts)
            if response is not None:
                after = retry_after_seconds(response.headers.get("Retry-After"))
                if after is not None:
                    delay = max(delay, after)
            exchange["next"] = f"retry in {delay:.2f}s ({why})"
            _record(record, exchange)
            if delay > s.max_inline_wait_s:
                raise RetryLater(delay, why, attempts)
            self.sleep(delay)

    def backoff(self, attempts: int) -> float:
        """Exponential back-off with jitter: between half and all of base * 2^(n-1), capped."""
        s = self.settings
        ceiling = min(s.backoff_max_s, s.backoff_base_s * 2.0 ** max(0, attempts - 1))
        return float(ceiling * (0.5 + 0.5 * self.jitter()))


def _query(query: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    """Query parameters; a list value repeats the parameter, None leaves it out."""
    if not query:
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is None:
                continue
            if isinstance(item, bool):
                item = "true" if item else "false"
            pairs.append((key, str(item)))
    return pairs


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def _refused(exc: Exception) -> bool:
    """A connection that was never opened (refused, no route): nothing was sent."""
    text = repr(exc)
    return "NewConnectionError" in text or "NameResolutionError" in text


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "…"


def _record(record: Recorder | None, exchange: dict[str, Any]) -> None:
    if record is not None:
        record(exchange)


def _exchange(
    call: HttpCall,
    method: str,
    url: str,
    headers: dict[str, str],
    response: requests.Response | None,
    error: str | None,
    at: datetime,
    started: float,
    secrets: list[str],
) -> dict[str, Any]:
    """One request and its answer, as the step log keeps it."""
    if response is not None and response.request is not None:
        sent_url = response.request.url or url
        sent_headers = {str(k): str(v) for k, v in response.request.headers.items()}
        raw = response.request.body
        body = raw if isinstance(raw, bytes | str) else None
        content_type = sent_headers.get("Content-Type", "")
    else:
        sent_url, sent_headers = url, headers
        body = json.dumps(call.json_body) if call.json_body is not None else call.text
        content_type = "application/json" if call.json_body is not None else "text/plain"
    exchange: dict[str, Any] = {
        "at": at.isoformat(timespec="milliseconds"),
        "method": method,
        "url": redact_url(sent_url),
        "request_headers": redact_headers(_chosen(sent_headers)),
        "request_body": shown_body(body, content_type, secrets),
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    if call.connection:
        exchange["connection"] = call.connection
    if response is not None:
        exchange["status"] = response.status_code
        exchange["response_headers"] = redact_headers(
            {k: v for k, v in response.headers.items() if k.lower() in _SHOWN_RESPONSE_HEADERS}
        )
        exchange["response_body"] = shown_body(
            response.content, response.headers.get("Content-Type", ""), secrets
        )
    if error is not None:
        exchange["error"] = error
    return exchange


# Headers the HTTP library adds to every request by itself; the step log keeps the
# headers a call chose (and Authorization, redacted, to show that it was sent).
_TRANSPORT_HEADERS = {"user-agent", "accept-encoding", "connection", "content-length"}


def _chosen(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in headers.items()
        if k.lower() not in _TRANSPORT_HEADERS and not (k.lower() == "accept" and v == "*/*")
    }


_SHOWN_RESPONSE_HEADERS = {"content-type", "retry-after", "etag", "location", "www-authenticate"}
