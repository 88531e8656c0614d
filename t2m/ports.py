"""Is a listening port free?  Checked before a server starts, so that a taken
port is one clear sentence instead of a traceback from deep in the event loop."""

from __future__ import annotations

import errno
import socket


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port``, found by binding it
    the way the API will (address reuse on, so a socket in TIME_WAIT is free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def port_taken_message(host: str, port: int) -> str:
    return (
        f"t2m: port {port} on {host} is already in use (another T2M, or another server). "
        f"Stop it, or choose a free port: PORT={port + 1} make dev"
    )
