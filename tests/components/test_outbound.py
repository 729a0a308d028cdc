"""The outbound request guard, against real local HTTP servers: which hosts and addresses a
call may reach (also after redirects and DNS), proxies, schemes, and response size limits."""

from __future__ import annotations

import gzip
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests_oauthlib import OAuth2Session

from engine.components.outbound import (
    OutboundPolicy,
    OutboundRefused,
    ResponseTooLarge,
    guard_session,
    guarded_session,
    read_limited,
    why_not_public,
)
from engine.config import load_settings
from engine.errors import CatflowError

LIMIT = 1024


class _Handler(BaseHTTPRequestHandler):
    """Answers by path: / (hello), /redirect?to=URL, /big?size=N&mode=..., /redirect-big."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self.server.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(100 * LIMIT))
        self.end_headers()

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path == "/redirect":
            self.send_response(int(query.get("status", "302")))
            # Headers travel as latin-1; requests reads a Location's bytes as UTF-8.
            self.send_header("Location", query["to"].encode().decode("latin-1"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif url.path == "/redirect-big":
            self.send_response(302)
            self.send_header("Location", "/")
            self._send_body(b"x" * (10 * LIMIT), "chunked")
        elif url.path == "/big":
            self.send_response(200)
            self._send_body(b"x" * int(query["size"]), query.get("mode", "length"))
        else:
            self.send_response(200)
            self._send_body(f"hello from {self.server.name}".encode(), "length")

    def _send_body(self, body: bytes, mode: str) -> None:
        if mode == "length":
            self.send_header("Content-Length", str(len(body)))
        elif mode == "lie":  # claims 10 bytes, sends them all
            self.send_header("Content-Length", "10")
            self.close_connection = True
        elif mode == "gzip":
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
        elif mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:  # "close": no length at all, the body ends when the connection does
            self.close_connection = True
        self.end_headers()
        if mode == "chunked":
            for start in range(0, len(body), 100):
                piece = body[start : start + 100]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.hits: list[str] = []
        self.port = self.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def handle_error(self, request: object, client_address: object) -> None:
        # The guard hangs up on oversized bodies mid-stream; that is the point, not noise.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def start_server() -> Iterator[Callable[[str], _Server]]:
    servers: list[_Server] = []

    def start(name: str) -> _Server:
        server = _Server(name)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(start_server: Callable[[str], _Server]) -> _Server:
    return start_server("A")


def _get(policy: OutboundPolicy, url: str, **kwargs: Any) -> requests.Response:
    with guarded_session(policy) as session:
        response = session.get(url, timeout=5, **kwargs)
        response.close()
        return response


def _refused(policy: OutboundPolicy, url: str, **kwargs: Any) -> OutboundRefused:
    with pytest.raises(OutboundRefused) as caught:
        _get(policy, url, **kwargs)
    return caught.value


# -- addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.1.2", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "the cloud metadata service's link-local address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%1", "a link-local address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a unique local (private) address"),
        ("fec0::1", "a site-local (private) address"),
        ("100.64.0.1", "a carrier-grade NAT (shared) address"),
        ("0.0.0.0", "an unspecified ('this network') address"),
        ("0.1.2.3", "an unspecified ('this network') address"),
        ("::", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
        ("240.0.0.1", "a reserved address"),
        ("192.0.2.1", "a documentation address"),
        ("2001:db8::1", "a documentation address"),
        ("198.18.0.1", "a benchmarking address"),
        ("::ffff:127.0.0.1", "an IPv4-mapped form of 127.0.0.1, a loopback address"),
        ("::ffff:169.254.169.254", "an IPv4-mapped form of 169.254.169.254, the cloud"),
        ("::127.0.0.1", "an IPv4-compatible form of 127.0.0.1, a loopback address"),
        ("2002:7f00:1::", "a 6to4 form of 127.0.0.1, a loopback address"),
        ("2002:a00:1::1", "a 6to4 form of 10.0.0.1, a private address"),
        ("64:ff9b::a9fe:a9fe", "a NAT64 form of 169.254.169.254"),
        ("64:ff9b:1::1", "a local-use NAT64 address"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo tunnel address"),
    ],
)
def test_non_public_addresses_are_named(address: str, why: str) -> None:
    assert (why_not_public(address) or "").startswith(why)
    assert OutboundPolicy(["*"]).refusal(address, 443) is not None


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert why_not_public(address) is None
    assert OutboundPolicy().refusal(address, 443) is None


def test_only_configured_ip_or_cidr_entries_open_a_non_public_address() -> None:
    policy = OutboundPolicy(["10.0.0.0/8", "127.0.0.1:8099", "[::1]:8099", "db.internal"])
    assert policy.refusal("10.9.8.7", 5432) is None
    assert policy.refusal("127.0.0.1", 8099) is None
    assert policy.refusal("::ffff:127.0.0.1", 8099) is None  # the same address, mapped
    assert policy.refusal("::1", 8099) is None
    assert policy.refusal("127.0.0.1", 8100) == "a loopback address"  # another port
    assert policy.refusal("192.168.0.1", 80) == "a private address"  # a name opens nothing
    connection = OutboundPolicy().for_connection("google", ["192.168.0.1", "10.0.0.0/8"])
    assert connection.refusal("192.168.0.1", 80) == "a private address"
    assert connection.refusal("10.0.0.1", 80) == "a private address"


# -- the allow-list ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "host", "port", "allowed"),
    [
        (["api.example.com"], "api.example.com", 443, True),
        (["API.Example.COM."], "api.example.com", 443, True),
        (["api.example.com"], "API.EXAMPLE.COM.", 443, True),
        (["api.example.com"], "www.example.com", 443, False),
        (["api.example.com"], "evil-api.example.com", 443, False),
        (["api.example.com:8443"], "api.example.com", 8443, True),
        (["api.example.com:8443"], "api.example.com", 443, False),
        (["*.example.com"], "a.b.example.com", 443, True),
        (["*.example.com"], "example.com", 443, False),
        (["*.example.com"], "badexample.com", 443, False),
        (["*"], "anything.example.org", 80, True),
        (["*:443"], "anything.example.org", 80, False),
        (["93.184.216.34"], "93.184.216.34", 80, True),
        (["93.184.216.0/24"], "93.184.216.99", 80, True),
        (["93.184.216.0/24"], "93.184.217.1", 80, False),
        (["[2606:4700::1]:443"], "[2606:4700::1]", 443, True),
        (["2606:4700::/32"], "2606:4700::1", 443, True),
        (["93.184.216.34"], "example.com", 80, False),  # an address rule allows no names
    ],
)
def test_allow_list_entries(entries: list[str], host: str, port: int, allowed: bool) -> None:
    policy = OutboundPolicy(entries)
    if allowed:
        policy.check_host(host, port)
    else:
        with pytest.raises(OutboundRefused, match="is not on the allow-list"):
            policy.check_host(host, port)


def test_connection_hosts_extend_the_configured_list() -> None:
    base = OutboundPolicy(["oauth2.example.com"])
    policy = base.for_connection("calendar", ["*.googleapis.com"])
    policy.check_host("www.googleapis.com", 443)
    policy.check_host("oauth2.example.com", 443)
    with pytest.raises(OutboundRefused) as caught:
        policy.check_host("evil.example.org", 443)
    assert "CATFLOW_OUTBOUND_ALLOW or to the allowed hosts of connection 'calendar'" in str(
        caught.value
    )
    with pytest.raises(OutboundRefused):
        base.check_host("www.googleapis.com", 443)  # the base policy is unchanged


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("exa mple.com", "is not a host name, an IP address or a range"),
        ("api.example.com:http", "has port 'http', not a number from 1 to 65535"),
        ("api.example.com:0", "has port '0'"),
        ("api.example.com:", "has an empty port"),
        ("10.0.0.1/8", "is not an IP address or range"),
        ("[::1", "has an unclosed '['"),
        ("0177.0.0.1", "is not a host name, an IP address or a range"),
        ("2130706433", "is not a host name, an IP address or a range"),
        ("0x7f.1", "is not a host name, an IP address or a range"),
        ("bücher.example", "write the host name in its xn-- form"),
        (":443", "names no host"),
    ],
)
def test_bad_entries_are_refused_by_name(entry: str, problem: str) -> None:
    with pytest.raises(CatflowError, match="CATFLOW_OUTBOUND_ALLOW entry") as caught:
        OutboundPolicy([entry])
    assert repr(entry) in str(caught.value) and problem in str(caught.value)


def test_settings_carry_the_allow_list_and_the_size_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CATFLOW_OUTBOUND_ALLOW", raising=False)
    monkeypatch.delenv("CATFLOW_MAX_RESPONSE_BYTES", raising=False)
    defaults = load_settings(tmp_path)
    assert defaults.outbound_allow == () and defaults.max_response_bytes == 10 * 1024 * 1024
    monkeypatch.setenv("CATFLOW_OUTBOUND_ALLOW", " 127.0.0.1:8099, *.googleapis.com ,,")
    monkeypatch.setenv("CATFLOW_MAX_RESPONSE_BYTES", "2048")
    settings = load_settings(tmp_path)
    assert settings.outbound_allow == ("127.0.0.1:8099", "*.googleapis.com")
    policy = OutboundPolicy.from_settings(settings)
    assert policy.max_response_bytes == 2048
    assert policy.refusal("127.0.0.1", 8099) is None
    monkeypatch.setenv("CATFLOW_MAX_RESPONSE_BYTES", "lots")
    with pytest.raises(CatflowError, match="CATFLOW_MAX_RESPONSE_BYTES='lots' is not a whole"):
        load_settings(tmp_path)


# -- hosts and addresses, over real sockets ---------------------------------------------


def test_loopback_is_refused_by_default(server: _Server) -> None:
    refused = _refused(OutboundPolicy(), server.url + "/?token=secret")
    assert "127.0.0.1 (port" in refused.reason and "not on the allow-list" in refused.reason
    assert f"add '127.0.0.1:{server.port}'" in str(refused)
    assert "secret" not in str(refused)  # query strings carry secrets
    # Even with every host name allowed, the address is refused, and says how to allow it.
    refused = _refused(OutboundPolicy(["*"]), server.url + "/")
    assert str(refused) == (
        f"refused to call {server.url}/: 127.0.0.1 is a loopback address; if it should be "
        f"reachable, allow it with CATFLOW_OUTBOUND_ALLOW=127.0.0.1:{server.port} "
        "(an IP address or range: host names and connections cannot allow it)"
    )
    assert refused.address == "127.0.0.1"
    assert server.hits == []


@pytest.mark.parametrize("entry", ["127.0.0.1:{port}", "127.0.0.1", "127.0.0.0/8"])
def test_loopback_is_reached_when_explicitly_allowed(server: _Server, entry: str) -> None:
    response = _get(OutboundPolicy([entry.format(port=server.port)]), server.url + "/")
    assert response.status_code == 200 and response.text == "hello from A"


def test_an_allowed_address_on_another_port_is_refused(
    start_server: Callable[[str], _Server],
) -> None:
    a, b = start_server("A"), start_server("B")
    refused = _refused(OutboundPolicy([f"127.0.0.1:{a.port}"]), b.url + "/")
    assert f"127.0.0.1 (port {b.port}) is not on the allow-list" in refused.reason
    assert b.hits == []


def test_a_host_not_on_the_allow_list_is_refused_before_any_connection(server: _Server) -> None:
    policy = OutboundPolicy(["api.example.com", f"127.0.0.1:{server.port}"])
    # .invalid never resolves: trying to connect would give a ConnectionError instead.
    refused = _refused(policy, "https://calendar.example.invalid/v3/events")
    assert refused.host == "calendar.example.invalid" and refused.address == ""
    # "localhost" is the allowed server, but the name itself is not on the list.
    refused = _refused(policy, f"http://localhost:{server.port}/")
    assert refused.host == "localhost" and server.hits == []


TRICKY_SPELLINGS = [
    "2130706433",  # decimal
    "0x7f000001",  # hex
    "0177.0.0.1",  # octal
    "0x7f.1",  # hex, short
    "127.1",  # short
    "127.000.000.001",
    "127.0.0.1.",  # trailing dot
    "LOCALHOST",
    "evil.example@127.0.0.1",  # user info
    "0",  # 0.0.0.0, which Linux connects to the local machine
    "0.0.0.0",
    "[::1]",
    "[::]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[2002:7f00:1::]",
    "[64:ff9b::7f00:1]",
]


@pytest.mark.parametrize("host", TRICKY_SPELLINGS)
def test_tricky_spellings_meet_the_address_check(server: _Server, host: str) -> None:
    # Every name is allowed here, so only the check on the resolved address stands.
    refused = _refused(OutboundPolicy(["*"]), f"http://{host}:{server.port}/")
    assert refused.address, "refused by the address check, on the address connected to"
    assert "loopback" in refused.reason or "unspecified" in refused.reason
    assert server.hits == []


@pytest.mark.parametrize("host", [*TRICKY_SPELLINGS, "localhost."])
def test_tricky_spellings_are_not_on_a_name_allow_list(server: _Server, host: str) -> None:
    policy = OutboundPolicy(["evil.example", "api.example.com"])
    refused = _refused(policy, f"http://{host}:{server.port}/")
    assert "is not on the allow-list" in refused.reason
    assert server.hits == []


@pytest.mark.parametrize(
    "host",
    ["\u24dbocalhost", "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54", "loca\u00adlhost"],
)
def test_unicode_spellings_of_a_host_are_refused(server: _Server, host: str) -> None:
    url = f"http://{host}:{server.port}/"
    with pytest.raises((OutboundRefused, requests.exceptions.InvalidURL)):
        _get(OutboundPolicy(["*"]), url)  # requests refuses or IDNA-encodes to xn--...
    # A redirect skips requests' URL preparation (the host arrives raw or percent-encoded,
    # never IDNA-encoded): the guard refuses such a host outright.
    policy = OutboundPolicy(["*", f"127.0.0.1:{server.port}"])
    refused = _refused(policy, f"{server.url}/redirect?to={url}")
    assert "is not a valid host name" in refused.reason or "not a valid URL" in refused.reason
    assert len(server.hits) == 1  # the redirect, not its target


def test_a_name_resolving_to_loopback_is_refused_unless_its_address_is_allowed(
    server: _Server,
) -> None:
    url = f"http://localhost:{server.port}/"
    by_connection = OutboundPolicy().for_connection("dev", [f"localhost:{server.port}"])
    refused = _refused(by_connection, url)
    assert refused.reason.startswith("localhost resolves to ")
    assert refused.reason.endswith(", a loopback address")
    # Naming the host in the configuration is not enough either: a name opens no address.
    refused = _refused(OutboundPolicy([f"localhost:{server.port}"]), url)
    assert "loopback" in refused.reason and server.hits == []
    allowed = [f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}"]
    assert _get(OutboundPolicy(allowed), url).text == "hello from A"


def test_dns_rebinding_is_caught_at_connect_time(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name looks public when checked early, and resolves to loopback when connected."""
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    asked: list[str] = []

    def rebinding_resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = next(answers)
        asked.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_resolver)
    policy = OutboundPolicy([f"rebind.example:{server.port}"])
    url = f"http://rebind.example:{server.port}/"
    policy.check_url(url, resolve=True)  # the early check sees a public address
    refused = _refused(policy, url)
    assert refused.reason == "rebind.example resolves to 127.0.0.1, a loopback address"
    assert asked == ["93.184.216.34", "127.0.0.1"]  # one lookup at connect time, checked
    assert server.hits == []


