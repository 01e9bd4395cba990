"""Where customer webhooks may be sent, and the one HTTP request that sends one (SSRF-safe).

A customer chooses the URL, so it is hostile input: it must never reach the service's own network (the
instance metadata service at 169.254.169.254, the database, anything private). The host is resolved and
every address it resolves to must be public, at registration and again at every delivery (DNS can
change); the request then connects to the address that was vetted, never resolving the name again (DNS
rebinding), while Host and TLS SNI keep the name. Redirects are never followed.
`WEBHOOK_ALLOW_PRIVATE_TARGETS=true` lifts the address check (local development, tests); nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from messaging.errors import InvalidInput

MAX_URL_LENGTH = 2048
# Enough of an answer to show an operator why it failed; the rest is never read.
RESPONSE_EXCERPT_BYTES = 1024

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# Refused although Python's is_global accepts parts of them: 192.0.0.0/24 is reserved for protocol
# assignments (192.0.0.8, the IPv4 dummy address, and the NAT64/DS-Lite and anycast ones included): none is
# a customer's server; fec0::/10 is the deprecated IPv6 site-local range, private wherever it is still used.
_REFUSED_NETWORKS = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("fec0::/10"))

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL may not be called: a refused address, an unresolvable name, a malformed URL."""


class ResolutionTimedOut(TargetRefused):
    """The host's name did not resolve within the deadline (a slow or hostile name server)."""


def _translated_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped or NAT64 form stands for: that is the host it reaches."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IpAddress) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local, site-local,
    multicast, reserved, shared, documentation, unspecified, IETF protocol assignments). IPv6 forms that
    carry an IPv4 address are judged by it (mapped, NAT64, 6to4); Teredo tunnels are refused outright."""
    if any(address in network for network in _REFUSED_NETWORKS):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        translated = _translated_ipv4(address)
        if translated is not None:
            return is_public(translated)
        if address.teredo is not None:
            return False
        if address.sixtofour is not None and not is_public(address.sixtofour):
            return False
    return address.is_global and not address.is_multicast and not address.is_reserved


def _parse(url: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(character.isspace() or ord(character) < 0x20 or ord(character) == 0x7F for character in url):
        raise TargetRefused("url contains whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("url must be an absolute http:// or https:// URL")
    if not parts.hostname:
        raise TargetRefused("url has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("url must not carry credentials")
    if parts.fragment:
        raise TargetRefused("url must not have a #fragment")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise TargetRefused("url has an invalid port") from None
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


# The resolver: replaced in tests to make a public name resolve to a private address.
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address of `host` (getaddrinfo, so decimal and octal IPv4 spellings come out as addresses)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


resolver: Resolver = system_resolver


def _resolve_within(host: str, port: int, timeout: float) -> list[str]:
    """The resolver's answer, or ResolutionTimedOut after `timeout` seconds.

    getaddrinfo takes no deadline and cannot be cancelled, and the customer's name server decides how long
    it takes: it runs on a thread of its own, and a late answer is dropped. That thread ends when the
    system resolver gives up on its own; it is a daemon, so it never holds up the process. One thread per
    resolution, not a shared pool: hung resolutions would fill a pool and delay every other endpoint."""
    resolve = resolver  # the one in place now, even if it is replaced while the thread runs
    answer: list[list[str]] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            answer.append(resolve(host, port))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="webhook-resolve", daemon=True).start()
    if not done.wait(max(0.0, timeout)):
        raise ResolutionTimedOut(f"the host {host!r} did not resolve within {timeout:g} s")
    if failure:
        raise failure[0]
    return answer[0]


def resolve_target(url: str, *, allow_private: bool, timeout: float) -> list[IpAddress]:
    """The addresses a delivery to `url` may connect to; TargetRefused when there are none allowed, and
    ResolutionTimedOut when the name has not resolved within `timeout` seconds.

    Every address must be public: a name that resolves to a public and a private address is refused (an
    attacker controlling the name chooses which one the client would use)."""
    parts = _parse(url)
    host = parts.hostname or ""
    try:
        found = _resolve_within(host, _port(parts), timeout)
        addresses = [ipaddress.ip_address(text.split("%", 1)[0]) for text in found]
    except (OSError, UnicodeError, ValueError):
        raise TargetRefused(f"the host {host!r} does not resolve") from None
    if not addresses:
        raise TargetRefused(f"the host {host!r} does not resolve")
    if not allow_private:
        refused = [address for address in addresses if not is_public(address)]
        if refused:
            raise TargetRefused(f"the host {host!r} resolves to a non-public address ({refused[0]})")
    return addresses


def check_url(url: str, *, allow_private: bool, resolve_timeout: float) -> str:
    """Validate a URL a customer registers (422 naming `url` otherwise); returns it unchanged. The name
    must resolve within `resolve_timeout` seconds: a name server that never answers costs the API request
    that long, then a 422, never the function's timeout."""
    try:
        parts = _parse(url)
        if parts.scheme != "https" and not allow_private:
            raise TargetRefused("url must use https")
        if not allow_private:
            resolve_target(url, allow_private=False, timeout=resolve_timeout)
    except TargetRefused as refused:
        raise InvalidInput(str(refused), field="url") from None
    return url


