"""The runner: the dispatcher, the scheduler and (embedded) a pool of worker threads.

With ``workers=0`` the runner runs no workers of its own: its scheduler publishes the
ids of due instances to the Celery broker instead (``catflow serve --no-workers``),
for ``catflow worker`` processes to run. On PostgreSQL exactly one dispatcher and
one scheduler are active across all processes; the others stand by (``Leadership``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.errors import CatflowError
from engine.events import dispatch_pending
from engine.store import outbox_written

from ._executor import Executor
from ._leader import Leadership
from ._project import Project, event_starter

if TYPE_CHECKING:
    from ._processes import WorkerProcesses

log = logging.getLogger("catflow.runner")


@dataclass
class RunOnceReport:
    events: int = 0
    instances_created: int = 0
    runs: int = 0
    states: Counter[str] = field(default_factory=Counter)


class Runner:
    def __init__(
        self, project: Project, workers: int | None = None, processes: int | None = None
    ) -> None:
        """``workers``: worker threads here; ``processes``: worker processes, each with
        ``workers`` threads (then none run here). No workers and no processes: due
        instances go to Celery workers through the broker."""
        self.project = project
        self.workers = workers if workers is not None else project.settings.workers
        self.processes = processes if processes is not None else project.settings.worker_processes
        if self.processes and self.workers < 1:
            raise CatflowError(
                f"{self.processes} worker process(es) with no worker threads would run "
                "nothing; give each at least one (--workers / CATFLOW_WORKERS)"
            )
        self.executor = Executor(
            project.db,
            project.records,
            project.settings.worker_name,
            project.settings.lease_seconds,
            project.http,
        )
        self._wake = threading.Event()
        self._children: WorkerProcesses | None = None
        self.dispatcher_lead = Leadership(project.db, "dispatcher")
        self.scheduler_lead = Leadership(project.db, "scheduler")

    def dispatch(self) -> tuple[int, int]:
        report = dispatch_pending(self.project.db, self.project.catalogs, event_starter)
        return report.events, len(report.instances)

    def run_once(self, max_rounds: int = 10_000) -> RunOnceReport:
        """Do everything that is due now — dispatch events, run instances — then return."""
        report = RunOnceReport()
        for _ in range(max_rounds):
            events, created = self.dispatch()
            report.events += events
            report.instances_created += created
            ran = self.executor.run_due(limit=50)
            for _instance_id, state in ran:
                report.runs += 1
                report.states[state] += 1
            if not events and not ran:
                break
        return report

    # -- serving -----------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set; then finish the step at hand and return."""
        threads = [threading.Thread(target=self._dispatcher_loop, args=(stop,), name="dispatcher")]
        if self.processes:
            from ._processes import WorkerProcesses

            self._children = WorkerProcesses(self.project.settings, self.processes, self.workers)
            self._children.start()
            threads.append(
                threading.Thread(
                    target=self._children.supervise, args=(stop,), name="worker-processes"
                )
            )
        elif self.workers:
            threads += self._worker_threads(stop)
        else:
            threads.append(
                threading.Thread(target=self._scheduler_loop, args=(stop,), name="scheduler")
            )
        for thread in threads:
            thread.start()
        log.info(
            "serving",
            extra={
                "workers": self.workers,
                "processes": self.processes,
                "worker": self.executor.worker_name,
            },
        )
        stop.wait()
        self._wake.set()
        outbox_written.set()  # the dispatcher waits on it: let it see the stop now
        if self._children is not None:
            self._children.stop()
        for thread in threads:
            thread.join()
        self.dispatcher_lead.release()
        self.scheduler_lead.release()
        log.info("stopped")

    def work(self, stop: threading.Event) -> None:
        """Only run instances (a worker process): worker threads until ``stop`` is set."""
        threads = self._worker_threads(stop)
        for thread in threads:
            thread.start()
        stop.wait()
        self._wake.set()
        for thread in threads:
            thread.join()

    def wake(self) -> None:
        """Work is due: idle workers look for it now rather than at their next poll."""
        self._wake.set()
        if self._children is not None:
            self._children.wake()

    def _worker_threads(self, stop: threading.Event) -> list[threading.Thread]:
        return [
            threading.Thread(target=self._worker_loop, args=(stop,), name=f"worker-{i + 1}")
            for i in range(self.workers)
        ]

    def _dispatcher_loop(self, stop: threading.Event) -> None:
        interval = self.project.settings.poll_interval
        while not stop.is_set():
            try:
                if not self.dispatcher_lead.held():  # another process dispatches
                    stop.wait(max(1.0, interval))
                    continue
                outbox_written.clear()  # set again by a commit from here on: not missed
                events, created = self.dispatch()
            except Exception:
                log.exception("dispatcher failed; retrying")
                stop.wait(min(5.0, interval * 10))
                continue
            if created:
                self.wake()
            if not events:
                # Changes committed in this process wake us at once; others' are polled.
                outbox_written.wait(interval)

    def _worker_loop(self, stop: threading.Event) -> None:
        interval = self.project.settings.poll_interval
        while not stop.is_set():
            ran = 0
            self._wake.clear()  # a wake from here on is not missed: it ends the wait below
            try:
                # Each worker claims the instance due first, one at a time: claiming is
                # one statement, so workers never contend for the same instance.
                while not stop.is_set() and self.executor.run_next() is not None:
                    ran += 1
            except Exception:
                log.exception("worker failed; retrying")
                stop.wait(min(5.0, interval * 10))
                continue
            if not ran:
                self._wake.wait(interval)

    def _scheduler_loop(self, stop: threading.Event) -> None:
        """Publish due instances to the broker (Celery mode); re-publish what stays due."""
        from ._celery import Publisher, make_app  # only when Celery workers are used

        settings = self.project.settings
        publisher = Publisher(make_app(settings), republish_after=settings.lease_seconds)
        interval = settings.poll_interval
        while not stop.is_set():
            try:
                if not self.scheduler_lead.held():
                    stop.wait(max(1.0, interval))
                    continue
                self._wake.clear()  # the dispatcher wakes us when it started instances
                publisher.publish(self.executor.due_runs(limit=500))
            except Exception:
                log.exception("scheduler failed; retrying")
                stop.wait(min(5.0, interval * 10))
                continue
            self._wake.wait(interval)
