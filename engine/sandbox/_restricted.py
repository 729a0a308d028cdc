"""Script and expression evaluation under RestrictedPython.

Scripts are untrusted: they are compiled with ``compile_restricted`` (which refuses
names starting with ``_`` and rewrites attribute, item and iteration access through
guards) and run with a small set of builtins and helper namespaces. CPU and memory
limits are enforced by the caller that owns the process.
"""

from __future__ import annotations

import datetime as _datetime
import decimal as _decimal
import json as _json
import math as _math
import operator
import re as _re
import traceback
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from types import CodeType, SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
)
from RestrictedPython.PrintCollector import PrintCollector

from ._helpers import HELPERS

SCRIPT_FILENAME = "<script>"


class ScriptError(Exception):
    """A script or expression failed; ``line`` is 1-based within its source, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _namespace(module: Any, names: list[str]) -> SimpleNamespace:
    return SimpleNamespace(**{name: getattr(module, name) for name in names})


# Modules reach scripts as namespaces holding only what is safe: the json module,
# for one, carries a reference to `codecs`, whose `open` reaches the file system.
SAFE_MODULES: dict[str, SimpleNamespace] = {
    "datetime": _namespace(
        _datetime, ["date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR"]
    ),
    "zoneinfo": SimpleNamespace(ZoneInfo=ZoneInfo),
    "math": _namespace(_math, [n for n in dir(_math) if not n.startswith("_")]),
    "re": _namespace(
        _re,
        [
            "compile",
            "escape",
            "findall",
            "finditer",
            "fullmatch",
            "match",
            "search",
            "split",
            "sub",
            "subn",
            "IGNORECASE",
            "MULTILINE",
            "DOTALL",
            "VERBOSE",
            "I",
            "M",
            "S",
        ],
    ),
    "json": _namespace(_json, ["dumps", "loads", "JSONDecodeError"]),
    "decimal": _namespace(_decimal, ["Decimal", "ROUND_HALF_UP", "ROUND_HALF_EVEN"]),
}

_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "^=": operator.ixor,
    "|=": operator.ior,
}


# Roads to frames, code and interpreter state that do not start with "_".
# RestrictedPython refuses most of them when compiling; this is the second lock.
_FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "gi_frame", "gi_code", "gi_yieldfrom", "gi_running", "gi_suspended",
        "cr_frame", "cr_code", "cr_await", "cr_origin", "cr_running",
        "ag_frame", "ag_code", "ag_await", "ag_running",
        "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace", "f_lasti",
        "tb_frame", "tb_next", "tb_lasti", "tb_lineno",
        "co_code", "co_consts", "co_names", "co_varnames", "co_filename",
        "func_globals", "func_code", "func_closure", "mro", "with_traceback",
        "format", "format_map", "__globals__",
    }
)  # fmt: skip


def _getattr(obj: Any, name: str, *default: Any) -> Any:
    # RestrictedPython's safer_getattr quietly answers None for a missing
    # attribute; a typo in a script should fail loudly instead.
    if not isinstance(name, str) or name.startswith("_") or name in _FORBIDDEN_ATTRIBUTES:
        if isinstance(obj, str) and name in ("format", "format_map"):
            raise NotImplementedError("str.format is not available to scripts; use f-strings")
        raise AttributeError(f"attribute {name!r} is not accessible to scripts")
    return getattr(obj, name, *default)


_output_limit = 64 * 1024


def set_output_limit(limit: int) -> None:
    global _output_limit
    _output_limit = limit


class _CappedPrint(PrintCollector):
    """print() in a script: collected, up to the output limit."""

    def __init__(self, _getattr_: Any = None) -> None:
        super().__init__(_getattr_)  # type: ignore[no-untyped-call]
        self.size = 0

    def write(self, text: str) -> None:
        self.size += len(text)
        if self.size > _output_limit:
            raise ScriptError(f"script printed more than {_output_limit // 1024} KiB")
        super().write(text)


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


def _import(name: str, *args: Any, **kwargs: Any) -> Any:
    module = SAFE_MODULES.get(name)
    if module is None or "." in name:
        allowed = ", ".join(sorted(SAFE_MODULES))
        raise ImportError(f"import of {name!r} is not allowed; scripts may import {allowed}")
    return module


def _builtins() -> dict[str, Any]:
    extra = {
        "list": list,
        "dict": dict,
        "set": set,
        "frozenset": frozenset,
        "min": min,
        "max": max,
        "sum": sum,
        "any": any,
        "all": all,
        "enumerate": enumerate,
        "map": map,
        "filter": filter,
        "reversed": reversed,
        "__import__": _import,
    }
    return {**safe_builtins, **extra}


_BASE_GLOBALS: dict[str, Any] = {
    "__builtins__": _builtins(),
    "_getattr_": _getattr,
    "_getitem_": default_guarded_getitem,
    "_getiter_": default_guarded_getiter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": _inplacevar,
    "_print_": _CappedPrint,
    **SAFE_MODULES,
    **HELPERS,
}
GIVEN_NAMES = frozenset(_BASE_GLOBALS)


@lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> CodeType:
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(source.strip() if mode == "eval" else source, SCRIPT_FILENAME)
    if result.errors or result.code is None:
        raise ScriptError(*_first_compile_error(result.errors))
    code: CodeType = result.code
    return code


def _first_compile_error(errors: Sequence[str]) -> tuple[str, int | None]:
    # RestrictedPython reports e.g. 'Line 2: "_x" is an invalid variable name ...'
    text = errors[0] if errors else "cannot be compiled"
    match = _re.match(r"Line (\d+): (.*)", text, _re.S)
    if match:
        return match.group(2), int(match.group(1))
    return text, None


def check(source: str, mode: str = "exec") -> ScriptError | None:
    """Compile without running; the error (with its line) or None."""
    try:
        _compile(source, mode)
    except ScriptError as err:
        return err
    return None


def _line_of(exc: BaseException) -> int | None:
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == SCRIPT_FILENAME:
            line = frame.lineno
    return line


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """The value of a Python expression over ``variables``."""
    code = _compile(expression, "eval")
    scope = {**_BASE_GLOBALS, **variables}
    try:
        return eval(code, scope)
    except (ScriptError, MemoryError):
        raise  # the sandbox process reports a MemoryError as the memory limit
    except Exception as exc:
        raise ScriptError(_describe(exc), _line_of(exc)) from None


def execute(script: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    """Run a script; returns the variables as the script left them.

    Names the script binds become variables, except functions, modules and the
    helpers it was given. Names it deletes are gone from the result.
    """
    code = _compile(script, "exec")
    scope: dict[str, Any] = {**_BASE_GLOBALS, **variables}
    try:
        exec(code, scope)
    except (ScriptError, MemoryError):
        raise  # the sandbox process reports a MemoryError as the memory limit
    except Exception as exc:
        raise ScriptError(_describe(exc), _line_of(exc)) from None
    result: dict[str, Any] = {}
    for name, value in scope.items():
        if name.startswith("_"):
            continue
        if name in GIVEN_NAMES and value is _BASE_GLOBALS[name]:
            continue
        if callable(value) or isinstance(value, SimpleNamespace):
            continue
        result[name] = value
    return result
