"""The outbound request guard: which hosts and addresses a web call may reach, and how much
of a response it may read.

Every outbound call (``http.request``, the Google operators, token refreshes) goes through a
session made by :func:`guarded_session` (or :func:`guard_session`, for a session of another
class such as an OAuth2 session). Process designers choose URLs, and a redirect or a DNS
answer can change where a call really goes, so the guard decides on what is actually
connected to:

* **Hosts.** A call reaches only a host on an allow-list: the configured one
  (``CATFLOW_OUTBOUND_ALLOW``) or the connection's own (:meth:`OutboundPolicy.for_connection`).
  Entries are host names (``api.example.com``), subdomain wildcards (``*.example.com``),
  IP addresses (``192.0.2.7``, ``[2001:db8::7]``), CIDR ranges (``10.0.0.0/8``), each with an
  optional port (``host:8443``), or ``*`` for any host. Only ``http`` and ``https``.
* **Addresses.** Independently of the host check, a call never connects to a loopback,
  link-local (cloud metadata at 169.254.169.254 included), private, carrier-grade NAT,
  unspecified, multicast, reserved, documentation or other special-purpose address, nor to
  an IPv6 form embedding one (IPv4-mapped, IPv4-compatible, 6to4, NAT64, Teredo), unless
  that address is covered by an *IP or CIDR entry of the configured allow-list*. A host name
  entry never does: allowing ``api.partner.com`` must not let its DNS point the engine at
  the metadata service. A connection's entries never do either: connections are data, the
  configuration is the operator's. (The emulator is reached by configuring e.g.
  ``CATFLOW_OUTBOUND_ALLOW=127.0.0.1:8099``.) When a name resolves to several addresses, the
  refused ones are skipped; the call is refused when none is left.
* **When.** The scheme and host are checked before a request is sent, each redirect hop
  included (so a redirect to ``file:`` or to another host is refused). Inside the
  connection, the host is checked again and so is every address of the one DNS lookup the
  connection then uses; the socket's peer is checked once more after connecting. So odd
  spellings (``2130706433``, ``0x7f.1``, ``127.1``, ``[::ffff:127.0.0.1]``, ``user@host``,
  trailing dots, Unicode) and DNS rebinding meet the address check on the address really
  used, whichever parser read them.
* **Proxies.** Sessions ignore the environment (``trust_env`` off: no ``HTTP_PROXY``, no
  ``.netrc``); a proxy given explicitly is refused, since it would hide the real address.
* **Size.** Responses read into memory stop at ``CATFLOW_MAX_RESPONSE_BYTES`` (decoded
  bytes), whatever Content-Length says or if it is absent; beyond it, :class:`ResponseTooLarge`.
  A session enforces it for non-streamed responses and redirect bodies; streamed responses
  are read with :func:`read_limited`.

Refusals raise :class:`OutboundRefused`, a :class:`CatflowError` and deliberately not a
``requests`` error: it is not a network failure and must not be retried.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import NoReturn
from urllib.parse import urlparse

import requests
from requests.exceptions import InvalidURL, MissingSchema
from urllib3.util import connection as urllib3_connection

from engine.config import Settings
from engine.errors import CatflowError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
ALLOW_VARIABLE = "CATFLOW_OUTBOUND_ALLOW"
SIZE_VARIABLE = "CATFLOW_MAX_RESPONSE_BYTES"
_SCHEMES = {"http": 80, "https": 443}
_CHUNK = 64 * 1024


class OutboundRefused(CatflowError):
    """An outbound call was refused before it reached its host; says why and what to do."""

    def __init__(
        self, reason: str, *, url: str, host: str = "", address: str = "", hint: str = ""
    ) -> None:
        self.reason, self.url, self.host, self.address, self.hint = reason, url, host, address, hint
        super().__init__(f"refused to call {url}: {reason}" + (f"; {hint}" if hint else ""))

    def at(self, url: str) -> OutboundRefused:
        """The same refusal, naming the full URL rather than the origin a connection knows."""
        return OutboundRefused(
            self.reason, url=_display(url), host=self.host, address=self.address, hint=self.hint
        )


class ResponseTooLarge(CatflowError):
    """A response body was larger than the configured limit."""

    def __init__(self, url: str, limit: int, declared: int | None = None) -> None:
        self.url, self.limit, self.declared = _display(url), limit, declared
        size = f" (it declares {_size(declared)})" if declared is not None else ""
        super().__init__(
            f"response from {self.url} is larger than {_size(limit)}{size}, the limit set by "
            f"{SIZE_VARIABLE}; ask for less (e.g. a smaller page) or raise the limit"
        )


# --- addresses -------------------------------------------------------------------------

_V4_SPECIAL = [
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.169.254/32", "the cloud metadata service's link-local address"),
    ("169.254.0.0/16", "a link-local address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT (shared) address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("192.0.0.0/24", "an IETF protocol address"),
]
_V6_SPECIAL = [
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("fe80::/10", "a link-local address"),
    ("fc00::/7", "a unique local (private) address"),
    ("fec0::/10", "a site-local (private) address"),
    ("ff00::/8", "a multicast address"),
    ("2001::/32", "a Teredo tunnel address"),
    ("2001:db8::/32", "a documentation address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
]
_SPECIAL: list[tuple[IPNetwork, str]] = [
    (ipaddress.ip_network(net), why) for net, why in _V4_SPECIAL + _V6_SPECIAL
]


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_v4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for, and the name of the form."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "an IPv4-mapped form of"
    if ip.sixtofour is not None:
        return ip.sixtofour, "a 6to4 form of"
    number = int(ip)
    if number >> 32 == 0 and number > 1:
        return ipaddress.IPv4Address(number), "an IPv4-compatible form of"
    if ip in _NAT64:
        return ipaddress.IPv4Address(number & 0xFFFFFFFF), "a NAT64 form of"
    return None


def why_not_public(address: str | IPAddress) -> str | None:
    """Why an address is not a public internet address (e.g. "a loopback address"), or None."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    embedded = _embedded_v4(ip)
    if embedded is not None:
        v4, form = embedded
        why = why_not_public(v4)
        return f"{form} {v4}, {why}" if why else None
    for network, why in _SPECIAL:
        if ip.version == network.version and ip in network:
            return why
    if not ip.is_global:
        return "a special-purpose address that is not publicly routable"
    return None


