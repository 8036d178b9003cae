"""Endpoint strings from config: parsed and checked before any socket sees them.

libzmq's own errors for a bad endpoint are terse (``zmq.error.ZMQError: Invalid argument``) and
come late, at bind or connect time, sometimes only on the first reconnect. Parsing at start-up
turns a typo in a deployment profile into an error that names the endpoint and what is wrong.

Three transports: ``ipc://path`` between processes on one host, ``tcp://host:port`` across
hosts (with CURVE, see `bus.security`), ``inproc://name`` inside one process (tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["MAX_IPC_PATH_BYTES", "Endpoint", "EndpointError", "Transport", "is_tcp", "parse_endpoint"]

Transport = Literal["ipc", "tcp", "inproc"]
_TRANSPORTS: Final[tuple[Transport, ...]] = ("ipc", "tcp", "inproc")

# A Unix socket path lives in `sockaddr_un.sun_path`: 108 bytes on Linux including the final NUL
# (104 on macOS and the BSDs). libzmq refuses a longer path with a bare "Invalid argument", and
# test temporary directories are long enough to hit it, so it is checked here by name.
MAX_IPC_PATH_BYTES: Final = 107

# A host name, an interface name (bind only, e.g. eth0) or an IPv4 address; IPv6 goes in brackets.
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?\]")


class EndpointError(ValueError):
    """An endpoint string that cannot work; `str()` names the endpoint and the problem."""

    def __init__(self, endpoint: str, problem: str) -> None:
        super().__init__(f"endpoint {endpoint!r}: {problem}")
        self.endpoint = endpoint
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A checked endpoint.

    Attributes:
        transport: ``ipc``, ``tcp`` or ``inproc``.
        address: everything after ``://`` (a path, ``host:port`` or a name).
        host: tcp only: the host, interface or bracketed IPv6 address; ``*`` for every interface.
        port: tcp only: 1-65535, or 0 for "any free port" (bind only; ``*`` is read as 0).
    """

    transport: Transport
    address: str
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"{self.transport}://{self.address}"


def parse_endpoint(endpoint: str, *, bind: bool = False) -> Endpoint:
    """Parse and check one endpoint string.

    Args:
        endpoint: e.g. ``ipc:///run/tradebus/ingress.sock``, ``tcp://10.0.0.5:7001``.
        bind: True for an endpoint to bind: allows ``*`` as tcp host, and port ``*`` or ``0``
            (the OS picks a free port; read it back with `bus.sockets.bound_endpoint`).

    Returns:
        The parsed endpoint.

    Raises:
        EndpointError: naming the endpoint and what is wrong with it.
    """
    if not isinstance(endpoint, str):
        raise EndpointError(repr(endpoint), f"must be a string, not {type(endpoint).__name__}")
    if any(ch.isspace() for ch in endpoint):
        raise EndpointError(endpoint, "contains whitespace")
    scheme, sep, address = endpoint.partition("://")
    if not sep:
        raise EndpointError(endpoint, "no transport; expected ipc://path, tcp://host:port or inproc://name")
    if scheme not in _TRANSPORTS:
        raise EndpointError(endpoint, f"unsupported transport {scheme!r}; expected one of {', '.join(_TRANSPORTS)}")
    if not address:
        raise EndpointError(endpoint, f"empty {scheme} address")
    if "\x00" in address:
        raise EndpointError(endpoint, "contains a NUL character")
    if scheme == "tcp":
        return _parse_tcp(endpoint, address, bind=bind)
    if scheme == "ipc":
        return _parse_ipc(endpoint, address)
    return Endpoint("inproc", address)


def is_tcp(endpoint: str) -> bool:
    """True if `endpoint` (a valid endpoint string) uses TCP, i.e. may cross hosts.

    Raises:
        EndpointError: if the endpoint is not valid (validation is not skipped here, so a bad
            endpoint cannot slip past a "tcp needs CURVE" check by being unparseable).
    """
    return parse_endpoint(endpoint, bind=True).transport == "tcp"


def _parse_tcp(endpoint: str, address: str, *, bind: bool) -> Endpoint:
    if ";" in address:
        raise EndpointError(endpoint, "source-address form (src;dst) is not supported")
    host, sep, port_text = address.rpartition(":")
    if not sep or not host:
        raise EndpointError(endpoint, "expected tcp://host:port")
    if host == "*":
        if not bind:
            raise EndpointError(endpoint, "host '*' (every interface) is only valid for bind; connect needs a host")
    elif host.startswith("["):
        if not _IPV6.fullmatch(host):
            raise EndpointError(endpoint, f"malformed IPv6 address {host!r}")
    elif ":" in host:
        raise EndpointError(endpoint, f"IPv6 address {host!r} must be in brackets, e.g. tcp://[::1]:7001")
    elif not _HOST.fullmatch(host):
        raise EndpointError(endpoint, f"malformed host {host!r}")
    if port_text == "*":
        port = 0
    elif port_text.isascii() and port_text.isdigit():
        port = int(port_text)
        if port > 65535:
            raise EndpointError(endpoint, f"port {port} is out of range 1-65535")
    else:
        raise EndpointError(endpoint, f"port {port_text!r} is not a number")
    if port == 0 and not bind:
        raise EndpointError(endpoint, "port 0 / '*' (any free port) is only valid for bind")
    return Endpoint("tcp", address, host=host, port=port)


def _parse_ipc(endpoint: str, address: str) -> Endpoint:
    if address == "*":
        raise EndpointError(endpoint, "ipc needs an explicit path (wildcard paths are not used)")
    if address == "@":  # "@name" is Linux's abstract namespace: no file, same length limit
        raise EndpointError(endpoint, "empty abstract socket name")
    size = len(address.encode("utf-8", "surrogateescape"))
    if size > MAX_IPC_PATH_BYTES:
        raise EndpointError(endpoint, f"ipc path is {size} bytes, the OS limit is {MAX_IPC_PATH_BYTES}")
    return Endpoint("ipc", address)
