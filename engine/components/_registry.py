"""Service-task operators: a name, its parameters, and what it does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from engine.errors import CatflowError

from .outbound import HttpCall, HttpClient


class RecordsPort(Protocol):
    """Record operations as operators need them (implemented over the record service)."""

    def get(self, session: Session, catalog: str, record_id: int) -> dict[str, Any]: ...

    def find(
        self, session: Session, catalog: str, where: Mapping[str, Any], limit: int
    ) -> list[dict[str, Any]]: ...

    def create(
        self, session: Session, catalog: str, data: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]: ...

    def update(
        self, session: Session, catalog: str, record_id: int, data: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def delete(self, session: Session, catalog: str, record_id: int) -> bool: ...


@dataclass
class OperatorContext:
    """What an operator gets besides its parameters."""

    instance_id: int
    process_id: str
    task_id: str
    element_id: str
    session: Session  # the transaction the step's writes and checkpoint commit in
    records: RecordsPort
    http_client: HttpClient | None = None
    attempts: int = 0  # attempts earlier runs of this step made before being put off
    notes: list[str] = field(default_factory=list)
    exchanges: list[dict[str, Any]] = field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        # Task ids survive checkpoints: a replay of the same task gets the same key.
        return f"instance:{self.instance_id}:task:{self.task_id}"

    def note(self, message: str) -> None:
        """Add a line to this step's log entry."""
        self.notes.append(message)

    def http(self, call: HttpCall) -> Any:
        """Send a request through the outbound layer; its exchanges go to the step log.

        Returns the ``requests.Response`` of the last attempt.
        """
        if self.http_client is None:
            raise CatflowError("outbound calls are not available to this run")
        response = self.http_client.send(call, attempts=self.attempts, record=self.exchanges.append)
        self.attempts = 0  # a later call of the same step starts its own count
        return response


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class Operator:
    name: str
    description: str
    params: tuple[Param, ...]
    run: Callable[[OperatorContext, dict[str, Any]], Any]
    writes: bool = False  # its changes commit together with the instance's checkpoint

    @property
    def required_params(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if p.required)

    @property
    def optional_params(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if not p.required)


class OperatorRegistry:
    def __init__(self) -> None:
        self._operators: dict[str, Operator] = {}

    def register(self, operator: Operator) -> None:
        if operator.name in self._operators:
            raise ValueError(f"operator {operator.name!r} is registered twice")
        self._operators[operator.name] = operator

    def get(self, name: str) -> Operator | None:
        return self._operators.get(name)

    def all(self) -> dict[str, Operator]:
        return dict(self._operators)


OPERATORS = OperatorRegistry()
