"""Fixtures for the Calendar emulator tests: real servers on loopback."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from emulators.calendar_helpers import Api

from engine.emulators.calendar import CalendarEmulator, Faults

_users = itertools.count(1)


@pytest.fixture(scope="module")
def emu() -> Iterator[CalendarEmulator]:
    """One emulator per test module, without quotas; tests isolate by user."""
    with CalendarEmulator(faults=Faults(user_quota_per_minute=None)) as server:
        yield server


@pytest.fixture
def api(emu: CalendarEmulator) -> Iterator[Api]:
    client = Api(emu, f"user{next(_users)}@example.com")
    yield client
    client.close()
