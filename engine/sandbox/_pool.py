"""A supervised pool of sandbox processes: scripts run where they can be stopped.

An endless loop, a huge power or a gigantic string in one script must fail that
task — not stall or crash the worker. Each evaluation goes to a child process
whose CPU time the parent watches (and kills past the limit) and whose address
space is capped just before the script runs. A killed or broken child is
replaced; the others carry on serving.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import psutil

from . import _wire
from ._limits import DEFAULT_LIMITS, Limits
from ._restricted import ScriptError

log = logging.getLogger("catflow.sandbox")


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    conn: Connection
    ps: psutil.Process
    cpu_at_rest: float = 0.0  # its CPU time when it last answered (it idles in between)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            log.warning("a sandbox process did not end", extra={"pid": self.process.pid})
        self.conn.close()


def _start_child() -> _Child:
    """A sandbox process: a small program of its own, not a copy of the worker.

    Its own session keeps a terminal's Ctrl-C (meant for the worker) away from it,
    and it imports only the sandbox, not the worker's main module.
    """
    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.sandbox._child", str(theirs.fileno()), str(os.getpid())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        theirs.close()
    parent = Connection(ours.detach())
    started = _Child(process, parent, psutil.Process(process.pid))
    # Wait for it to be ready; its start-up CPU time is not a script's.
    if not parent.poll(60):
        started.stop()
        raise ScriptError("the sandbox process did not start within 60 s")
    try:
        _ready, started.cpu_at_rest = _wire.loads(parent.recv_bytes())
    except (EOFError, OSError, _wire.Refused):
        started.stop()
        raise ScriptError("the sandbox process failed to start") from None
    return started


class _Spawner:
    """Starts every sandbox process from one thread that lives as long as the worker.

    The kernel's parent-death signal (which ends a sandbox process when its worker
    dies, even by SIGKILL) follows the *thread* that started the child: a child
    started from a short-lived thread would be killed when that thread ends.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue[queue.Queue[_Child | BaseException]] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="sandbox-spawner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            answer = self._requests.get()
            try:
                answer.put(_start_child())
            except BaseException as exc:
                answer.put(exc)

    def start(self) -> _Child:
        answer: queue.Queue[_Child | BaseException] = queue.Queue(maxsize=1)
        self._requests.put(answer)
        result = answer.get()
        if isinstance(result, BaseException):
            raise result
        return result


class SandboxPool:
    """Runs scripts in ``size`` child processes; safe to call from many threads."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._idle: list[_Child] = []
        self._changed = threading.Condition()
        self._started = 0
        self._pid = os.getpid()
        self._spawner = _Spawner()

    def _checkout(self) -> _Child:
        """An idle sandbox process, a new one if there is room, or wait for either."""
        with self._changed:
            while True:
                while self._idle:
                    child = self._idle.pop()
                    if child.alive():
                        return child
                    self._forget(child)
                if self._started < self.size:
                    self._started += 1
                    break
                self._changed.wait()
        try:
            return self._spawner.start()
        except BaseException:
            with self._changed:
                self._started -= 1
                self._changed.notify()
            raise

    def _give_back(self, child: _Child) -> None:
        with self._changed:
            self._idle.append(child)
            self._changed.notify()

    def _forget(self, child: _Child) -> None:
        """Called with the condition held: a dead child leaves room for a new one."""
        try:
            child.stop()
        except Exception:
            log.warning("could not stop a sandbox process", exc_info=True)
        self._started -= 1
        self._changed.notify()

    def _replace(self, child: _Child) -> None:
        with self._changed:
            self._forget(child)

    def run(
        self, mode: str, source: str, variables: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS
    ) -> Any:
        """Evaluate (``mode="eval"``) or execute (``"exec"``) under ``limits``.

        Raises ScriptError on any failure, including an exceeded limit.
        """
        child = self._checkout()
        try:
            reply = self._exchange(child, (mode, source, dict(variables), limits), limits)
        except BaseException:
            self._replace(child)
            raise
        if reply[0] == "memory":
            self._replace(child)  # a process that ran out of memory is not trusted again
            raise ScriptError(f"script exceeded the memory limit of {limits.describe_memory()}")
        if reply[0] == "error":
            self._give_back(child)
            raise ScriptError(reply[1], reply[2])
        try:
            value = _wire.loads(reply[1])
        except _wire.Refused as refused:  # the child checks first: it was not itself
            self._replace(child)
            raise _refused(refused) from None
        self._give_back(child)
        return value

    def _exchange(self, child: _Child, request: tuple[Any, ...], limits: Limits) -> tuple[Any, ...]:
        try:
            child.conn.send(request)
        except (OSError, ValueError) as exc:
            raise ScriptError(f"the sandbox process is gone ({exc}); try again") from None
        started = time.monotonic()
        # Most evaluations answer within a millisecond; the CPU time is only read
        # (from /proc) while waiting longer, against what the child reported last.
        start_cpu = child.cpu_at_rest
        # Wall time is only a backstop (a script cannot sleep or wait on I/O);
        # the limit is on CPU time, so a busy machine does not fail scripts.
        wall_limit = limits.cpu_seconds * 5 + 5
        while True:
            try:
                if child.conn.poll(0.02):
                    *reply, child.cpu_at_rest = _wire.loads(child.conn.recv_bytes())
                    return tuple(reply)
            except _wire.Refused as refused:
                raise _refused(refused) from None
            except (EOFError, OSError):
                try:
                    code: int | None = child.process.wait(1)
                except subprocess.TimeoutExpired:
                    code = None
                raise ScriptError(f"script ended the sandbox process (exit code {code})") from None
            try:
                used = child.cpu() - start_cpu
            except psutil.Error:
                raise ScriptError("script ended the sandbox process") from None
            if used > limits.cpu_seconds or time.monotonic() - started > wall_limit:
                raise ScriptError(f"script exceeded the CPU time limit of {limits.describe_cpu()}")

    def close(self) -> None:
        """Stop the idle sandbox processes (busy ones are stopped when given back)."""
        with self._changed:
            while self._idle:
                self._forget(self._idle.pop())


def _refused(refused: _wire.Refused) -> ScriptError:
    return ScriptError(f"the sandbox answered with a {refused.type_name}, which may not leave it")


_pool: SandboxPool | None = None
_pool_lock = threading.Lock()


def pool() -> SandboxPool:
    """The process-wide pool (CATFLOW_SANDBOX_PROCESSES children, 2 by default)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._pid != os.getpid():
            size = int(os.environ.get("CATFLOW_SANDBOX_PROCESSES") or 2)
            _pool = SandboxPool(size)
        return _pool


def _close_at_exit() -> None:
    """Stop this process's idle sandbox children before the interpreter goes."""
    if _pool is not None and _pool._pid == os.getpid():
        _pool.close()


atexit.register(_close_at_exit)


def run_limited(
    mode: str, source: str, variables: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS
) -> Any:
    return pool().run(mode, source, variables, limits)