# --- the policy --------------------------------------------------------------------------

_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")


class _Rule:
    """One allow-list entry, parsed."""

    def __init__(self, entry: str, source: str) -> None:
        self.entry = entry.strip()
        self.name: str | None = None  # an exact host name
        self.suffix: str | None = None  # "*.example.com" -> ".example.com"
        self.network: IPNetwork | None = None
        self.port: int | None = None
        host = self._split_port(self.entry.lower(), source).rstrip(".")
        if host == "*":
            return
        try:
            self.network = ipaddress.ip_network(host, strict=True)
            return
        except ValueError as exc:
            if "/" in host or ":" in host:
                raise self._bad(source, f"is not an IP address or range ({exc})") from None
        name = host[2:] if host.startswith("*.") else host
        if not name.isascii():
            raise self._bad(source, "is not ASCII; write the host name in its xn-- form")
        if not _NAME.fullmatch(name) or _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
            raise self._bad(source, "is not a host name, an IP address or a range")
        if host.startswith("*."):
            self.suffix = "." + name
        else:
            self.name = name

    def _split_port(self, text: str, source: str) -> str:
        host, port = text, ""
        if text.startswith("["):
            match = re.fullmatch(r"\[([^\]]+)\](?::(\d*))?", text)
            if not match:
                raise self._bad(source, "has an unclosed '['")
            host, port = match.group(1), match.group(2) or ""
        elif text.count(":") == 1:
            host, port = text.split(":")
            if not port:
                raise self._bad(source, "has an empty port")
        if port:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise self._bad(source, f"has port {port!r}, not a number from 1 to 65535")
            self.port = int(port)
        if not host:
            raise self._bad(source, "names no host")
        return host

    def _bad(self, source: str, problem: str) -> CatflowError:
        return CatflowError(f"{source} entry {self.entry!r} {problem}")

    @property
    def is_any(self) -> bool:
        return self.name is None and self.suffix is None and self.network is None

    def allows_host(self, host: str, ip: IPAddress | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.is_any:
            return True
        if ip is not None:
            return self.covers(ip)
        if self.suffix is not None:
            return host.endswith(self.suffix)
        return host == self.name

    def covers(self, ip: IPAddress) -> bool:
        return (
            self.network is not None and ip.version == self.network.version and ip in self.network
        )

    def exempts(self, ip: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        embedded = _embedded_v4(ip)
        return self.covers(ip) or (embedded is not None and self.covers(embedded[0]))


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class OutboundPolicy:
    """Where outbound calls may go, and how much of a response they may read.

    ``allow`` is the configured allow-list (see the module's docstring); its IP and CIDR
    entries are the only way to reach a non-public address.
    """

    def __init__(
        self,
        allow: Iterable[str] = (),
        *,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if max_response_bytes <= 0:
            raise CatflowError(f"{SIZE_VARIABLE}={max_response_bytes} must be greater than zero")
        self.max_response_bytes = max_response_bytes
        self._configured = tuple(_Rule(entry, ALLOW_VARIABLE) for entry in allow)
        self._connection: tuple[_Rule, ...] = ()
        self._connection_name = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        return cls(settings.outbound_allow, max_response_bytes=settings.max_response_bytes)

    def for_connection(self, name: str, hosts: Iterable[str]) -> OutboundPolicy:
        """This policy plus the hosts a connection may reach (they open no non-public address)."""
        policy = OutboundPolicy(max_response_bytes=self.max_response_bytes)
        policy._configured = self._configured
        policy._connection = tuple(_Rule(h, f"connection {name!r} allowed host") for h in hosts)
        policy._connection_name = name
        return policy

    def __repr__(self) -> str:
        allow = [rule.entry for rule in self._configured]
        extra = [rule.entry for rule in self._connection]
        return (
            f"OutboundPolicy(allow={allow!r}, connection={extra!r}, max={self.max_response_bytes})"
        )

    def check_url(self, url: str, *, resolve: bool = False) -> None:
        """Refuse a URL whose scheme or host is not allowed, before anything is sent.

        ``resolve`` also looks the host up and checks its addresses now, for early feedback
        (e.g. when a connection is set up); the check at connect time is the one that counts.
        """
        shown = _display(url)
        self._check_scheme(url, shown)
        prepared = requests.PreparedRequest()
        try:  # the URL exactly as requests will send it (IDNA, quoting)
            prepared.prepare_url(url, None)
        except (InvalidURL, MissingSchema) as exc:
            raise OutboundRefused(f"it is not a valid URL ({exc})", url=shown) from None
        # urlparse is the parser requests uses to pick the host it connects to.
        parsed = urlparse(prepared.url or url)
        try:
            port = parsed.port or _SCHEMES[parsed.scheme.lower()]
        except ValueError:
            raise OutboundRefused("its port is not a number from 0 to 65535", url=shown) from None
        if not parsed.hostname:
            raise OutboundRefused("it names no host", url=shown)
        self.check_host(parsed.hostname, port, url=shown)
        if resolve or _parse_ip(parsed.hostname) is not None:  # a literal needs no DNS
            try:
                addresses = _resolve(parsed.hostname, port)
            except OSError as exc:
                raise CatflowError(
                    f"{shown}: {parsed.hostname} cannot be resolved: {exc}"
                ) from None
            self._addresses_for(parsed.hostname, port, addresses, url=shown)

    @staticmethod
    def _check_scheme(url: str, shown: str) -> None:
        scheme = urlparse(url).scheme.lower()
        if scheme not in _SCHEMES:
            what = f"not {scheme!r}" if scheme else "and this URL has no scheme"
            raise OutboundRefused(f"only http and https URLs may be called, {what}", url=shown)

    def check_host(self, host: str, port: int, *, url: str = "") -> None:
        """Refuse a host (name or IP literal) that no allow-list entry lets calls reach."""
        host = host.lower().strip("[]").rstrip(".")
        ip = _parse_ip(host)
        if ip is None and not _NAME.fullmatch(host):
            # e.g. a redirect's raw Unicode or percent-encoded host, which requests does not
            # encode: refused here rather than left to whatever the resolver makes of it.
            raise OutboundRefused(f"{host!r} is not a valid host name", url=url or host, host=host)
        rules = self._configured + self._connection
        if any(rule.allows_host(host, ip, port) for rule in rules):
            return
        where = (
            f"{ALLOW_VARIABLE} or to the allowed hosts of connection {self._connection_name!r}"
            if self._connection_name
            else ALLOW_VARIABLE
        )
        raise OutboundRefused(
            f"{host} (port {port}) is not on the allow-list",
            url=url or _origin(host, port),
            host=host,
            hint=f"if it should be reachable, add {_origin(host, port)!r} (or {host!r}) to {where}",
        )

    def refusal(self, address: str | IPAddress, port: int) -> str | None:
        """Why connecting to this address is refused (e.g. "a loopback address"), or None."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        why = why_not_public(ip)
        if why is None or any(rule.exempts(ip, port) for rule in self._configured):
            return None
        return why

    def _addresses_for(
        self, host: str, port: int, addresses: list[str], *, url: str = ""
    ) -> list[str]:
        """The resolved addresses a call may connect to; refused when there are none."""
        allowed = [address for address in addresses if self.refusal(address, port) is None]
        if allowed or not addresses:
            return allowed
        self._refuse_address(host, port, addresses[0], url=url)

    def _refuse_address(self, host: str, port: int, address: str, *, url: str = "") -> NoReturn:
        host = host.strip("[]").rstrip(".")
        why = self.refusal(address, port)
        reason = (
            f"{address} is {why}" if _parse_ip(host) else f"{host} resolves to {address}, {why}"
        )
        raise OutboundRefused(
            reason,
            url=url or _origin(host, port),
            host=host,
            address=address,
            hint=f"if it should be reachable, allow it with {ALLOW_VARIABLE}="
            f"{_origin(address, port)} (an IP address or range: host names and connections "
            "cannot allow it)",
        )


def _resolve(host: str, port: int) -> list[str]:
    """The addresses a host name (or IP literal) resolves to, in the resolver's order."""
    ip = _parse_ip(host.rstrip("."))
    if ip is not None:  # "127.0.0.1." is that address (some resolvers agree, some fail)
        return [str(ip)]
    family = urllib3_connection.allowed_gai_family()
    infos = socket.getaddrinfo(host.strip("[]"), port, family, socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _display(url: str) -> str:
    """A URL fit for an error message: no user info, query or fragment (they carry secrets)."""
    try:
        parsed = urlparse(url)
        netloc = parsed.netloc.rpartition("@")[2]
        return parsed._replace(netloc=netloc, params="", query="", fragment="").geturl()
    except ValueError:
        return "(an invalid URL)"


def _origin(host: str, port: int) -> str:
    """host:port, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} bytes"
