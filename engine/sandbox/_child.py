"""The sandbox process: evaluates one script or expression at a time, under limits.

It runs nothing but what the parent sends, with the memory ceiling set just
before each evaluation. The parent watches its CPU time and kills it when a
script overruns; a fresh process takes its place.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import pickle
import resource
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

from . import _wire
from ._limits import MIB, Limits
from ._restricted import ScriptError, evaluate, execute, set_output_limit


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    return pages * resource.getpagesize()


def _run(mode: str, source: str, variables: dict[str, Any], limits: Limits) -> tuple[Any, ...]:
    set_output_limit(limits.output_bytes)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = _address_space() + int(limits.memory_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    try:
        value = evaluate(source, variables) if mode == "eval" else execute(source, variables)
    except ScriptError as err:
        return ("error", err.message, err.line)
    except MemoryError:
        return ("memory",)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    try:
        data = _wire.dumps(value)
        _wire.loads(data)  # what the worker will take back: plain data only
    except Exception:
        return ("error", _unsendable(value), None)
    if len(data) > limits.result_bytes:
        return ("error", _too_big(value, len(data), limits.result_bytes), None)
    return ("ok", data)


def _leaves(value: Any) -> bool:
    """Whether the worker would take ``value`` back (see ``_wire``)."""
    try:
        _wire.loads(_wire.dumps(value))
    except Exception:
        return False
    return True


def _unsendable(value: Any) -> str:
    if isinstance(value, dict):
        for name, item in value.items():
            if not _leaves(item):
                return (
                    f"variable {name!r} holds a {type(item).__name__} (or something inside it) "
                    "that cannot leave the sandbox; keep only JSON values (dates and times, "
                    "Decimal and sets too), or `del` it"
                )
    return f"the result is a {type(value).__name__}, which cannot leave the sandbox"


def _too_big(value: Any, size: int, limit: int) -> str:
    message = f"the script's variables come to {size / MIB:.1f} MiB; at most {limit // MIB} MiB"
    if isinstance(value, dict) and value:
        sizes = {name: len(pickle.dumps(v)) for name, v in value.items()}
        biggest = max(sizes, key=lambda name: sizes[name])
        message += (
            f" (the largest is {biggest!r}: {sizes[biggest] / MIB:.1f} MiB; "
            f"`del {biggest}` at the end of the script if it is only a temporary)"
        )
    return message


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _die_with_parent(parent_pid: int) -> None:
    """A sandbox process must not outlive the worker that started it (e.g. after SIGKILL)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the EOF on the pipe still ends the loop below
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


_PR_SET_PDEATHSIG = 1


def main(conn: Connection, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    sys.setrecursionlimit(400)
    # Keep what exists before the first script (modules, caches) out of the
    # collector's sight: the full collection after each script then costs
    # microseconds instead of milliseconds.
    gc.collect()
    gc.freeze()
    conn.send(("ready", _cpu_seconds()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        mode, source, variables, limits = request
        try:
            reply = _run(mode, source, variables, limits)
        except MemoryError:
            reply = ("memory",)
        except RecursionError:
            reply = ("error", "RecursionError: maximum recursion depth exceeded", None)
        except BaseException as exc:  # the sandbox process outlives any one script
            reply = ("error", f"the sandbox could not run this: {type(exc).__name__}", None)
        # The parent keeps this as the baseline for judging the next evaluation's CPU use.
        conn.send((*reply, _cpu_seconds()))


if __name__ == "__main__":  # started by the pool: python -m engine.sandbox._child FD PARENT_PID
    main(Connection(int(sys.argv[1])), int(sys.argv[2]))
