"""Outbound calls. The request guard decides which hosts and addresses a web call may
reach and how much of a response it may read; the HTTP client on top of it adds
timeouts, rate limits, retries with back-off, OAuth2 tokens and redacted exchange
records. Every outbound call goes through them.
"""

from ._client import (
    Credentials,
    HttpCall,
    HttpClient,
    Limiter,
    NoRateLimit,
    OutboundFailed,
    RateLimiter,
    RetrySettings,
    google_reason,
    retry_after_seconds,
    transient_reason,
)
from ._policy import (
    DEFAULT_MAX_RESPONSE_BYTES,
    OutboundPolicy,
    OutboundRefused,
    ResponseTooLarge,
    why_not_public,
)
from ._session import GuardedAdapter, guard_session, guarded_session, read_limited
from ._shared_limit import SharedRateLimiter

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Credentials",
    "GuardedAdapter",
    "HttpCall",
    "HttpClient",
    "Limiter",
    "NoRateLimit",
    "OutboundFailed",
    "OutboundPolicy",
    "OutboundRefused",
    "RateLimiter",
    "ResponseTooLarge",
    "RetrySettings",
    "SharedRateLimiter",
    "google_reason",
    "guard_session",
    "guarded_session",
    "read_limited",
    "retry_after_seconds",
    "transient_reason",
    "why_not_public",
]
