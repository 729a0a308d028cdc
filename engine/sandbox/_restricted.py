"""Script and expression evaluation under RestrictedPython.

Scripts are untrusted: they are compiled with ``compile_restricted`` (which refuses
names starting with ``_`` and rewrites attribute, item and iteration access through
guards) and run with a small set of builtins and helper namespaces. CPU and memory
limits are enforced by the caller that owns the process.
"""

from __future__ import annotations

import ast
import datetime as _datetime
import decimal as _decimal
import gc
import importlib
import json as _json
import math as _math
import operator
import re as _re
import sys
import traceback
import zoneinfo as _zoneinfo
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from types import CodeType, SimpleNamespace
from typing import Any, NoReturn

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import RestrictingNodeTransformer

from ._helpers import HELPERS

SCRIPT_FILENAME = "<script>"


class ScriptError(Exception):
    """A script or expression failed; ``line`` is 1-based within its source, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _Module(SimpleNamespace):
    """A module as scripts see it: the safe names only, and a clear word about the rest.

    It has no ``__name__`` on purpose: ``from json import decoder`` would otherwise
    fall back to ``sys.modules["json.decoder"]`` and hand out the real module.
    """

    def __getattr__(self, name: str) -> NoReturn:
        title = self.__dict__.get("_catflow_module", "this module")
        offered = sorted(n for n in self.__dict__ if not n.startswith("_"))
        listed = f"; it offers {', '.join(offered)}" if len(offered) <= 12 else ""
        raise AttributeError(f"module {title!r} offers no {name!r} to scripts{listed}")

    def __repr__(self) -> str:
        return f"<module {self.__dict__.get('_catflow_module')!r} for scripts>"


def _namespace(module: Any, names: list[str]) -> SimpleNamespace:
    namespace = _Module(**{name: getattr(module, name) for name in names})
    namespace.__dict__["_catflow_module"] = module.__name__
    return namespace


# Modules reach scripts as namespaces holding only what is safe: the json module,
# for one, carries a reference to `codecs`, whose `open` reaches the file system.
SAFE_MODULES: dict[str, SimpleNamespace] = {
    "datetime": _namespace(
        _datetime, ["date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR"]
    ),
    "zoneinfo": _namespace(_zoneinfo, ["ZoneInfo"]),
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
    "@=": operator.imatmul,
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
        "func_globals", "func_code", "func_closure", "cell_contents", "mro", "with_traceback",
        "format", "format_map", "__globals__",
    }
)  # fmt: skip


def _getattr(obj: Any, name: str, *default: Any) -> Any:
    """``obj.name`` in a script."""
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


class _Unchangeable:
    """What ``_write_`` hands out for anything but a dict or a list: every change is refused.

    Scripts share the modules and helpers they are given with every later script
    in the same sandbox process, so none of them may be changed.
    """

    __slots__ = ("_what",)
    _what: str

    def __init__(self, obj: Any) -> None:
        if isinstance(obj, _Module):
            kind = f"the {obj.__dict__.get('_catflow_module')} module"
        else:
            kind = f"a {type(obj).__name__}"
        object.__setattr__(self, "_what", kind)

    def _refuse(self, change: str) -> NoReturn:
        raise TypeError(
            f"scripts cannot {change} of {self._what}; only dicts and lists can be changed"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        self._refuse(f"set the attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        self._refuse(f"delete the attribute {name!r}")

    def __setitem__(self, key: Any, value: Any) -> None:
        self._refuse("set an item")

    def __delitem__(self, key: Any) -> None:
        self._refuse("delete an item")


def _write(obj: Any) -> Any:
    """``obj.x = ...``, ``obj[k] = ...`` and their ``del``: only dicts and lists may change."""
    return obj if type(obj) in (dict, list) else _Unchangeable(obj)


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A call with ``*args`` or ``**kwargs`` in a script."""
    return func(*args, **kwargs)


# Library code written in C imports what it needs through the builtins of the
# frame that calls it — a script's: datetime's strftime() wants `time`, strptime()
# wants `_strptime`. Such an import passes a list as `fromlist`, which a script's
# import statement never does (None or a tuple), and the C caller then takes the
# module from sys.modules, not from what __import__ answers: answering None hands
# the script nothing.
_LIBRARY_IMPORTS = frozenset({"time", "_strptime"})
for _library in _LIBRARY_IMPORTS:
    importlib.import_module(_library)


def _import(
    name: str,
    globals: Any = None,
    locals: Any = None,
    fromlist: Any = None,
    level: int = 0,
) -> Any:
    if isinstance(fromlist, list) and name in _LIBRARY_IMPORTS and not level:
        return None
    allowed = ", ".join(sorted(SAFE_MODULES))
    if level:
        raise ImportError(f"relative imports are not allowed; scripts may import {allowed}")
    module = SAFE_MODULES.get(name)
    if module is None:
        raise ImportError(f"import of {name!r} is not allowed; scripts may import {allowed}")
    for wanted in fromlist or ():
        if not isinstance(wanted, str) or wanted not in module.__dict__ or wanted[:1] == "_":
            raise ImportError(f"module {name!r} offers no {wanted!r} to scripts")
    return module


