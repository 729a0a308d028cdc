"""What may come back from a sandbox process: plain data, never code.

Replies travel as pickles, and unpickling runs whatever callables a pickle names.
A script that broke out of RestrictedPython would control its sandbox process,
and with it what the worker unpickles; so the worker reads replies with an
unpickler that knows only the types a script's variables may hold — JSON's, sets,
bytes, and the date, time and decimal types scripts may import — and refuses
anything else.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

_ALLOWED = frozenset(
    {
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("builtins", "frozenset"),
        ("builtins", "set"),
    }
)


class Refused(pickle.UnpicklingError):
    """A reply named a type that may not leave the sandbox."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.type_name = f"{module}.{name}"


class _PlainData(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise Refused(module, name)


def loads(data: bytes) -> Any:
    """Unpickle a sandbox reply; Refused if it names any type but plain data's."""
    return _PlainData(io.BytesIO(data)).load()


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
