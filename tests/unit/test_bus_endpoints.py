"""Endpoint strings: good ones parse, bad ones are refused with the endpoint and the problem named."""

from __future__ import annotations

import pytest

from bus.endpoints import MAX_IPC_PATH_BYTES, Endpoint, EndpointError, is_tcp, parse_endpoint


@pytest.mark.parametrize(
    ("text", "bind", "expected"),
    [
        ("ipc:///run/tradebus/ingress.sock", False, Endpoint("ipc", "/run/tradebus/ingress.sock")),
        ("ipc://relative.sock", True, Endpoint("ipc", "relative.sock")),
        ("ipc://@tradebus-abstract", False, Endpoint("ipc", "@tradebus-abstract")),
        ("tcp://127.0.0.1:7001", False, Endpoint("tcp", "127.0.0.1:7001", host="127.0.0.1", port=7001)),
        ("tcp://sequencer.internal:65535", False, Endpoint("tcp", "sequencer.internal:65535", "sequencer.internal", 65535)),
        ("tcp://[::1]:7001", False, Endpoint("tcp", "[::1]:7001", host="[::1]", port=7001)),
        ("tcp://[fe80::1%eth0]:7001", False, Endpoint("tcp", "[fe80::1%eth0]:7001", host="[fe80::1%eth0]", port=7001)),
        ("tcp://*:7001", True, Endpoint("tcp", "*:7001", host="*", port=7001)),
        ("tcp://127.0.0.1:*", True, Endpoint("tcp", "127.0.0.1:*", host="127.0.0.1", port=0)),
        ("tcp://127.0.0.1:0", True, Endpoint("tcp", "127.0.0.1:0", host="127.0.0.1", port=0)),
        ("tcp://eth0:7001", True, Endpoint("tcp", "eth0:7001", host="eth0", port=7001)),
        ("inproc://bus-test", False, Endpoint("inproc", "bus-test")),
    ],
)
def test_valid_endpoints_parse(text: str, bind: bool, expected: Endpoint) -> None:
    parsed = parse_endpoint(text, bind=bind)
    assert parsed == expected
    assert str(parsed) == text


@pytest.mark.parametrize(
    ("text", "bind", "problem"),
    [
        ("", False, "no transport"),
        ("127.0.0.1:7001", False, "no transport"),
        ("udp://127.0.0.1:7001", False, "unsupported transport 'udp'"),
        ("ws://host:80", True, "unsupported transport 'ws'"),
        ("tcp://", False, "empty tcp address"),
        ("ipc://", False, "empty ipc address"),
        ("inproc://", False, "empty inproc address"),
        ("tcp://127.0.0.1", False, "expected tcp://host:port"),
        ("tcp://:7001", False, "expected tcp://host:port"),
        ("tcp://127.0.0.1:http", False, "port 'http' is not a number"),
        ("tcp://127.0.0.1:-1", False, "port '-1' is not a number"),
        ("tcp://127.0.0.1:70000", False, "port 70000 is out of range"),
        ("tcp://127.0.0.1:0", False, "only valid for bind"),
        ("tcp://127.0.0.1:*", False, "only valid for bind"),
        ("tcp://*:7001", False, "host '*' (every interface) is only valid for bind"),
        ("tcp://::1:7001", False, "must be in brackets"),
        ("tcp://[::g]:7001", False, "malformed IPv6"),
        ("tcp://bad_host!:7001", False, "malformed host"),
        ("tcp://-leading:7001", False, "malformed host"),
        ("tcp://10.0.0.1;10.0.0.2:7001", False, "source-address form"),
        ("tcp://127.0.0.1: 7001", False, "whitespace"),
        ("ipc://*", True, "explicit path"),
        ("ipc://@", False, "empty abstract socket name"),
        ("ipc://a\x00b", False, "NUL"),
        ("ipc:///" + "x" * MAX_IPC_PATH_BYTES, False, f"the OS limit is {MAX_IPC_PATH_BYTES}"),
        ("ipc:///" + "\u00e9" * 54, False, "109 bytes"),  # 54 chars, 108 bytes + "/": bytes count
    ],
)
def test_bad_endpoints_name_the_endpoint_and_the_problem(text: str, bind: bool, problem: str) -> None:
    with pytest.raises(EndpointError) as caught:
        parse_endpoint(text, bind=bind)
    assert problem in caught.value.problem
    assert repr(text) in str(caught.value)
    assert caught.value.endpoint == text


def test_ipc_path_at_the_limit_is_accepted() -> None:
    path = "/" + "x" * (MAX_IPC_PATH_BYTES - 1)
    assert parse_endpoint(f"ipc://{path}").address == path


def test_not_a_string_is_refused() -> None:
    with pytest.raises(EndpointError, match="must be a string"):
        parse_endpoint(7001)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://10.0.0.5:7001", True),
        ("tcp://*:7001", True),
        ("ipc:///tmp/x.sock", False),
        ("inproc://x", False),
    ],
)
def test_is_tcp(text: str, expected: bool) -> None:
    assert is_tcp(text) is expected


def test_is_tcp_does_not_wave_through_garbage() -> None:
    # A "tcp needs CURVE" check built on is_tcp must not be bypassed by an unparseable endpoint.
    with pytest.raises(EndpointError):
        is_tcp("tcp//10.0.0.5:7001")
