"""The server the API runs on (kept here for imports of engine.api._server)."""

from engine.serving import ThreadedServer

__all__ = ["ThreadedServer"]
