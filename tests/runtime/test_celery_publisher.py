"""The scheduler's publisher (Celery mode): each run of a due instance is sent once.

A message per run, on a real Redis broker: an instance still due with the same run
count (its message waiting in the queue) is not sent again until a while has
passed; one due again after a run (a loop taking turns, a back-off that ended) is
sent at once.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from engine.config import load_settings
from engine.runtime._celery import TASK, Publisher, make_app

BROKER = "redis://127.0.0.1:6379/10"


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(BROKER, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"LOUD SKIP: Redis at {BROKER} unavailable: {exc}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _sent_ids(broker: redis.Redis) -> list[int]:
    """The instance ids of the messages waiting in Celery's default queue, oldest first."""
    ids = []
    for raw in reversed(broker.lrange("celery", 0, -1)):
        message = json.loads(raw)
        assert message["headers"]["task"] == TASK
        assert message["properties"]["body_encoding"] == "base64"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return ids


def test_an_instance_is_sent_once_per_run_and_again_when_its_message_is_overdue(
    broker: redis.Redis, tmp_path: Path
) -> None:
    settings = dataclasses.replace(load_settings(tmp_path), broker_url=BROKER)
    publisher = Publisher(make_app(settings), republish_after=0.5)

    assert publisher.publish([(7, 1), (8, 1)]) == 2
    assert publisher.publish([(7, 1), (8, 1)]) == 0  # their messages wait in the queue
    assert publisher.publish([(7, 2), (8, 1)]) == 1  # 7 ran, and is due again: at once
    time.sleep(0.6)
    assert publisher.publish([(7, 2), (8, 1)]) == 2  # still due: sent again
    assert _sent_ids(broker) == [7, 8, 7, 7, 8]