def _builtins() -> dict[str, Any]:
    # RestrictedPython's safe builtins less setattr and delattr: nothing a script
    # holds has attributes it may change.
    base = {k: v for k, v in safe_builtins.items() if k not in ("setattr", "delattr")}
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
        # Pure functions over data that scripts need; attribute access stays guarded.
        "sorted": sorted,
        "zip": zip,
        "tuple": tuple,
        "__import__": _import,
    }
    return {**base, **extra}


_BASE_GLOBALS: dict[str, Any] = {
    "__builtins__": _builtins(),
    "_getattr_": _getattr,
    "_getitem_": default_guarded_getitem,
    "_getiter_": default_guarded_getiter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": _write,
    "_apply_": _apply,
    "_inplacevar_": _inplacevar,
    "_print_": _CappedPrint,
    **SAFE_MODULES,
    **HELPERS,
}
GIVEN_NAMES = frozenset(_BASE_GLOBALS)

# An error message is stored with the incident and shown to people: a script
# must not make it as long as it likes.
MESSAGE_LIMIT = 1000


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's rules, and a clear refusal of class definitions.

    RestrictedPython turns ``class`` into a call of ``__metaclass__``, which scripts
    are not given; said at deploy time it is clearer than a NameError later.
    """

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        self.error(node, "class definitions are not allowed in scripts; use dicts and functions")
        return node


@lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> CodeType:
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    try:
        result = compiler(
            source.strip() if mode == "eval" else source, SCRIPT_FILENAME, policy=_Policy
        )
    except (RecursionError, MemoryError):
        # The parser gives up on deep nesting (e.g. 5,000 minus signs) this way.
        raise ScriptError("the script is too deeply nested or too large to compile") from None
    if result.errors or result.code is None:
        raise ScriptError(*_first_compile_error(result.errors))
    code: CodeType = result.code
    return code


def _first_compile_error(errors: Sequence[str]) -> tuple[str, int | None]:
    # RestrictedPython reports e.g. 'Line 2: "_x" is an invalid variable name ...'
    # and, for errors without a place, 'Line None: ...'.
    text = errors[0] if errors else "cannot be compiled"
    match = _re.match(r"Line (\d+|None): (.*)", text, _re.S)
    if match:
        line = match.group(1)
        return _shorten(match.group(2)), int(line) if line.isdigit() else None
    return _shorten(text), None


def check(source: str, mode: str = "exec") -> ScriptError | None:
    """Compile without running; the error (with its line) or None."""
    try:
        _compile(source, mode)
    except ScriptError as err:
        return err
    return None


def _line_of(exc: BaseException) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == SCRIPT_FILENAME:
            line = lineno
    return line


def _shorten(text: str) -> str:
    if len(text) <= MESSAGE_LIMIT:
        return text
    return f"{text[:MESSAGE_LIMIT]}… ({len(text):,} characters in all)"


def _describe(exc: BaseException) -> str:
    kind = type(exc).__name__
    try:
        text = str(exc)
    except Exception:  # e.g. a KeyError whose key is nested too deeply to show
        text = ""
    return _shorten(f"{kind}: {text}" if text else kind)


def _failure(exc: BaseException) -> ScriptError:
    """What a script raised, as the error its task fails with."""
    if isinstance(exc, ScriptError):  # the print limit
        if exc.line is None:
            exc.line = _line_of(exc)
        return exc
    return ScriptError(_describe(exc), _line_of(exc))


def _scope(variables: Mapping[str, Any]) -> dict[str, Any]:
    # A variable cannot take the place of a guard or of the builtins: names
    # starting with "_" are out of a script's reach anyway.
    given = {k: v for k, v in variables.items() if not str(k).startswith("_")}
    return {**_BASE_GLOBALS, **given}


def _ignore_unraisable(unraisable: Any) -> None:
    """A script's generator that fails while being closed is not worth a log line."""


@contextmanager
def _contained(scope: dict[str, Any]) -> Iterator[None]:
    """Everything the script left behind is gone before the evaluation ends.

    A generator's ``finally`` runs when the generator is collected. Left for the
    garbage collector, it would run during a later script in the same sandbox
    process and spend that script's time and memory; collected here, it spends
    the time of the script that made it. Errors it raises there are not printed.
    Garbage in reference cycles (a list holding itself and 200 MiB) is freed too,
    instead of piling up across scripts.
    """
    previous = sys.unraisablehook
    sys.unraisablehook = _ignore_unraisable
    try:
        yield
    finally:
        scope.clear()
        gc.collect()
        sys.unraisablehook = previous


def _run(code: CodeType, scope: dict[str, Any]) -> None:
    failure = None
    try:
        exec(code, scope)
    except MemoryError:
        raise  # the sandbox process reports a MemoryError as the memory limit
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the script's own
        failure = _failure(exc)
    if failure is not None:
        # Raised out here, the script's frames are not kept alive as its context.
        raise failure


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """The value of a Python expression over ``variables``."""
    code = _compile(expression, "eval")
    scope = _scope(variables)
    with _contained(scope):
        failure = None
        try:
            return eval(code, scope)
        except MemoryError:
            raise  # the sandbox process reports a MemoryError as the memory limit
        except BaseException as exc:
            failure = _failure(exc)
        raise failure


def execute(script: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    """Run a script; returns the variables as the script left them.

    Names the script binds become variables, except functions, modules and the
    helpers it was given. Names it deletes are gone from the result.
    """
    code = _compile(script, "exec")
    scope = _scope(variables)
    with _contained(scope):
        _run(code, scope)
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
