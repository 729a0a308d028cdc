"""Service-task operators, looked up by name through one registry.

Outbound web calls go through `engine.components.outbound` (the request guard and the
HTTP layer: retries, rate limits, tokens, redacted exchange records).
"""

from . import google_calendar as _google_calendar  # noqa: F401  (google_calendar.*)
from . import http as _http  # noqa: F401  (registers http.request)
from . import records as _records  # noqa: F401  (registers records.*)
from ._registry import OPERATORS, Operator, OperatorContext, OperatorRegistry, Param, RecordsPort

__all__ = ["OPERATORS", "Operator", "OperatorContext", "OperatorRegistry", "Param", "RecordsPort"]
