"""Fixtures for operator tests: the Calendar emulator on loopback."""

from calendar_flow import emulator  # noqa: F401  (a fixture: a fresh emulator per test)
