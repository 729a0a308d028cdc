"""Sessions whose every connection, redirect hop and response read passes the guard."""

from __future__ import annotations

import socket
import sys
from typing import Any, TypeVar

import requests
from requests.adapters import DEFAULT_POOLBLOCK, HTTPAdapter
from requests.utils import select_proxy
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from ._policy import (
    _CHUNK,
    OutboundPolicy,
    OutboundRefused,
    ResponseTooLarge,
    _display,
    _resolve,
)

# --- the connection, pool manager, adapter and session ------------------------------------


class _GuardedHTTPConnection(HTTPConnection):
    """A connection that checks its host and the address it connects to."""

    def __init__(self, *args: Any, outbound_policy: OutboundPolicy, **kwargs: Any) -> None:
        self.outbound_policy = outbound_policy
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        policy, port = self.outbound_policy, self.port or self.default_port
        policy.check_host(self.host, port)
        try:
            addresses = _resolve(self._dns_host, port)
            sock = self._connect_any(policy._addresses_for(self.host, port, addresses), port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    def _connect_any(self, addresses: list[str], port: int) -> socket.socket:
        error: OSError | None = None
        for address in addresses:
            try:
                # A numeric address: no second DNS lookup that could answer differently.
                sock = urllib3_connection.create_connection(
                    (address, port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                error = exc
                continue
            try:
                peer = str(sock.getpeername()[0])
                if self.outbound_policy.refusal(peer, port) is not None:
                    self.outbound_policy._refuse_address(self.host, port, peer)
            except BaseException:
                sock.close()
                raise
            return sock
        raise error or OSError(f"no address to connect to for {self.host}")


class _GuardedHTTPSConnection(_GuardedHTTPConnection, HTTPSConnection):
    """The same check; TLS still verifies the certificate against the host name."""


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(PoolManager):
    def __init__(self, policy: OutboundPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outbound_policy = policy
        self.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        context["outbound_policy"] = self.outbound_policy  # passed on to each connection
        return super()._new_pool(scheme, host, port, context)


class GuardedAdapter(HTTPAdapter):
    """An HTTP adapter whose every request, redirect hop and connection passes the policy."""

    __attrs__ = [*HTTPAdapter.__attrs__, "policy"]

    def __init__(self, policy: OutboundPolicy, **kwargs: Any) -> None:
        self.policy = policy  # before super().__init__, which builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = DEFAULT_POOLBLOCK, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager = _GuardedPoolManager(
            self.policy, num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise OutboundRefused(_NO_PROXY, url=_display(proxy))

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        url = request.url or ""
        self.policy.check_url(url)
        if proxies and select_proxy(url, proxies):
            raise OutboundRefused(_NO_PROXY, url=_display(url))
        try:
            response = super().send(request, stream, timeout, verify, cert, proxies=None)
        except OutboundRefused as exc:
            raise exc.at(url) from None
        if not stream or response.is_redirect:
            # Session.send and redirect handling read these bodies whole: bound them here.
            read_limited(response, self.policy.max_response_bytes)
        return response


_NO_PROXY = (
    "outbound calls do not use proxies, which would hide the address the guard checks; "
    "remove the proxy setting"
)

S = TypeVar("S", bound=requests.Session)


def guard_session(session: S, policy: OutboundPolicy) -> S:
    """Route every request of a session (e.g. an OAuth2 session) through the guard."""
    session.trust_env = False  # no proxies, .netrc or CA bundle from the environment
    session.proxies.clear()
    adapter = GuardedAdapter(policy)
    for old in set(session.adapters.values()):
        old.close()
    session.adapters.clear()
    # "" matches every URL, so file:, ftp: and the like reach the guard and are refused.
    for prefix in ("https://", "http://", ""):
        session.mount(prefix, adapter)
    return session


def guarded_session(policy: OutboundPolicy) -> requests.Session:
    """A new session whose every request, redirect hop and connection passes the policy."""
    return guard_session(requests.Session(), policy)


def read_limited(response: requests.Response, max_bytes: int) -> bytes:
    """A response's (decoded) body, refused beyond ``max_bytes`` whatever its headers say.

    Reads a streamed response and keeps the body on it, so ``.content``, ``.text`` and
    ``.json()`` work afterwards.
    """
    url = response.url or ""
    if response._content is not False:  # already read (a non-streamed response)
        body = response._content or b""
        if len(body) > max_bytes:
            raise ResponseTooLarge(url, max_bytes)
        return body
    declared = _declared_length(response)
    if declared is not None and declared > max_bytes:
        response.close()
        raise ResponseTooLarge(url, max_bytes, declared)
    chunks, total = [], 0
    for chunk in response.iter_content(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            response.close()
            raise ResponseTooLarge(url, max_bytes, declared)
        chunks.append(chunk)
    body = b"".join(chunks)
    response._content = body
    response._content_consumed = True
    return body


def _declared_length(response: requests.Response) -> int | None:
    """The body length the headers promise, when the body is not compressed and exists."""
    request = response.request
    if request is not None and request.method == "HEAD":
        return None
    if response.status_code in (204, 304) or response.status_code < 200:
        return None
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None
