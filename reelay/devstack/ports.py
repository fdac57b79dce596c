"""TCP ports: free ones for servers, busy ones, and `host:port` addresses."""

from __future__ import annotations

import random
import socket

from reelay.devstack.process import StackError

#: SeaweedFS serves gRPC on every HTTP port + 10000; both ports must be free.
GRPC_PORT_OFFSET = 10000

_handed_out: set[int] = set()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on `host:port`, i.e. a server could bind it now.

    SO_REUSEADDR as the servers use it: connections of a stopped server still in TIME_WAIT do
    not make its port look busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((connect_host(host), port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1", *, with_grpc: bool = False) -> int:
    """A currently free TCP port, never the same one twice in this process.

    `with_grpc=True` also requires port + 10000 to be free (SeaweedFS puts its gRPC there); such
    ports are picked from 10000-22767 so that both stay below the kernel's ephemeral range.
    """
    for _ in range(500):
        if with_grpc:
            port = random.randint(10000, 32767 - GRPC_PORT_OFFSET)
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
        if port in _handed_out or not port_is_free(port, host):
            continue
        if with_grpc and (
            port + GRPC_PORT_OFFSET in _handed_out
            or not port_is_free(port + GRPC_PORT_OFFSET, host)
        ):
            continue
        _handed_out.add(port)
        if with_grpc:
            _handed_out.add(port + GRPC_PORT_OFFSET)
        return port
    raise StackError("could not find a free TCP port")


def split_host_port(address: str) -> tuple[str, int]:
    """`"127.0.0.1:7233"` -> `("127.0.0.1", 7233)`; a scheme prefix is ignored."""
    address = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def connect_host(host: str) -> str:
    """Where to connect to reach a server bound to `host` (wildcards mean this machine)."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def bind_host(host: str) -> str:
    """The address a server given `host` binds (a name resolved, as the server would)."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host
