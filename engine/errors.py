"""Errors that reach people: each names the thing, what went wrong, and what to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    message: str
    where: str = ""
    hint: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "message": self.message, "hint": self.hint, **self.details}


class CatflowError(Exception):
    """Base for every error Catflow reports to a user instead of a stack trace.

    ``kind`` and ``details`` travel into an incident when the error stops an instance
    (e.g. kind "connection" with the connection's name, so re-authorising it can
    resume the instances it stopped).
    """

    kind = "operator"

    def __init__(
        self,
        message: str,
        problems: list[Problem] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []
        self.details = details or {}

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class NotFound(CatflowError):
    """A named thing (record, instance, process, catalog) does not exist."""


class ValidationFailed(CatflowError):
    """Input was refused; `problems` says what is wrong with each part of it."""


class Conflict(CatflowError):
    """The request contradicts the current state (e.g. an action on a finished instance)."""


class BpmnError(Exception):
    """A business failure a process can catch with an error boundary event (by ``code``).

    Raised by service operators; uncaught, it becomes an incident that carries the
    code, the message and the details (e.g. a response body).
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}


class RetryLater(Exception):
    """A step must be tried again later (a long back-off); the instance waits, no worker does.

    ``attempts`` is how many attempts the step has made so far; it is kept with the
    task and handed back to the operator when the step runs again. ``put_offs``, when
    given, says the database failed the step (this is the n-th time): that is no
    attempt of the step's own, and ``attempts`` stays as it was.
    """

    def __init__(
        self, delay_s: float, reason: str, attempts: int, *, put_offs: int | None = None
    ) -> None:
        super().__init__(f"retry in {delay_s:.1f}s: {reason}")
        self.delay_s = delay_s
        self.reason = reason
        self.attempts = attempts
        self.put_offs = put_offs
