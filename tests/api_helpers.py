"""The HTTP API on a real server (uvicorn on loopback), with a token for every role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from engine.api import ThreadedServer, create_app
from engine.api.tokens import ROLES, create_token
from engine.runtime import Project


@dataclass
class Api:
    """A running server; ``call(role, method, path)`` sends a request as that role."""

    project: Project
    server: ThreadedServer
    tokens: dict[str, str] = field(default_factory=dict)
    _sessions: dict[str | None, requests.Session] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def session(self, role: str | None) -> requests.Session:
        """A session sending ``role``'s token (None: no token at all)."""
        if role not in self._sessions:
            s = requests.Session()
            s.trust_env = False
            if role is not None:
                s.headers["Authorization"] = f"Bearer {self.tokens[role]}"
            self._sessions[role] = s
        return self._sessions[role]

    def call(self, role: str | None, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session(role).request(method, self.base_url + path, **kwargs)

    def get(self, role: str | None, path: str, **kwargs: Any) -> requests.Response:
        return self.call(role, "GET", path, **kwargs)

    def post(self, role: str | None, path: str, **kwargs: Any) -> requests.Response:
        return self.call(role, "POST", path, **kwargs)

    def close(self) -> None:
        for s in self._sessions.values():
            s.close()
        self.server.stop()


ServeApi = Callable[..., Api]


@pytest.fixture
def serve_api(open_test_project: Any) -> Iterator[ServeApi]:
    """Call with open_test_project's arguments; gives a running Api with a token per role."""
    running: list[Api] = []

    def _serve(**kwargs: Any) -> Api:
        project: Project = open_test_project(**kwargs)
        server = ThreadedServer(create_app(project)).start()
        api = Api(project, server)
        with project.db.session() as s:
            for role in ROLES:
                api.tokens[role], _ = create_token(s, role, f"test-{role}")
        running.append(api)
        return api

    yield _serve
    for api in running:
        api.close()
