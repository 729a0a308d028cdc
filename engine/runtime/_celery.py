"""Celery workers for scale-out: the broker carries instance ids, the database decides.

``catflow serve --no-workers`` runs the API, the dispatcher and the scheduler; the
scheduler publishes the ids of due instances to the broker. ``catflow worker``
runs Celery workers (on any machine) that take an id and run that instance — if
its lease can be had: a message delivered twice, or an instance taken over after
a crash, runs once. Nothing lives only in the broker: an instance still due a
while after its id was published is published again, so a lost broker (or a
lost message) loses no work.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery

from engine.config import Settings, load_settings

from ._executor import Executor
from ._project import Project, open_project

log = logging.getLogger("catflow.celery")

TASK = "catflow.run_instance"


def make_app(settings: Settings) -> Celery:
    app = Celery("catflow", broker=settings.broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,  # a worker that dies mid-run leaves the message for another
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        broker_transport_options={"visibility_timeout": max(60, int(settings.lease_seconds * 4))},
    )

    @app.task(name=TASK)
    def run_instance(instance_id: int) -> str | None:
        return _executor().run_instance(int(instance_id))

    return app


_lock = threading.Lock()
_project: Project | None = None
_executor_of_process: Executor | None = None


def _executor() -> Executor:
    """This worker process's executor, made on first use (after the fork)."""
    global _project, _executor_of_process
    with _lock:
        if _executor_of_process is None:
            settings = load_settings()
            _project = open_project(settings, load_files=False)
            _executor_of_process = Executor(
                _project.db,
                _project.records,
                settings.worker_name,
                settings.lease_seconds,
                _project.http,
            )
        return _executor_of_process


class Publisher:
    """Sends due instance ids to the broker; again if they are still due a while later.

    An id is sent once per run: the claim counts runs, so an instance due again
    after a run (a loop taking turns, a back-off or timer that ended, a record
    update replayed) has a new count and goes out at once. One still due with the
    count it was sent with — its message lost, or waiting in the queue — goes out
    again after ``republish_after`` seconds.
    """

    def __init__(self, app: Celery, republish_after: float) -> None:
        self.app = app
        self.republish_after = republish_after
        self._sent: dict[int, tuple[int, float]] = {}  # id -> (its runs, when sent)

    def publish(self, due: list[tuple[int, int]]) -> int:
        """Send those of ``due`` (instance id, runs) not sent for this run lately."""
        now = time.monotonic()
        fresh = []
        for instance_id, runs in due:
            sent = self._sent.get(instance_id)
            if sent is None or sent[0] != runs or now - sent[1] >= self.republish_after:
                fresh.append((instance_id, runs))
        if not fresh:
            return 0
        # One producer (and broker connection) for the batch, not one taken from the
        # pool and set up again per message.
        with self.app.producer_or_acquire() as producer:
            for instance_id, runs in fresh:
                self.app.send_task(TASK, args=[instance_id], producer=producer)
                self._sent[instance_id] = (runs, now)
        if len(self._sent) > 100_000:  # forget the old ones
            cutoff = now - self.republish_after
            self._sent = {k: v for k, v in self._sent.items() if v[1] >= cutoff}
        return len(fresh)


def run_worker(settings: Settings, concurrency: int, extra: list[str] | None = None) -> Any:
    """Run a Celery worker in this process until it is stopped (SIGTERM / Ctrl-C)."""
    app = make_app(settings)
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        "--loglevel=WARNING",
        "--without-gossip",
        "--without-mingle",
        f"--hostname=catflow-{settings.worker_name}@%h",
        *(extra or []),
    ]
    return app.worker_main(argv)
