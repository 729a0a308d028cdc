"""Injected faults (latency, error shares, quotas) and the request log."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from ._errors import ApiError
from ._state import Clock

# Google's published default: 600 queries per minute per user.
GOOGLE_USER_QUOTA_PER_MINUTE = 600
WINDOW_SECONDS = 60.0


@dataclass
class Faults:
    """What goes wrong on purpose. Every field can be changed at run time.

    ``error_rates`` maps an HTTP status (429, 500 or 503) to the share of Calendar
    API requests answered with it (0.0 .. 1.0). Quotas count Calendar API requests
    over a sliding minute; ``None`` (or 0) switches a quota off.
    """

    latency_ms: float = 0.0
    error_rates: dict[int, float] = field(default_factory=dict)
    retry_after_s: int = 1
    user_quota_per_minute: int | None = GOOGLE_USER_QUOTA_PER_MINUTE
    project_quota_per_minute: int | None = None
    seed: int | None = None
    # Answers for the next Calendar API requests, in order, before any share applies:
    # 429, 500, 503, or "403 <reason>" (rateLimitExceeded, userRateLimitExceeded,
    # quotaExceeded, dailyLimitExceeded); 200 lets one request through.
    script: list[int | str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["error_rates"] = {str(k): v for k, v in self.error_rates.items()}
        return data

    def update(self, data: dict[str, Any]) -> None:
        known = set(self.to_json())
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        for key, value in data.items():
            if key == "error_rates":
                rates = {int(k): float(v) for k, v in (value or {}).items()}
                bad = set(rates) - {429, 500, 503}
                if bad or any(not 0.0 <= r <= 1.0 for r in rates.values()):
                    raise ValueError("error_rates maps 429/500/503 to a share in [0, 1]")
                self.error_rates = rates
            elif key == "script":
                self.script = [_scripted(v) for v in value or []]
            else:
                setattr(self, key, value)


SCRIPTED_REASONS = (
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
    "dailyLimitExceeded",
)


def _scripted(value: Any) -> int | str:
    if value in (200, 429, 500, 503):
        return int(value)
    if isinstance(value, str) and value.startswith("403 ") and value[4:] in SCRIPTED_REASONS:
        return value
    raise ValueError(
        f"script entry {value!r}: expected 200, 429, 500, 503 or '403 <reason>' with a reason "
        f"of {', '.join(SCRIPTED_REASONS)}"
    )


class FaultInjector:
    """Applies :class:`Faults` to Calendar API requests and keeps the request log."""

    def __init__(self, faults: Faults, clock: Clock) -> None:
        self.faults = faults
        self.clock = clock
        self._lock = threading.Lock()
        self._random = random.Random(faults.seed)
        self._per_user: dict[str, deque[float]] = {}
        self._project: deque[float] = deque()
        self.log: list[dict[str, Any]] = []

    def reseed(self) -> None:
        with self._lock:
            self._random = random.Random(self.faults.seed)

    def reset_quotas(self) -> None:
        with self._lock:
            self._per_user.clear()
            self._project.clear()

    def _throttled(self, reason: str, message: str, code: int = 403) -> ApiError:
        return ApiError(
            code,
            reason,
            message,
            domain="usageLimits",
            headers={"Retry-After": str(self.faults.retry_after_s)},
        )

    def check(self, user: str) -> None:
        """Raise the quota or injected error this request gets, if any."""
        now = self.clock()
        with self._lock:
            window = self._per_user.setdefault(user, deque())
            for queue in (window, self._project):
                while queue and queue[0] <= now - WINDOW_SECONDS:
                    queue.popleft()
            user_quota = self.faults.user_quota_per_minute
            if user_quota and len(window) >= user_quota:
                raise self._throttled(
                    "userRateLimitExceeded",
                    f"Quota exceeded for quota metric 'Queries' and limit 'Queries per minute "
                    f"per user' ({user_quota}).",
                )
            project_quota = self.faults.project_quota_per_minute
            if project_quota and len(self._project) >= project_quota:
                raise self._throttled(
                    "rateLimitExceeded",
                    f"Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' "
                    f"({project_quota}).",
                )
            window.append(now)
            self._project.append(now)
            draw = self._random.random()
            scripted = self.faults.script.pop(0) if self.faults.script else None
        if scripted is not None:
            self._scripted_error(scripted)
            return
        bound = 0.0
        for status in sorted(self.faults.error_rates):
            bound += self.faults.error_rates[status]
            if draw < bound:
                if status == 429:
                    raise self._throttled("rateLimitExceeded", "Rate Limit Exceeded", 429)
                if status == 500:
                    raise ApiError(500, "backendError", "Backend Error")
                raise ApiError(503, "backendError", "The service is currently unavailable.")

    def _scripted_error(self, answer: int | str) -> None:
        if answer == 200:
            return
        if answer == 429:
            raise self._throttled("rateLimitExceeded", "Rate Limit Exceeded", 429)
        if answer == 500:
            raise ApiError(500, "backendError", "Backend Error")
        if answer == 503:
            raise ApiError(503, "backendError", "The service is currently unavailable.")
        reason = str(answer).split(" ", 1)[1]
        if reason in ("rateLimitExceeded", "userRateLimitExceeded"):
            raise self._throttled(reason, "Rate Limit Exceeded")
        raise ApiError(
            403, reason, f"Quota exceeded ({reason}); it resets daily.", domain="usageLimits"
        )

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.log)

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()
