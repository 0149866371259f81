"""Network guard rails shared by the fleet, the chaos runner and the fault proxy.

Every socket the fleet package opens or listens on must be on the loopback network
(127.0.0.0/8 or ::1): these tools generate load and faults, and must never aim either at a
machine that did not ask for it. :func:`require_loopback` is called on every address before use.
"""

from __future__ import annotations

import ipaddress
import socket


class NotLoopbackError(ValueError):
    """An address outside 127.0.0.0/8 and ::1 was given to a load or fault tool."""


def require_loopback(host: str) -> str:
    """Return ``host`` if every address it resolves to is a loopback address, else raise.

    >>> require_loopback("127.0.0.1")
    '127.0.0.1'
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as e:
        raise NotLoopbackError(f"{host!r} does not resolve: {e}") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_loopback:
            raise NotLoopbackError(f"{host!r} resolves to {addr}, outside the loopback network; "
                                   "posgate fleet and chaos only target 127.0.0.0/8")  # fmt: skip
    return host


def parse_target(target: str) -> tuple[str, int]:
    """``host:port`` → (host, port), loopback enforced."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {target!r}")
    return require_loopback(host or "127.0.0.1"), int(port)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (to start a server we will restart on the same port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((require_loopback(host), 0))
        return int(s.getsockname()[1])