# -- redirects ---------------------------------------------------------------------------


def test_a_redirect_to_an_allowed_host_is_followed(
    start_server: Callable[[str], _Server],
) -> None:
    a, b = start_server("A"), start_server("B")
    policy = OutboundPolicy([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
    response = _get(policy, f"{a.url}/redirect?to={b.url}/")
    assert response.text == "hello from B" and len(response.history) == 1


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("{b}/", "127.0.0.1 is a loopback address"),
        ("//127.0.0.1:{b_port}/", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata service's"),
        ("http://[::1]:{b_port}/", "::1 is a loopback address"),
        ("http://[::ffff:a9fe:a9fe]/", "an IPv4-mapped form of 169.254.169.254"),
        ("http://localhost:{b_port}/", "localhost resolves to"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("file:///etc/passwd", "only http and https URLs may be called, not 'file'"),
        ("gopher://127.0.0.1:{b_port}/_GET", "not 'gopher'"),
    ],
)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_a_refused_address_is_refused(
    start_server: Callable[[str], _Server], target: str, reason: str, status: int
) -> None:
    a, b = start_server("A"), start_server("B")
    location = target.format(b=b.url, b_port=b.port)
    # A's address is allowed, B's is not; "*" lets every name past the host check.
    policy = OutboundPolicy([f"127.0.0.1:{a.port}", "*"])
    refused = _refused(policy, f"{a.url}/redirect?status={status}&to={location}")
    assert reason in refused.reason
    assert len(a.hits) == 1 and b.hits == []


def test_a_redirect_to_an_unlisted_host_is_refused_by_the_host_check(
    start_server: Callable[[str], _Server],
) -> None:
    a, b = start_server("A"), start_server("B")
    policy = OutboundPolicy([f"127.0.0.1:{a.port}"])
    refused = _refused(policy, f"{a.url}/redirect?to={b.url}/secret?token=x")
    assert refused.url == f"{b.url}/secret"  # the hop that was refused, without its query
    assert b.hits == []


# -- schemes and proxies -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1:70/", "dict://127.0.0.1/"],
)
def test_only_http_and_https_are_called(url: str) -> None:
    with pytest.raises(OutboundRefused, match="only http and https URLs may be called"):
        _get(OutboundPolicy(["*", "127.0.0.0/8"]), url)


def test_an_early_check_needs_no_connection() -> None:
    policy = OutboundPolicy(["*"])
    policy.check_url("https://www.googleapis.com/calendar/v3")  # no DNS without resolve=True
    with pytest.raises(OutboundRefused, match=r"169\.254\.169\.254 is the cloud metadata"):
        policy.check_url("http://169.254.169.254/latest/meta-data/")  # a literal needs no DNS
    with pytest.raises(CatflowError, match=r"calendar\.example\.invalid cannot be resolved"):
        policy.check_url("https://calendar.example.invalid/", resolve=True)


def test_a_url_without_a_scheme_is_refused() -> None:
    with pytest.raises(OutboundRefused, match="this URL has no scheme"):
        OutboundPolicy(["*"]).check_url("//api.example.com/x")


def test_proxies_from_the_environment_are_ignored(
    start_server: Callable[[str], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    target, proxy = start_server("target"), start_server("proxy")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert requests.utils.get_environ_proxies(target.url)  # requests would use the proxy
    response = _get(OutboundPolicy([f"127.0.0.1:{target.port}"]), target.url + "/")
    assert response.text == "hello from target" and proxy.hits == []


def test_an_explicit_proxy_is_refused(start_server: Callable[[str], _Server]) -> None:
    target, proxy = start_server("target"), start_server("proxy")
    policy = OutboundPolicy([f"127.0.0.1:{target.port}", f"127.0.0.1:{proxy.port}"])
    refused = _refused(policy, target.url + "/", proxies={"http": proxy.url})
    assert "do not use proxies" in refused.reason and proxy.hits == [] and target.hits == []


def test_any_session_can_be_guarded(server: _Server) -> None:
    with guard_session(OAuth2Session(client_id="catflow"), OutboundPolicy(["*"])) as session:
        assert session.trust_env is False
        with pytest.raises(OutboundRefused, match="loopback"):
            session.get(f"https://127.0.0.1:{server.port}/", timeout=5)
    assert server.hits == []


# -- response sizes ----------------------------------------------------------------------


def _limited(server: _Server) -> OutboundPolicy:
    return OutboundPolicy([f"127.0.0.1:{server.port}"], max_response_bytes=LIMIT)


@pytest.mark.parametrize("mode", ["length", "close", "chunked", "gzip"])
def test_a_body_over_the_limit_is_refused(server: _Server, mode: str) -> None:
    url = f"{server.url}/big?size={LIMIT + 1}&mode={mode}"
    with pytest.raises(ResponseTooLarge) as caught:
        _get(_limited(server), url)
    message = str(caught.value)
    assert message.startswith(f"response from {server.url}/big is larger than 1 KiB")
    assert "CATFLOW_MAX_RESPONSE_BYTES" in message
    if mode == "length":
        assert f"(it declares {LIMIT + 1} bytes)" in message


@pytest.mark.parametrize("mode", ["length", "close", "chunked", "gzip"])
def test_a_body_at_the_limit_is_read(server: _Server, mode: str) -> None:
    response = _get(_limited(server), f"{server.url}/big?size={LIMIT}&mode={mode}")
    assert response.content == b"x" * LIMIT


@pytest.mark.parametrize("mode", ["length", "close", "chunked", "gzip"])
def test_a_streamed_body_is_read_within_the_limit(server: _Server, mode: str) -> None:
    with guarded_session(_limited(server)) as session:
        small = session.get(f"{server.url}/big?size=10&mode={mode}", stream=True, timeout=5)
        assert read_limited(small, LIMIT) == b"x" * 10 and small.text == "x" * 10
        big = session.get(f"{server.url}/big?size={5 * LIMIT}&mode={mode}", stream=True)
        with pytest.raises(ResponseTooLarge):
            read_limited(big, LIMIT)
        # The session still works: the oversized response's connection was dropped.
        assert session.get(server.url + "/", timeout=5).text == "hello from A"


def test_a_lying_content_length_reads_no_more_than_it_declares(server: _Server) -> None:
    response = _get(_limited(server), f"{server.url}/big?size={5 * LIMIT}&mode=lie")
    assert response.content == b"x" * 10


def test_a_redirect_body_over_the_limit_is_refused_even_when_streaming(server: _Server) -> None:
    with pytest.raises(ResponseTooLarge):
        _get(_limited(server), f"{server.url}/redirect-big", stream=True)


def test_a_head_response_may_declare_any_length(server: _Server) -> None:
    with guarded_session(_limited(server)) as session:
        response = session.head(server.url + "/", timeout=5)
        assert response.status_code == 200 and response.content == b""


# -- https -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 only."""
    if shutil.which("openssl") is None:
        pytest.skip("LOUD SKIP: openssl is not installed; the HTTPS tests need a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[_Server]:
    server = _Server("TLS")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_https_is_guarded_and_still_verified(
    tls_server: _Server, certificate: tuple[Path, Path]
) -> None:
    url = f"https://127.0.0.1:{tls_server.port}/"
    refused = _refused(OutboundPolicy(["*"]), url, verify=str(certificate[0]))
    assert refused.reason == "127.0.0.1 is a loopback address"
    allowed = OutboundPolicy([f"127.0.0.1:{tls_server.port}", f"localhost:{tls_server.port}"])
    assert _get(allowed, url, verify=str(certificate[0])).text == "hello from TLS"
    # The certificate is still checked against the host name the URL gave.
    allowed = OutboundPolicy([f"localhost:{tls_server.port}", "127.0.0.1", "::1"])
    with pytest.raises(requests.exceptions.SSLError):
        _get(allowed, f"https://localhost:{tls_server.port}/", verify=str(certificate[0]))
