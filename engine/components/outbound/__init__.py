"""The outbound request guard: which hosts and addresses a web call may reach, and how much
of a response it may read. Every outbound call goes through a session made here.
"""

from ._policy import (
    DEFAULT_MAX_RESPONSE_BYTES,
    OutboundPolicy,
    OutboundRefused,
    ResponseTooLarge,
    why_not_public,
)
from ._session import GuardedAdapter, guard_session, guarded_session, read_limited

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "GuardedAdapter",
    "OutboundPolicy",
    "OutboundRefused",
    "ResponseTooLarge",
    "guard_session",
    "guarded_session",
    "read_limited",
    "why_not_public",
]
