"""What may come back from a sandbox process: plain data, never code.

The worker unpickles every reply of a sandbox process. Should a script ever break
out of RestrictedPython, it would control that process and what it answers; the
worker must still run nothing a reply names.
"""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.sandbox import SandboxPool, ScriptError
from engine.sandbox._wire import Refused, dumps, loads


@pytest.fixture
def pool() -> Any:
    p = SandboxPool(1)
    yield p
    p.close()


class _Planted:
    """What a hostile reply would carry: a call made while it is unpickled."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.mark,))


def test_a_reply_that_names_a_callable_is_refused_before_it_runs(tmp_path: Path) -> None:
    mark = tmp_path / "ran"
    hostile = pickle.dumps(("ok", _Planted(mark)))
    with pytest.raises(Refused) as refused:
        loads(hostile)
    assert refused.value.type_name == "pathlib.Path.touch"
    assert not mark.exists()


def test_plain_data_comes_back_as_it_went() -> None:
    value = {
        "json": [1, 2.5, "x", None, True, {"nested": []}],
        "moments": [
            datetime(2030, 1, 1, 10, tzinfo=UTC),
            datetime(2030, 1, 1, 10, tzinfo=timezone(timedelta(hours=2))),
            date(2030, 1, 1),
            time(9, 30),
            timedelta(minutes=45),
        ],
        "others": [Decimal("1.50"), {1, 2}, frozenset({3}), b"raw", bytearray(b"b"), 1 + 2j],
    }
    assert loads(dumps(value)) == value


def test_a_script_that_leaves_anything_else_is_told_which_variable(pool: SandboxPool) -> None:
    with pytest.raises(ScriptError) as err:
        pool.run("exec", "import re\nsize = 3\npattern = re.compile('a+')", {})
    assert err.value.message == (
        "variable 'pattern' holds a Pattern (or something inside it) that cannot leave the "
        "sandbox; keep only JSON values (dates and times, Decimal and sets too), or `del` it"
    )
    # The same script keeping only data works, and the pool serves on.
    assert pool.run("exec", "import re\nfound = bool(re.match('a+', 'aa'))", {}) == {"found": True}
