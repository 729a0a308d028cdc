"""Service-task operators, looked up by name through one registry.

Outbound web calls go through `engine.components.outbound` (the request guard).
"""

from . import records as _records  # noqa: F401  (registers records.*)
from ._registry import OPERATORS, Operator, OperatorContext, OperatorRegistry, Param, RecordsPort

__all__ = ["OPERATORS", "Operator", "OperatorContext", "OperatorRegistry", "Param", "RecordsPort"]
