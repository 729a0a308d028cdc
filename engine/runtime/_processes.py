"""Worker processes of one ``catflow serve``: all the cores of one machine.

Worker threads share one interpreter lock, so one process runs instances on one
core at a time. ``CATFLOW_WORKER_PROCESSES`` starts that many child processes,
each with its own worker threads, on the same store (SQLite or PostgreSQL); the
serving process keeps the dispatcher and the HTTP API. Children claim instances
from the database as threads do (leases decide); the dispatcher wakes them when
it started new instances. Each child has a worker name of its own, and an equal
share of each connection's rate limit, so together they keep to the limit.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading

from engine import metrics
from engine.config import Settings

log = logging.getLogger("catflow.processes")

_SETTINGS_VAR = "CATFLOW_WORKER_PROCESS_SETTINGS"


class WorkerProcesses:
    """Children are plain ``python`` processes (not multiprocessing's spawn, which would
    import the parent's main module again). Their standard input is the line to the
    parent: a byte ``w`` wakes them, its end (the parent stopped or died) stops them."""

    def __init__(self, settings: Settings, processes: int, threads: int) -> None:
        # On SQLite each process keeps its own buckets: a share of the limit each. On
        # PostgreSQL they all draw from the database's (SharedRateLimiter).
        shared = not settings.database_url.startswith("sqlite")
        rate = settings.connection_rate_per_minute
        share = rate if shared or rate == 0 else max(1, rate // processes)  # 0: no limit
        self._settings = [
            dataclasses.replace(
                settings,
                worker_name=f"{settings.worker_name}/p{n + 1}",
                connection_rate_per_minute=share,
                workers=threads,
            )
            for n in range(processes)
        ]
        self._children: list[subprocess.Popen[bytes]] = []
        self._readers: dict[int, threading.Thread] = {}  # by child pid: its output
        self._lock = threading.Lock()

    def start(self) -> None:
        self._children = [self._spawn(settings) for settings in self._settings]
        log.info("worker processes started", extra={"processes": len(self._children)})

    def _spawn(self, settings: Settings) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env[_SETTINGS_VAR] = base64.b64encode(pickle.dumps((settings, _log_level()))).decode()
        child = subprocess.Popen(
            [sys.executable, "-m", "engine.runtime._processes"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdin is not None
        # Waking never blocks the dispatcher: a child whose pipe is full has wakes to read.
        os.set_blocking(child.stdin.fileno(), False)
        reader = threading.Thread(
            target=_read_child, args=(child, f"{settings.worker_name}#{child.pid}"), daemon=True
        )
        reader.start()
        self._readers[child.pid] = reader
        return child

    def supervise(self, stop: threading.Event, every: float = 1.0) -> None:
        """Start a child again when one ended (killed, out of memory) until ``stop``.

        The instances it held are taken over by the others once its leases run out.
        """
        while not stop.wait(every):
            with self._lock:
                for n, child in enumerate(self._children):
                    if child.poll() is None or stop.is_set():
                        continue
                    log.warning(
                        "worker process ended; starting it again",
                        extra={
                            "pid": child.pid,
                            "exit_code": child.returncode,
                            "worker": self._settings[n].worker_name,
                        },
                    )
                    if child.stdin is not None:
                        with contextlib.suppress(OSError):
                            child.stdin.close()
                    self._children[n] = self._spawn(self._settings[n])

    def pids(self) -> list[int]:
        return [child.pid for child in self._children]

    def wake(self) -> None:
        """New work is due: children waiting for some look at once."""
        with self._lock:
            for child in self._children:
                try:
                    assert child.stdin is not None
                    os.write(child.stdin.fileno(), b"w")
                except BlockingIOError:
                    pass  # its pipe is full of wakes already
                except (BrokenPipeError, ValueError, OSError):
                    pass  # that child is gone; supervise() starts it again

    def stop(self, timeout: float = 60.0) -> None:
        """Let each child finish the step at hand, then end; end those that do not."""
        with self._lock:
            for child in self._children:
                if child.stdin is not None:
                    with contextlib.suppress(BrokenPipeError):
                        child.stdin.close()
        for child in self._children:
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("worker process did not stop; ending it", extra={"pid": child.pid})
                child.kill()
                child.wait(5)
            if child.returncode not in (0, None):
                log.warning(
                    "worker process ended with an error",
                    extra={"pid": child.pid, "exit_code": child.returncode},
                )
        for reader in self._readers.values():
            reader.join(5)  # the children's last metrics are in before we return

    def alive(self) -> int:
        return sum(1 for child in self._children if child.poll() is None)


_METRICS_LINE = b"catflow-metrics "


def _read_child(child: subprocess.Popen[bytes], source: str) -> None:
    """A child's standard output: its metrics for ours; anything else passed on."""
    assert child.stdout is not None
    with child.stdout:
        for line in child.stdout:
            if line.startswith(_METRICS_LINE):
                samples = json.loads(line[len(_METRICS_LINE) :])
                metrics.absorb(source, [tuple(s) for s in samples])
            else:
                sys.stdout.buffer.write(line)
                sys.stdout.buffer.flush()
    metrics.retire(source)


def _send_metrics(stop: threading.Event, every: float = 1.0) -> None:
    """In a child: our metrics to the parent every ``every`` seconds, and once at the end."""
    while True:
        ended = stop.wait(every)
        line = _METRICS_LINE + json.dumps(metrics.snapshot()).encode() + b"\n"
        try:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
        except OSError:  # the parent is gone (then our standard input ends too)
            return
        if ended:
            return


def _log_level() -> str | None:
    """The parent's log level, if it set up Catflow's logging (children log the same way)."""
    logger = logging.getLogger("catflow")
    return logging.getLevelName(logger.getEffectiveLevel()) if logger.handlers else None


def _child() -> None:
    """A worker process: worker threads until the parent closes our standard input."""
    from engine.logs import configure_logging

    from ._project import open_project
    from ._runner import Runner

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    settings, log_level = pickle.loads(base64.b64decode(os.environ[_SETTINGS_VAR]))
    if log_level:
        configure_logging(log_level)
    project = open_project(settings, load_files=False)
    runner = Runner(project, workers=settings.workers, processes=0)
    stopping = threading.Event()

    def relay() -> None:
        while sys.stdin.buffer.read(1):  # b"w": work is due
            runner.wake()
        stopping.set()
        runner.wake()

    threading.Thread(target=relay, name="wake-relay", daemon=True).start()
    worked = threading.Event()
    sender = threading.Thread(target=_send_metrics, args=(worked,), name="metrics", daemon=True)
    sender.start()
    try:
        runner.work(stopping)
    finally:
        worked.set()
        sender.join(5)
        project.close()


if __name__ == "__main__":
    _child()
