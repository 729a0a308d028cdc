"""Hostile scripts: every road out of the sandbox is closed, with a clear error.

Each case is a script an attacker (or a careless designer) could deploy. It must
fail with a specific message — never escape, never take the sandbox down — and
a well-behaved script must still evaluate right after it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from bpmn_builder import chain, end, script, start
from hostile_scripts import POISONED_GENERATOR

from engine.bpmn import validate_file
from engine.components import OPERATORS
from engine.errors import ValidationFailed
from engine.sandbox import MIB, Limits, SandboxPool, ScriptError, check, run_limited

FAST = Limits(cpu_seconds=0.5)  # runaway CPU: stopped after half a second
ROOMY = Limits(cpu_seconds=5)  # memory cases: the memory limit must be what stops them
SMALL = Limits(cpu_seconds=5, memory_bytes=64 * MIB)  # gradual growth: stopped early
RECORD = {"record": {"id": 7, "title": "Quarterly review", "tags": ["a", "b"]}}

NAME_ = 'is an invalid variable name because it starts with "_"'
ATTR_ = 'is an invalid attribute name because it starts with "_"'
RESTRICTED = "is a restricted name, that is forbidden to access in RestrictedPython"
NO_FORMAT = "str.format is not available to scripts; use f-strings"
ALLOWED = "scripts may import datetime, decimal, json, math, re, zoneinfo"
CPU = "script exceeded the CPU time limit of 0.5 s"
MEMORY = "script exceeded the memory limit of 256 MiB"
MEMORY_64 = "script exceeded the memory limit of 64 MiB"
PRINTED = "script printed more than 64 KiB"


def case(id_: str, source: str, fragment: str, line: int | None, limits: Limits = FAST) -> Any:
    return pytest.param(source, fragment, line, limits, id=id_)


HOSTILE = [
    # -- attributes: names starting with "_" are refused when compiling ------------------
    case("attr-class", "x = ().__class__", f'"__class__" {ATTR_}', 1),
    case(
        "attr-subclasses",
        "x = ().__class__.__bases__[0].__subclasses__()",
        f'"__subclasses__" {ATTR_}',
        1,
    ),
    case("attr-mro", "x = int.__mro__", f'"__mro__" {ATTR_}', 1),
    case("attr-mro-method", "x = int.mro()", "attribute 'mro' is not accessible to scripts", 1),
    case("attr-base", "x = bool.__base__", f'"__base__" {ATTR_}', 1),
    case("attr-globals", "def f():\n    pass\nx = f.__globals__", f'"__globals__" {ATTR_}', 3),
    case("attr-init-globals", "x = (1).__init__.__globals__", f'"__globals__" {ATTR_}', 1),
    case(
        "attr-init-globals-via-list",
        "x = [record][0].__init__.__globals__['__builtins__']",
        f'"__globals__" {ATTR_}',
        1,
    ),
    case("attr-builtins", "x = __builtins__['open']", f'"__builtins__" {NAME_}', 1),
    case("attr-dict", "x = json.__dict__", f'"__dict__" {ATTR_}', 1),
    case("attr-getattribute", "x = ''.__getattribute__('x')", f'"__getattribute__" {ATTR_}', 1),
    case("attr-reduce", "x = ''.__reduce_ex__(2)", f'"__reduce_ex__" {ATTR_}', 1),
    case("attr-py2-func-globals", "x = dig.func_globals", "'func_globals' is not accessible", 1),
    case("attr-build-class", "x = __build_class__", f'"__build_class__" {NAME_}', 1),
    # Identifiers are NFKC-normalised: a fullwidth "f" still spells `format`.
    case("attr-unicode-lookalike", "x = '{0.__class__}'.\uff46ormat(1)", NO_FORMAT, 1),
    # -- string formatting that reaches attributes --------------------------------------
    case("format-class", "x = '{0.__class__.__mro__}'.format(record)", NO_FORMAT, 1),
    case("format-globals", "x = '{0.__globals__[os]}'.format(dig)", NO_FORMAT, 1),
    case("format-map", "x = '{r.__class__}'.format_map({'r': record})", NO_FORMAT, 1),
    case("format-unbound", "x = str.format('{0.__class__}', 1)", "attribute 'format' is not", 1),
    case(
        "format-via-map",
        "x = list(map('{0.__class__}'.format, [1]))",
        NO_FORMAT,
        1,
    ),
    case("format-percent-dunder-key", "x = '%(__class__)s' % record", "KeyError: '__class__'", 1),
    case("format-fstring-attr", "x = f'{dig.__globals__}'", f'"__globals__" {ATTR_}', 1),
    case(
        "format-spec-is-no-field",
        'x = f\'{record["id"]:{"{0.__class__}"}}\'',
        "Invalid format specifier '{0.__class__}' for object of type 'int'",
        1,
    ),
    # -- frames, code objects, generators, coroutines ----------------------------------
    case("gen-gi-frame", "g = (i for i in [1])\nx = g.gi_frame", f'"gi_frame" {RESTRICTED}', 2),
    case(
        "gen-frame-globals",
        "g = (i for i in [1])\nx = g.gi_frame.f_back.f_globals",
        f'"f_globals" {RESTRICTED}',
        2,
    ),
    case(
        "gen-gi-code",
        "def g():\n    yield 1\nx = g().gi_code.co_consts",
        f'"gi_code" {RESTRICTED}',
        3,
    ),
    case(
        "gen-unicode-lookalike",
        "g = (i for i in [1])\nx = g.\uff47i_frame",
        f'"gi_frame" {RESTRICTED}',
        2,
    ),
    case(
        "gen-gi-running",
        "def g():\n    yield 1\nx = g().gi_running",
        "attribute 'gi_running' is not accessible to scripts",
        3,
    ),
    case("frame-f-back", "x = record.f_back", f'"f_back" {RESTRICTED}', 1),
    case("coroutine-def", "async def c():\n    pass", "AsyncFunctionDef statements are not", 1),
    case("coroutine-cr-frame", "x = record.cr_frame", f'"cr_frame" {RESTRICTED}', 1),
    case("asyncgen-ag-frame", "x = record.ag_frame", f'"ag_frame" {RESTRICTED}', 1),
    case(
        "gen-throw-systemexit",
        "def g():\n    yield 1\nx = g()\nfor y in x:\n    x.throw(SystemExit)",
        "SystemExit",
        2,  # raised where the generator stands: at its `yield`
    ),
    # -- exceptions and tracebacks ----------------------------------------------------
    case(
        "exc-traceback",
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    x = e.__traceback__.tb_frame",
        f'"tb_frame" {RESTRICTED}',
        4,
    ),
    case(
        "exc-dunder-traceback",
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    x = e.__traceback__",
        f'"__traceback__" {ATTR_}',
        4,
    ),
    case(
        "exc-context",
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    x = e.__context__",
        f'"__context__" {ATTR_}',
        4,
    ),
    case(
        "exc-with-traceback",
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    x = e.with_traceback(None)",
        "attribute 'with_traceback' is not accessible to scripts",
        4,
    ),
    case("exc-sys-exc-info", "import sys\nx = sys.exc_info()", "import of 'sys' is not", 1),
    case("exc-group", "try:\n    pass\nexcept* ValueError:\n    pass", "TryStar statements", 1),
    case("exc-systemexit", "x = 1\nraise SystemExit('bye')", "SystemExit: bye", 2),
    case("exc-keyboardinterrupt", "raise KeyboardInterrupt", "KeyboardInterrupt", 1),
    case("exc-generatorexit", "raise GeneratorExit", "GeneratorExit", 1),
    case(
        "exc-huge-message",
        "raise ValueError('x' * 10 ** 7)",
        "(10,000,012 characters in all)",
        1,
    ),
    # -- builtins ---------------------------------------------------------------------
    case("builtin-open", "x = open('/etc/passwd').read()", "name 'open' is not defined", 1),
    case("builtin-eval", "x = eval('1')", "Eval calls are not allowed", 1),
    case("builtin-exec", "exec('import os')", "Exec calls are not allowed", 1),
    case("builtin-compile", "x = compile('1', 'f', 'eval')", "name 'compile' is not", 1),
    case("builtin-globals", "x = globals()", "name 'globals' is not defined", 1),
    case("builtin-locals", "x = locals()", "name 'locals' is not defined", 1),
    case("builtin-vars", "x = vars(json)", "name 'vars' is not defined", 1),
    case("builtin-getattr", "x = getattr(dig, '__globals__')", "name 'getattr' is not", 1),
    case("builtin-setattr", "setattr(json, 'loads', len)", "name 'setattr' is not defined", 1),
    case("builtin-delattr", "delattr(math, 'pi')", "name 'delattr' is not defined", 1),
    case("builtin-type", "x = type(1)", "name 'type' is not defined", 1),
    case("builtin-type-3-args", "x = type('X', (), {})", "name 'type' is not defined", 1),
    case("builtin-object", "x = object", "name 'object' is not defined", 1),
    case("builtin-import", "x = __import__('os')", f'"__import__" {NAME_}', 1),
    case("builtin-breakpoint", "breakpoint()", '"breakpoint" is a reserved name', 1),
    case("builtin-input", "x = input()", "name 'input' is not defined", 1),
    case("builtin-help", "help(dig)", "name 'help' is not defined", 1),
    case("builtin-memoryview", "x = memoryview(b'x')", "name 'memoryview' is not", 1),
    case("builtin-exit", "exit()", "name 'exit' is not defined", 1),
    case("builtin-dir", "x = dir(dig)", "name 'dir' is not defined", 1),
    # -- classes ----------------------------------------------------------------------
    case("class-def", "x = 1\nclass A:\n    pass", "class definitions are not allowed", 2),
    case(
        "class-metaclass",
        "class A(metaclass=len):\n    pass",
        "class definitions are not allowed in scripts",
        1,
    ),
    case(
        "class-subclass-exception",
        "class E(Exception):\n    def __init__(self):\n        pass",
        "class definitions are not allowed in scripts",
        1,
    ),
    # -- imports ----------------------------------------------------------------------
    case("import-os", "import os", f"import of 'os' is not allowed; {ALLOWED}", 1),
    case("import-from-os", "from os import path", "import of 'os' is not allowed", 1),
    case("import-os-path", "import os.path", "import of 'os.path' is not allowed", 1),
    case("import-subprocess", "import subprocess", "import of 'subprocess' is not", 1),
    case("import-importlib", "import importlib", "import of 'importlib' is not", 1),
    case("import-time", "import time", "import of 'time' is not allowed", 1),
    case("import-operator", "import operator", "import of 'operator' is not", 1),
    case("import-functools", "from functools import partial", "import of 'functools'", 1),
    case("import-private", "from _strptime import time", "import of '_strptime' is not", 1),
    case("import-relative", "from . import json", "relative imports are not allowed", 1),
    case("import-star", "from math import *", '"*" imports are not allowed', 1),
    case("import-alias", "import math as os\nx = os.system('id')", "offers no 'system'", 2),
    case("import-json-decoder", "import json.decoder", "import of 'json.decoder' is not", 1),
    # Without the namespace's missing __name__ this would fall back to sys.modules.
    case("import-from-json-decoder", "from json import decoder", "offers no 'decoder'", 1),
    case(
        "import-json-codecs",
        "x = json.codecs.open('/etc/passwd').read()",
        "module 'json' offers no 'codecs' to scripts; it offers JSONDecodeError, dumps, loads",
        1,
    ),
    case("import-datetime-sys", "x = datetime.sys.modules", "module 'datetime' offers no 'sys'", 1),
    case("import-re-internals", "x = re._compiler", f'"_compiler" {ATTR_}', 1),
    case("import-re-sre", "x = re.sre_compile", "module 're' offers no 'sre_compile'", 1),
    case("import-decimal-context", "c = decimal.getcontext()", "offers no 'getcontext'", 1),
    case(
        "import-decimal-localcontext",
        "from decimal import localcontext",
        "module 'decimal' offers no 'localcontext' to scripts",
        1,
    ),
    case(
        "files-zoneinfo-traversal",
        "x = zoneinfo.ZoneInfo('../../../../etc/passwd')",
        "ZoneInfo keys must refer to subdirectories of TZPATH",
        1,
    ),
    case(
        "files-zoneinfo-absolute",
        "x = zoneinfo.ZoneInfo('/etc/passwd')",
        "ZoneInfo keys may not be absolute paths",
        1,
    ),
    case("files-print-to-file", "print('x', file=json)", "offers no 'write'", 1),
    # -- the helpers and modules given: no internals, no changes ----------------------
    case("helper-globals", "x = dig.__globals__['re']", f'"__globals__" {ATTR_}', 1),
    case("helper-module", "x = normalize_email.__module__", f'"__module__" {ATTR_}', 1),
    case("helper-code", "x = parse_duration.__code__.co_consts", f'"__code__" {ATTR_}', 1),
    case("helper-defaults", "x = unique.__defaults__", f'"__defaults__" {ATTR_}', 1),
    case("helper-wrapped", "x = add_duration.__wrapped__", f'"__wrapped__" {ATTR_}', 1),
    case(
        "helper-set-attribute",
        "dig.cache = {}",
        "scripts cannot set the attribute 'cache' of a function",
        1,
    ),
    case(
        "module-replace-function",
        "json.loads = len",
        "scripts cannot set the attribute 'loads' of the json module",
        1,
    ),
    case(
        "module-delete-constant",
        "del math.pi",
        "scripts cannot delete the attribute 'pi' of the math module",
        1,
    ),
    case("module-augment", "math.pi += 1", "Augmented assignment of attributes is not allowed", 1),
    case(
        "tuple-item",
        "t = (1, 2)\nt[0] = 3",
        "scripts cannot set an item of a tuple; only dicts and lists can be changed",
        2,
    ),
    # -- lambdas and closures ---------------------------------------------------------
    case(
        "closure-cells",
        "def f():\n    y = 1\n    return lambda: y\nx = f().__closure__[0].cell_contents",
        f'"__closure__" {ATTR_}',
        4,
    ),
    case("lambda-code", "f = lambda: 0\nx = f.__code__", f'"__code__" {ATTR_}', 2),
    case("lambda-defaults", "f = lambda a=1: a\nx = f.__defaults__", f'"__defaults__" {ATTR_}', 2),
    case("closure-nonlocal", "def f():\n    nonlocal x", "Nonlocal statements are not", 2),
    case("syntax-match", "match record:\n    case {}:\n        pass", "Match statements are", 1),
    # -- CPU ------------------------------------------------------------------------
    case("cpu-endless-loop", "while True:\n    pass", CPU, None),
    case("cpu-huge-power", "x = 10 ** 10 ** 8", CPU, None),
    case("cpu-regex-backtracking", "x = re.match('(a+)+$', 'a' * 40 + 'b')", CPU, None),
    case("cpu-factorial", "x = math.factorial(10 ** 7)", CPU, None),
    case("cpu-max-of-range", "x = max(range(10 ** 12))", CPU, None),
    case(
        "cpu-swallowed-errors",
        "while True:\n    try:\n        1 / 0\n    except:\n        pass",
        CPU,
        None,
    ),
    # -- memory -----------------------------------------------------------------------
    case("memory-huge-string", "x = 'a' * 10 ** 10", MEMORY, None, ROOMY),
    case("memory-huge-bytes", "x = 'a'.encode() * 10 ** 10", MEMORY, None, ROOMY),
    case("memory-huge-list", "x = [0] * 10 ** 10", MEMORY, None, ROOMY),
    case("memory-range-list", "x = list(range(10 ** 9))", MEMORY, None, ROOMY),
    case("memory-format-width", "x = f'{1:>1000000000}'", MEMORY, None, ROOMY),
    case("memory-percent-width", "x = '%*d' % (10 ** 9, 1)", MEMORY, None, ROOMY),
    case("memory-json-dumps", "x = json.dumps([1] * 10 ** 9)", MEMORY, None, ROOMY),
    case(
        "memory-distinct-strings",
        "l = []\nwhile True:\n    l.append(str(len(l)) * 100)",
        MEMORY_64,
        None,
        SMALL,
    ),
    case("memory-nested-lists", "x = []\nwhile True:\n    x = [x, x, x]", MEMORY_64, None, SMALL),
    case("memory-dict", "d = {}\nwhile True:\n    d[len(d)] = [len(d)]", MEMORY_64, None, SMALL),
    case(
        "memory-variables-too-big",
        "keep = 'x' * (20 * 1024 * 1024)",
        "at most 16 MiB (the largest is 'keep'",
        None,
        ROOMY,
    ),
    # -- output -----------------------------------------------------------------------
    case("output-print-loop", "while True:\n    print('spam')", PRINTED, 2, ROOMY),
    case("output-one-huge-print", "x = 1\nprint('x' * 100000)", PRINTED, 2, ROOMY),
    case(
        "output-swallowed-limit",
        "try:\n    while True:\n        print('spam')\nexcept Exception:\n    pass\n"
        "print('and more')",
        PRINTED,
        6,
        ROOMY,
    ),
    # -- recursion and nesting --------------------------------------------------------
    case(
        "recursion-function",
        "def f(n):\n    return f(n + 1)\nx = f(0)",
        "RecursionError: maximum recursion depth exceeded",
        2,
    ),
    case(
        "recursion-lambda",
        "f = lambda n: f(n + 1)\nx = f(0)",
        "RecursionError: maximum recursion depth exceeded",
        1,
    ),
    case(
        "recursion-json",
        "x = json.loads('[' * 100000 + ']' * 100000)",
        "RecursionError: maximum recursion depth exceeded while decoding a JSON array",
        1,
    ),
    case(
        "recursion-repr",
        "x = []\nfor i in range(100000):\n    x = [x]\ny = str(x)",
        "RecursionError: maximum recursion depth exceeded",
        4,
    ),
    case(
        "recursion-compile",
        "x = " + "-" * 100000 + "1",
        "the script is too deeply nested or too large to compile",
        None,
    ),
]


@pytest.mark.parametrize(("source", "fragment", "line", "limits"), HOSTILE)
def test_a_hostile_script_fails_cleanly_and_the_sandbox_carries_on(
    source: str, fragment: str, line: int | None, limits: Limits
) -> None:
    with pytest.raises(ScriptError) as caught:
        run_limited("exec", source, RECORD, limits)
    error = caught.value
    assert fragment in error.message
    assert error.line == line
    assert len(error.message) < 1100  # a clear error, not a dump
    assert run_limited("exec", "x = dig(record, 'tags.1')", RECORD) == {**RECORD, "x": "b"}


def test_the_suite_has_at_least_forty_hostile_scripts() -> None:
    assert len(HOSTILE) >= 40
    assert len({p.id for p in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("().__class__.__subclasses__()", f'"__subclasses__" {ATTR_}'),
        ("'{0.__class__}'.format(record)", NO_FORMAT),
        ("[g for g in (i for i in [1])][0]", ""),  # harmless: a generator's values only
        ("(lambda: 0).__globals__", f'"__globals__" {ATTR_}'),
        ("open('/etc/passwd')", "name 'open' is not defined"),
        ("json.codecs", "module 'json' offers no 'codecs'"),
        ("re.match('(a+)+$', 'a' * 40 + 'b')", CPU),
        ("'a' * 10 ** 10", MEMORY),
    ],
)
def test_hostile_expressions_fail_the_same_way(expression: str, fragment: str) -> None:
    if not fragment:
        assert run_limited("eval", expression, RECORD, FAST) == 1
        return
    with pytest.raises(ScriptError) as caught:
        run_limited("eval", expression, RECORD, FAST)
    assert fragment in caught.value.message
    assert run_limited("eval", "record['id'] * 6", RECORD) == 42


# -- what scripts may do stays harmless ----------------------------------------------


def test_percent_formatting_and_conversions_show_values_only() -> None:
    source = (
        "a = '%(title)s' % record\n"
        "b = '%s' % (dig,)\n"
        "c = f'{dig!r}'\n"
        "d = f'{record!r:>5}'\n"
        "e = f'{datetime.date(2026, 11, 23):%d.%m.%Y}'\n"
    )
    out = run_limited("exec", source, RECORD)
    assert out["a"] == "Quarterly review"
    assert out["b"].startswith("<function dig at 0x") and out["c"] == out["b"]
    assert out["d"] == repr(RECORD["record"])
    assert out["e"] == "23.11.2026"


def test_dates_still_work_although_the_time_module_is_refused() -> None:
    # strftime and strptime import `time` and `_strptime` from C, through the
    # script's builtins; that works, yet the script itself gets nothing.
    source = (
        "a = datetime.datetime(2026, 11, 23, 9, 30).strftime('%Y-%m-%d %H:%M')\n"
        "b = datetime.datetime.strptime('23.11.2026', '%d.%m.%Y').isoformat()\n"
        "c = list(datetime.date(2026, 11, 23).timetuple())[:3]\n"
    )
    assert run_limited("exec", source, {}) == {
        "a": "2026-11-23 09:30",
        "b": "2026-11-23T00:00:00",
        "c": [2026, 11, 23],
    }
    with pytest.raises(ScriptError, match="import of 'time' is not allowed"):
        run_limited("exec", "import time", {})


def test_calls_with_star_arguments_work() -> None:
    source = "def f(*args, **kwargs):\n    return [list(args), kwargs]\nx = f(*[1, 2], **{'k': 3})"
    assert run_limited("exec", source, {}) == {"x": [[1, 2], {"k": 3}]}


def test_variables_cannot_replace_the_guards_or_the_builtins() -> None:
    given = {"__builtins__": {"open": "x"}, "_getattr_": "x", "_write_": 1, "_print_": 2, "n": 2}
    assert run_limited("exec", "print(n)\nm = len([n]) + n", given) == {"n": 2, "m": 3}
    with pytest.raises(ScriptError, match="name 'open' is not defined"):
        run_limited("exec", "x = open('/etc/passwd')", given)


# -- one script cannot touch the next --------------------------------------------------


@pytest.fixture
def one_process() -> Iterator[SandboxPool]:
    """A pool of a single sandbox process: every script here runs after the one before."""
    single = SandboxPool(1)
    single.run("eval", "1", {})
    yield single
    single.close()


def _sandbox_pids() -> set[int]:
    return {p.pid for p in psutil.Process().children() if p.is_running()}


def test_overwriting_or_deleting_given_names_is_local_to_the_script(
    one_process: SandboxPool,
) -> None:
    tamper = "dig = None\ndel unique\njson = 'gone'\nmath = None"
    assert one_process.run("exec", tamper, {}) == {"dig": None, "json": "gone", "math": None}
    for attempt in ("json.loads = len", "del json.dumps", "math.pi = 3", "dig.x = 1"):
        with pytest.raises(ScriptError, match="scripts cannot"):
            one_process.run("exec", attempt, {})
    after = "a = dig({'b': [1, 2]}, 'b.1')\nb = unique([1, 1])\nc = json.loads('[1]')\nd = math.pi"
    assert one_process.run("exec", after, {}) == {"a": 2, "b": [1], "c": [1], "d": math.pi}


def test_a_script_mutating_its_variables_changes_nothing_outside(
    one_process: SandboxPool,
) -> None:
    variables = {"items": [1, 2], "record": {"title": "a"}}
    mutate = "items.append(3)\nrecord['title'] = 'changed'\nrecord['extra'] = True"
    out = one_process.run("exec", mutate, variables)
    assert out == {"items": [1, 2, 3], "record": {"title": "changed", "extra": True}}
    assert variables == {"items": [1, 2], "record": {"title": "a"}}
    assert one_process.run("eval", "[items, record]", variables) == [[1, 2], {"title": "a"}]


def test_a_generator_left_behind_cannot_spend_a_later_scripts_time(
    one_process: SandboxPool,
) -> None:
    poison = POISONED_GENERATOR
    with pytest.raises(ScriptError, match=CPU):
        one_process.run("exec", poison, {}, FAST)
    innocent = "total = sum([len(str(i)) for i in range(20000)])"
    for _ in range(3):
        assert one_process.run("exec", innocent, {}, FAST) == {"total": 88890}


def test_errors_raised_while_a_generator_is_closed_are_not_printed(
    one_process: SandboxPool, capfd: pytest.CaptureFixture[str]
) -> None:
    noisy = (
        "def g():\n"
        "    try:\n"
        "        yield 1\n"
        "    finally:\n"
        "        raise ValueError('x' * 100000)\n"
        "for i in range(20):\n"
        "    for y in g():\n"
        "        break\n"
        "cycle = [g()]\n"
        "for y in cycle[0]:\n"
        "    cycle.append(cycle)\n"
        "    break\n"
        "del cycle\n"
    )
    fresh = SandboxPool(1)  # started now, so its stderr is the captured one
    try:
        assert fresh.run("exec", noisy, {}) == {"i": 19, "y": 1}
        assert fresh.run("eval", "2 + 2", {}) == 4
    finally:
        fresh.close()
    assert "Exception ignored" not in capfd.readouterr().err


def test_exit_and_interrupt_do_not_end_the_sandbox_process(one_process: SandboxPool) -> None:
    before = _sandbox_pids()
    for source, message in [
        ("raise SystemExit(3)", "SystemExit: 3"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("raise GeneratorExit", "GeneratorExit"),
    ]:
        with pytest.raises(ScriptError) as caught:
            one_process.run("exec", source, {})
        assert caught.value.message == message
    assert _sandbox_pids() == before  # the same processes: none died, none was replaced
    assert one_process.run("eval", "40 + 2", {}) == 42


def test_well_behaved_scripts_complete_while_hostile_ones_run() -> None:
    hostile = [
        ("while True:\n    pass", FAST, CPU),
        ("x = re.match('(a+)+$', 'a' * 40 + 'b')", FAST, CPU),
        ("l = []\nwhile True:\n    l.append(str(len(l)) * 100)", SMALL, MEMORY_64),
        ("while True:\n    print('spam')", ROOMY, PRINTED),
        ("x = '{0.__class__}'.format(1)", FAST, NO_FORMAT),
        ("raise SystemExit(1)", FAST, "SystemExit: 1"),
    ]
    failures: list[str] = []
    # A pool of its own: the processes the attacking thread starts die with it.
    own = SandboxPool(2)

    def attack() -> None:
        for source, limits, _ in hostile:
            try:
                own.run("exec", source, {}, limits)
                failures.append("no error")
            except ScriptError as exc:
                failures.append(exc.message)

    attacker = threading.Thread(target=attack)
    try:
        attacker.start()
        answers = []
        while attacker.is_alive():
            n = len(answers)
            answers.append(own.run("exec", "y = dig(record, 'id') + n", {**RECORD, "n": n})["y"])
        attacker.join()
    finally:
        own.close()
    assert answers and answers == [7 + n for n in range(len(answers))]
    assert len(failures) == len(hostile)
    for message, (_, _, fragment) in zip(failures, hostile, strict=True):
        assert fragment in message


# -- deploy time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fragment", "line"),
    [
        ("x = 1\ny = x.__class__", f'"__class__" {ATTR_}', 2),
        ("x = 1\n\nz = __import__('os')", f'"__import__" {NAME_}', 3),
        ("g = (i for i in [1])\nf = g.gi_frame", f'"gi_frame" {RESTRICTED}', 2),
        ("a = 1\nb = 2\nc = record.tb_frame", f'"tb_frame" {RESTRICTED}', 3),
        ("x = 1\nclass A:\n    pass", "class definitions are not allowed in scripts", 2),
        ("x = 1\nasync def f():\n    pass", "AsyncFunctionDef statements are not allowed", 2),
        ("x = 1\ny = eval('2')", "Eval calls are not allowed", 2),
        ("x = 1\nexec('y = 2')", "Exec calls are not allowed", 2),
        ("x = 1\nbreakpoint()", '"breakpoint" is a reserved name', 2),
        ("import json as _j", f'"_j" {NAME_}', 1),
        ("try:\n    pass\nexcept Exception as _e:\n    pass", f'"_e" {NAME_}', 3),
        ("def f():\n    nonlocal q", "Nonlocal statements are not allowed", 2),
        ("x = 1\nmatch x:\n    case 1:\n        pass", "Match statements are not allowed", 2),
        ("x = 1\nfrom math import *", '"*" imports are not allowed', 2),
        ("x = " + "-" * 5000 + "1", "the script is too deeply nested or too large", None),
        ("x = " + "not " * 10000 + "1", "the script is too deeply nested or too large", None),
        ("x = 1\x00", "source code string cannot contain null bytes", None),
    ],
)
def test_check_refuses_forbidden_names_and_syntax_with_the_line(
    source: str, fragment: str, line: int | None
) -> None:
    error = check(source, "exec")
    assert error is not None
    assert fragment in error.message
    assert error.line == line


def test_deploy_refuses_a_hostile_script_naming_the_element_and_the_line() -> None:
    cases = [
        ("x = 1\nclass A:\n    pass\n", "class definitions are not allowed", 2),
        ("x = 1\ny = 2\ng = (i for i in [1])\nf = g.gi_frame\n", '"gi_frame"', 4),
        ("x = " + "-" * 5000 + "1\n", "too deeply nested", None),
        ("x = 1\nfrom json import decoder\n", "json offers no 'decoder' to scripts", 2),
    ]
    for code, fragment, line in cases:
        text = chain("evil", start(), script("peek", code, name="Peek"), end())
        with pytest.raises(ValidationFailed) as caught:
            validate_file(text.encode(), "evil.bpmn", OPERATORS.all(), max_bytes=2 * MIB)
        [problem] = caught.value.problems
        assert "peek" in problem.where and "Peek" in problem.where
        assert fragment in problem.message
        if line is not None:
            assert f"(line {line} of the script)" in problem.message
