"""The connection layer of :mod:`newsflow.httpclient`: the address guard and the deadline.

* The guard runs inside httpcore's network backend, *after* DNS resolution and on every
  redirect hop, and the socket connects to the very address that was checked, so there
  is no DNS-rebinding window: loopback, private, link-local, multicast, reserved and
  unspecified addresses are refused (IPv4, IPv6, IPv4-mapped and 6to4 forms alike).
* Every socket operation is bounded by what is left of the whole response's time budget
  (httpx's timeouts are per operation; a server trickling one byte at a time never
  trips them).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Callable, Iterable

import httpcore


class BlockedAddress(httpcore.ConnectError):
    """The target resolved to an address we refuse to connect to."""


def address_is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and friends are IPv4 addresses in disguise
        if ip.ipv4_mapped is not None:
            return address_is_public(ip.ipv4_mapped)
        if ip.sixtofour is not None and not address_is_public(ip.sixtofour):
            return False
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified or not ip.is_global)


# Resolver hook: tests point host names at 127.0.0.x without touching /etc/hosts.
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


# The total deadline of the request running in this thread (SafeClient.get sets it).
# httpx's timeouts apply to each socket operation; a server that trickles its headers
# or body one byte at a time never trips them, so every socket operation below is also
# bounded by what is left of the whole response's time budget.
_deadline = threading.local()


def set_deadline(at: float | None) -> None:
    """Bound this thread's socket operations by ``at`` (time.monotonic()), or stop."""
    _deadline.value = at


def _remaining(timeout: float | None, what: str, exc: type[Exception]) -> float | None:
    deadline = getattr(_deadline, "value", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise exc(f"total deadline exceeded during {what} (trickling or stalled server)")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read, write and TLS handshake ends by the deadline."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _remaining(timeout, "read", httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _remaining(timeout, "write", httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        timeout = _remaining(timeout, "TLS handshake", httpcore.ConnectTimeout)
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """Resolves, checks every address, then connects to a checked address."""

    def __init__(self, allow_private: bool, resolver: Resolver = system_resolver,
                 exempt_networks: Iterable[str] = ()):
        self.allow_private = allow_private
        self.resolver = resolver
        # Networks allowed even when private networks are refused (an intranet feed
        # server; the tests' "allowed" loopback host).
        self.exempt = [ipaddress.ip_network(n, strict=False) for n in exempt_networks]

    def allowed(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if self.allow_private or address_is_public(ip):
            return True
        plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        return any(plain.version == n.version and plain in n for n in self.exempt)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = self.resolver(host, port)
        except (socket.gaierror, socket.herror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"DNS lookup failed for {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"DNS lookup failed for {host}: no address")
        last_error: Exception | None = None
        for address in addresses:
            try:
                ip = ipaddress.ip_address(address.split("%")[0])
            except ValueError:
                last_error = httpcore.ConnectError(f"DNS lookup failed for {host}: bad address {address!r}")
                continue
            if not self.allowed(ip):
                last_error = BlockedAddress(
                    f"refused: {host} resolves to non-public address {ip} "
                    "(set NEWSFLOW_ALLOW_PRIVATE_NETWORKS=1 to allow)")
                continue
            try:
                stream = super().connect_tcp(
                    str(ip), port, _remaining(timeout, "connect", httpcore.ConnectTimeout),
                    local_address, socket_options)
                return DeadlineStream(stream)
            except httpcore.ConnectError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error