@dataclass(frozen=True)
class HttpResult:
    status_code: int | None
    error: str | None
    response_excerpt: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedHttpConnection(http.client.HTTPConnection):
    """Connects to the vetted address instead of resolving the host again."""

    def __init__(self, host: str, port: int, address: IpAddress, connect_timeout: float) -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self._address), self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHttpsConnection(_PinnedHttpConnection):
    """TLS to the vetted address, with SNI and certificate checks against the URL's host name."""

    def connect(self) -> None:
        super().connect()
        self.sock = _tls_context().wrap_socket(self.sock, server_hostname=self.host)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built on the first https delivery, not at import: loading the CA store costs about 80 ms, a cold
    start's worth for every function that imports this module and never delivers over TLS."""
    return ssl.create_default_context()


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    connect_timeout: float,
    total_timeout: float,
) -> HttpResult:
    """POST once; never raises for what the network or the endpoint does (the result says what happened).

    Resolving the name is part of both budgets: it may take at most the connect timeout, and what it took
    is deducted from the connect and total timeouts. The total timeout is enforced by a timer that shuts
    the socket down, so a receiver that trickles its answer a byte at a time costs at most `total_timeout`,
    like one that never answers."""
    started = time.monotonic()

    def result(status: int | None, error: str | None, excerpt: str | None = None) -> HttpResult:
        return HttpResult(status, error, excerpt, int((time.monotonic() - started) * 1000))

    def remaining(budget: float) -> float:
        # Never 0: a socket timeout of 0 would make it non-blocking, not expired.
        return max(0.001, budget - (time.monotonic() - started))

    try:
        addresses = resolve_target(url, allow_private=allow_private, timeout=min(connect_timeout, total_timeout))
    except ResolutionTimedOut as late:
        return result(None, f"timed out: {late}")
    except TargetRefused as refused:
        return result(None, f"refused: {refused}")
    parts = _parse(url)
    host, port = parts.hostname or "", _port(parts)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = _PinnedHttpsConnection if parts.scheme == "https" else _PinnedHttpConnection
    connection = connection_class(host, port, addresses[0], remaining(connect_timeout))
    timed_out = threading.Event()
    # The connected socket, kept here: http.client drops its own reference once a response that closes the
    # connection has started (the response still reads from the socket).
    connected: list[socket.socket] = []

    def expire() -> None:
        timed_out.set()
        for sock in connected:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(remaining(total_timeout), expire)
    timer.daemon = True
    timer.start()
    try:
        connection.connect()
        if connection.sock is not None:
            connected.append(connection.sock)
            connection.sock.settimeout(remaining(total_timeout))
        if timed_out.is_set():  # the deadline passed while connecting
            raise TimeoutError
        connection.request("POST", path, body=body, headers={**headers, "Host": parts.netloc.rsplit("@", 1)[-1]})
        response = connection.getresponse()
        excerpt = response.read(RESPONSE_EXCERPT_BYTES).decode("utf-8", "replace")
        status = response.status
    except TimeoutError:
        return result(None, "timed out")
    except ssl.SSLError as exc:
        return result(None, f"TLS error: {exc.reason or type(exc).__name__}")
    except (OSError, http.client.HTTPException) as exc:
        if timed_out.is_set():
            return result(None, "timed out")
        return result(None, f"connection error: {type(exc).__name__}")
    finally:
        timer.cancel()
        connection.close()
    if timed_out.is_set():
        return result(None, "timed out")
    if 300 <= status < 400:
        return result(status, f"HTTP {status}: redirects are not followed", excerpt)
    if not 200 <= status < 300:
        return result(status, f"HTTP {status}", excerpt)
    return result(status, None, excerpt)
