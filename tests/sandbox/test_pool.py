"""The sandbox pool: limits fail one evaluation cleanly and the pool goes on serving."""

from __future__ import annotations

import threading

import pytest

from engine.sandbox import MIB, Limits, SandboxPool, ScriptError

FAST = Limits(cpu_seconds=0.5)
ROOMY = Limits(cpu_seconds=10)  # memory cases: the memory limit must be what stops them


@pytest.fixture
def pool() -> object:
    p = SandboxPool(2)
    yield p
    p.close()


def test_results_and_errors_come_back_with_lines(pool: SandboxPool) -> None:
    assert pool.run("exec", "y = x * 2", {"x": 21}) == {"x": 21, "y": 42}
    assert pool.run("eval", "x + 1", {"x": 1}) == 2
    with pytest.raises(ScriptError) as err:
        pool.run("exec", "a = 1\nb = a / 0", {})
    assert err.value.message == "ZeroDivisionError: division by zero" and err.value.line == 2


@pytest.mark.parametrize(
    ("source", "message", "limits"),
    [
        ("while True:\n    pass", "script exceeded the CPU time limit of 0.5 s", FAST),
        ("x = 10 ** 10 ** 8", "script exceeded the CPU time limit of 0.5 s", FAST),
        ('x = "a" * (600 * 1024 * 1024)', "script exceeded the memory limit of 256 MiB", ROOMY),
        (
            "l = []\nwhile True:\n    l.append(str(len(l)) * 10000)",
            "exceeded the memory limit",
            ROOMY,
        ),
        ('for i in range(100000):\n    print("spam")', "script printed more than 64 KiB", ROOMY),
        ("big = 'x' * (20 * 1024 * 1024)", "the largest is 'big'", ROOMY),
    ],
)
def test_a_limit_fails_the_evaluation_and_the_pool_recovers(
    pool: SandboxPool, source: str, message: str, limits: Limits
) -> None:
    with pytest.raises(ScriptError, match=message):
        pool.run("exec", source, {}, limits)
    assert pool.run("eval", "6 * 7", {}) == 42


def test_a_process_may_allow_more_cpu(pool: SandboxPool) -> None:
    busy = "n = 0\nfor i in range(3_000_000):\n    n += i"
    with pytest.raises(ScriptError, match=r"CPU time limit of 0\.05 s"):
        pool.run("exec", busy, {}, Limits(cpu_seconds=0.05))
    assert pool.run("exec", busy, {}, Limits(cpu_seconds=20))["n"] == sum(range(3_000_000))


def test_a_process_may_allow_more_memory(pool: SandboxPool) -> None:
    grow = "x = len('a' * (300 * 1024 * 1024))"
    with pytest.raises(ScriptError, match="memory limit"):
        pool.run("exec", grow, {})
    roomy = Limits(memory_bytes=1024 * MIB)
    assert pool.run("exec", grow, {}, roomy)["x"] == 300 * 1024 * 1024


def test_a_runaway_script_does_not_hold_up_others(pool: SandboxPool) -> None:
    results: list[object] = []

    def runaway() -> None:
        try:
            pool.run("exec", "while True:\n    pass", {}, Limits(cpu_seconds=2))
        except ScriptError as exc:
            results.append(exc.message)

    thread = threading.Thread(target=runaway)
    thread.start()
    answers = [pool.run("eval", f"{i} + 1", {}) for i in range(50)]  # the second process
    thread.join()
    assert answers == list(range(1, 51))
    assert results == ["script exceeded the CPU time limit of 2 s"]


def test_processes_started_from_a_thread_that_ended_still_serve() -> None:
    one = SandboxPool(1)
    try:
        thread = threading.Thread(target=lambda: one.run("eval", "1", {}))
        thread.start()
        thread.join()
        assert one.run("eval", "2 + 2", {}) == 4  # the child outlived its starting thread
    finally:
        one.close()


def test_a_caller_waiting_for_a_busy_process_gets_the_replacement() -> None:
    one = SandboxPool(1)
    try:
        failures: list[str] = []

        def runaway() -> None:
            try:
                one.run("exec", "while True:\n    pass", {}, Limits(cpu_seconds=0.5))
            except ScriptError as exc:
                failures.append(exc.message)

        thread = threading.Thread(target=runaway)
        thread.start()
        answers: list[object] = []
        waiter = threading.Thread(target=lambda: answers.append(one.run("eval", "7 * 6", {})))
        waiter.start()
        thread.join(10)
        waiter.join(10)
        assert not waiter.is_alive(), "the waiting caller was never served"
        assert answers == [42]
        assert failures == ["script exceeded the CPU time limit of 0.5 s"]
    finally:
        one.close()


def test_a_result_that_cannot_leave_the_sandbox_names_its_variable(pool: SandboxPool) -> None:
    with pytest.raises(ScriptError, match="variable 'gens' holds a list"):
        pool.run("exec", "gens = [(i for i in range(3))]\nok = 1", {})


def test_everyday_data_functions_are_there(pool: SandboxPool) -> None:
    script = (
        "people = sorted(names, key=lambda n: n.lower(), reverse=True)\n"
        "pairs = [list(p) for p in zip(names, range(3))]\n"
        "first = list(tuple(names)[:1])\n"
    )
    result = pool.run("exec", script, {"names": ["bob", "Ann", "carl"]})
    assert result["people"] == ["carl", "bob", "Ann"]
    assert result["pairs"] == [["bob", 0], ["Ann", 1], ["carl", 2]]
    assert result["first"] == ["bob"]
