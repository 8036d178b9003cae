"""F1, F2, F3, F5: CURVE on real TCP sockets refuses whoever is not on the allow-list.

A ROUTER server on 127.0.0.1 runs CURVE with our ZAP handler; DEALER clients try to reach it
with no key, PLAIN, an unlisted key, a listed public key without its secret, or the wrong server
key. "Nothing reaches the app" is checked by polling the server socket for `REFUSE_WINDOW_MS`;
so that a silent socket cannot pass for a refusal, each negative test also waits for the
server's monitor to report the failed handshake, and (F1) shows an allowed client getting through
the same server, its messages tagged with its key name as User-Id.

No receive here blocks without a timeout; every context is destroyed and every ZAP thread
stopped by the fixtures, so a failure cannot hang the suite.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from bus.security import (
    DEFAULT_ZAP_DOMAIN,
    AllowList,
    CurveClient,
    CurveServer,
    KeyPair,
    NoSecurity,
    SecurityError,
    ZapAuthenticator,
    load_public_key,
    load_secret_key,
    peer_identity,
    running_authenticator,
    security_for,
    write_keypair,
)

# Long enough for a refused client to connect, fail its handshake and retry a few times on
# loopback (a handshake takes ~1 ms); short enough to keep the file well under a few seconds.
REFUSE_WINDOW_MS = 300
# Upper bound for something that should happen (an allowed message, a monitor event).
ARRIVE_TIMEOUT_MS = 3_000

HANDSHAKE_FAILURES = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)

ALLOWED = "strategy-sma"
ALSO_ALLOWED = "feed-binance"


@dataclass(frozen=True)
class Keys:
    server_secret: Path
    server_public: Path
    allow_dir: Path
    client_secret: dict[str, Path]  # allowed names and "rogue" (not on the allow-list)
    other_server_public: Path  # a different server's key, for F3


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    server_public, server_secret = write_keypair(tmp_path / "server", "sequencer")
    # Peers generate their pairs where they run; only the public halves go to the allow-list.
    allow_dir = tmp_path / "allow"
    allow_dir.mkdir()
    client_secret: dict[str, Path] = {}
    for name in (ALLOWED, ALSO_ALLOWED, "rogue"):
        public, secret = write_keypair(tmp_path / "peers" / name, name)
        client_secret[name] = secret
        if name != "rogue":
            (allow_dir / public.name).write_bytes(public.read_bytes())
    other_public, _ = write_keypair(tmp_path / "other-server", "impostor")
    return Keys(server_secret, server_public, allow_dir, client_secret, other_public)


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def server_config(keys: Keys) -> CurveServer:
    return CurveServer.from_files(keys.server_secret, keys.allow_dir)


@pytest.fixture
def zap(ctx: zmq.Context[zmq.Socket[bytes]], server_config: CurveServer) -> Iterator[ZapAuthenticator]:
    with ZapAuthenticator(ctx, server_config) as handler:
        yield handler
    assert running_authenticator(ctx) is None


@dataclass
class Server:
    sock: zmq.Socket[bytes]
    port: int
    monitor: zmq.Socket[bytes]

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


def _bound_router(ctx: zmq.Context[zmq.Socket[bytes]], configure: Callable[[zmq.Socket[bytes]], None]) -> Server:
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    configure(sock)
    monitor = sock.get_monitor_socket(HANDSHAKE_FAILURES | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_ACCEPTED)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    return Server(sock, port, monitor)


@pytest.fixture
def server(
    ctx: zmq.Context[zmq.Socket[bytes]], zap: ZapAuthenticator, server_config: CurveServer
) -> Iterator[Server]:
    srv = _bound_router(ctx, server_config.apply_server)
    yield srv
    srv.sock.disable_monitor()
    srv.monitor.close(linger=0)
    srv.sock.close(linger=0)


# Client sockets stay referenced here until the context is destroyed: a socket dropped by the
# test would be closed by the garbage collector, and a refusal test would then prove nothing.
_OPEN_CLIENTS: list[zmq.Socket[bytes]] = []


@pytest.fixture(autouse=True)
def _forget_clients() -> Iterator[None]:
    yield
    _OPEN_CLIENTS.clear()


def _client(
    ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, configure: Callable[[zmq.Socket[bytes]], None], body: bytes
) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    configure(sock)
    sock.connect(endpoint)
    sock.send(body)  # queued until the handshake succeeds, which for a refused client it never does
    _OPEN_CLIENTS.append(sock)
    return sock


def _receive(sock: zmq.Socket[bytes], timeout_ms: int) -> list[zmq.Frame] | None:
    """One multipart message within `timeout_ms`, as frames (they carry User-Id), or None."""
    if not sock.poll(timeout_ms, zmq.POLLIN):
        return None
    frames: list[zmq.Frame] = sock.recv_multipart(copy=False)
    return frames


def _wait_event(monitor: zmq.Socket[bytes], mask: int, timeout_ms: int = ARRIVE_TIMEOUT_MS) -> int | None:
    """The first monitor event in `mask` within `timeout_ms`, or None."""
    deadline = time.monotonic() + timeout_ms / 1000
    while (left_ms := int((deadline - time.monotonic()) * 1000)) > 0:
        if not monitor.poll(left_ms, zmq.POLLIN):
            break
        event = int(recv_monitor_message(monitor)["event"])
        if event & mask:
            return event
    return None


def _null(sock: zmq.Socket[bytes]) -> None:
    """No mechanism at all (ZeroMQ NULL)."""


def _plain(sock: zmq.Socket[bytes]) -> None:
    sock.plain_username = ALLOWED.encode()
    sock.plain_password = b"guess"


def _curve(keys: Keys, secret: Path, server_public: Path) -> Callable[[zmq.Socket[bytes]], None]:
    return CurveClient.from_files(secret, server_public).apply_client


def _stolen_public_key(keys: Keys) -> Callable[[zmq.Socket[bytes]], None]:
    """Claims the allowed peer's public key but holds another secret: CURVE proves possession."""

    def configure(sock: zmq.Socket[bytes]) -> None:
        rogue = load_secret_key(keys.client_secret["rogue"])
        assert rogue.secret is not None
        sock.curve_secretkey = rogue.secret
        sock.curve_publickey = load_public_key(keys.allow_dir / f"{ALLOWED}.key")
        sock.curve_serverkey = load_public_key(keys.server_public)

    return configure


def _assert_nothing_arrives(server: Server, who: str) -> None:
    got = _receive(server.sock, REFUSE_WINDOW_MS)
    assert got is None, f"{who}: the server app received {[f.bytes for f in got]!r}"


# --------------------------------------------------------------------------------------------- F1


@pytest.mark.parametrize(
    "attempt",
    ["null_mechanism", "plain_mechanism", "unlisted_key", "listed_public_key_without_its_secret"],
)
def test_f1_refused_peers_reach_nothing_and_the_allowed_peer_gets_through(
    attempt: str, ctx: zmq.Context[zmq.Socket[bytes]], keys: Keys, server: Server
) -> None:
    configure = {
        "null_mechanism": _null,
        "plain_mechanism": _plain,
        "unlisted_key": _curve(keys, keys.client_secret["rogue"], keys.server_public),
        "listed_public_key_without_its_secret": _stolen_public_key(keys),
    }[attempt]
    _client(ctx, server.endpoint, configure, f"from {attempt}".encode())

    _assert_nothing_arrives(server, attempt)
    assert _wait_event(server.monitor, HANDSHAKE_FAILURES) is not None, (
        f"{attempt}: no failed handshake seen: the refusal test proved nothing"
    )

    # The same server lets an allowed peer in, and names it by its key.
    _client(ctx, server.endpoint, _curve(keys, keys.client_secret[ALLOWED], keys.server_public), b"hello")
    frames = _receive(server.sock, ARRIVE_TIMEOUT_MS)
    assert frames is not None, "the allowed client's message did not arrive"
    assert frames[-1].bytes == b"hello"
    assert peer_identity(frames[-1]) == ALLOWED
    assert peer_identity(frames[0]) == ALLOWED  # every part carries it, the routing id too
    # The refused client keeps retrying with its queued message: still nothing from it.
    _assert_nothing_arrives(server, attempt)


def test_f1_each_allowed_peer_is_named_by_its_own_key(
    ctx: zmq.Context[zmq.Socket[bytes]], keys: Keys, server: Server
) -> None:
    for name in (ALLOWED, ALSO_ALLOWED):
        _client(ctx, server.endpoint, _curve(keys, keys.client_secret[name], keys.server_public), name.encode())
    seen = {}
    for _ in range(2):
        frames = _receive(server.sock, ARRIVE_TIMEOUT_MS)
        assert frames is not None
        seen[frames[-1].bytes.decode()] = peer_identity(frames[-1])
    assert seen == {ALLOWED: ALLOWED, ALSO_ALLOWED: ALSO_ALLOWED}


def test_f1_ipc_null_socket_has_no_identity(ctx: zmq.Context[zmq.Socket[bytes]], tmp_path: Path) -> None:
    """Without security there is no User-Id: the authz policy then gets None, never a guess."""
    endpoint = f"ipc://{tmp_path / 'ingress.sock'}"
    server = ctx.socket(zmq.ROUTER)
    server.linger = 0
    security_for(endpoint).apply_server(server)
    server.bind(endpoint)
    _client(ctx, endpoint, security_for(endpoint).apply_client, b"plain")
    frames = _receive(server, ARRIVE_TIMEOUT_MS)
    assert frames is not None
    assert peer_identity(frames[-1]) is None
    server.close(linger=0)


# --------------------------------------------------------------------------------------------- F2


def test_f2_apply_server_without_zap_handler_refuses(
    ctx: zmq.Context[zmq.Socket[bytes]], server_config: CurveServer
) -> None:
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    with pytest.raises(SecurityError, match="no ZAP handler is running") as info:
        server_config.apply_server(sock)
    assert DEFAULT_ZAP_DOMAIN in str(info.value)
    assert sock.curve_server == 0, "the socket was configured despite the refusal"
    sock.close(linger=0)


def test_f2_zap_handler_in_another_context_does_not_count(
    ctx: zmq.Context[zmq.Socket[bytes]], server_config: CurveServer
) -> None:
    """ZAP is per context: a handler elsewhere leaves this socket's context accepting anyone."""
    other: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    try:
        with ZapAuthenticator(other, server_config), pytest.raises(SecurityError, match="no ZAP handler"):
            server_config.apply_server(sock)
    finally:
        sock.close(linger=0)
        other.destroy(linger=0)


def test_f2_zap_handler_for_another_allow_list_does_not_count(
    ctx: zmq.Context[zmq.Socket[bytes]], keys: Keys, server_config: CurveServer
) -> None:
    narrower = CurveServer(server_config.keys, AllowList.from_paths([keys.allow_dir / f"{ALSO_ALLOWED}.key"]))
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    with ZapAuthenticator(ctx, narrower), pytest.raises(SecurityError, match="does not serve"):
        server_config.apply_server(sock)
    sock.close(linger=0)


def test_f2_stopped_zap_handler_refuses_again(ctx: zmq.Context[zmq.Socket[bytes]], server_config: CurveServer) -> None:
    handler = ZapAuthenticator(ctx, server_config)
    handler.start()
    handler.stop()
    handler.stop()  # idempotent
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    with pytest.raises(SecurityError, match="no ZAP handler"):
        server_config.apply_server(sock)
    sock.close(linger=0)


def test_f2_handler_stopping_after_bind_fails_closed(
    ctx: zmq.Context[zmq.Socket[bytes]], keys: Keys, server_config: CurveServer, server: Server, zap: ZapAuthenticator
) -> None:
    """apply_server also sets ZAP_ENFORCE_DOMAIN: with the handler gone, libzmq lets nobody in.

    Depending on how far libzmq got in closing the handler's socket, the handshake fails at once
    or stalls waiting for a ZAP reply that never comes; either way it never succeeds.
    """
    zap.stop()
    _client(ctx, server.endpoint, _curve(keys, keys.client_secret["rogue"], keys.server_public), b"late rogue")
    assert _wait_event(server.monitor, zmq.EVENT_ACCEPTED) is not None, "the client never reached the server"
    _assert_nothing_arrives(server, "unlisted key after the ZAP handler stopped")
    assert _wait_event(server.monitor, zmq.EVENT_HANDSHAKE_SUCCEEDED, timeout_ms=50) is None


def test_f2_premise_curve_without_zap_accepts_anyone(ctx: zmq.Context[zmq.Socket[bytes]], keys: Keys) -> None:
    """Why F2 exists: a CURVE socket set up by hand, with no handler, lets an unlisted key in."""
    server_keys = load_secret_key(keys.server_secret)
    assert server_keys.secret is not None

    def by_hand(sock: zmq.Socket[bytes]) -> None:
        sock.curve_secretkey = server_keys.secret
        sock.curve_publickey = server_keys.public
        sock.curve_server = True

    srv = _bound_router(ctx, by_hand)
    _client(ctx, srv.endpoint, _curve(keys, keys.client_secret["rogue"], keys.server_public), b"rogue")
    frames = _receive(srv.sock, ARRIVE_TIMEOUT_MS)
    srv.sock.disable_monitor()
    srv.monitor.close(linger=0)
    assert frames is not None and frames[-1].bytes == b"rogue"


def test_f2_one_handler_per_context(ctx: zmq.Context[zmq.Socket[bytes]], server_config: CurveServer) -> None:
    with ZapAuthenticator(ctx, server_config), pytest.raises(SecurityError, match="already running"):
        ZapAuthenticator(ctx, server_config).start()


# --------------------------------------------------------------------------------------------- F3


def test_f3_wrong_server_key_is_refused(ctx: zmq.Context[zmq.Socket[bytes]], keys: Keys, server: Server) -> None:
    client = _client(
        ctx, server.endpoint, _curve(keys, keys.client_secret[ALLOWED], keys.other_server_public), b"secret order"
    )
    client_monitor = client.get_monitor_socket(HANDSHAKE_FAILURES | zmq.EVENT_HANDSHAKE_SUCCEEDED)
    _assert_nothing_arrives(server, "client pinned to the wrong server key")
    assert _wait_event(server.monitor, HANDSHAKE_FAILURES) is not None
    assert _wait_event(client_monitor, zmq.EVENT_HANDSHAKE_SUCCEEDED, timeout_ms=50) is None
    client.disable_monitor()
    client_monitor.close(linger=0)


def test_f3_curve_client_never_falls_back_to_a_plaintext_server(
    ctx: zmq.Context[zmq.Socket[bytes]], keys: Keys
) -> None:
    """A server with no security at the address: the CURVE client sends it nothing readable."""
    srv = _bound_router(ctx, NoSecurity().apply_server)
    _client(ctx, srv.endpoint, _curve(keys, keys.client_secret[ALLOWED], keys.server_public), b"secret order")
    _assert_nothing_arrives(srv, "CURVE client against a NULL server")
    assert _wait_event(srv.monitor, HANDSHAKE_FAILURES) is not None
    srv.sock.disable_monitor()
    srv.monitor.close(linger=0)


# --------------------------------------------------------------------------------------------- F5


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601, 0o610])
def test_f5_secret_key_open_to_others_is_refused(keys: Keys, mode: int) -> None:
    os.chmod(keys.server_secret, mode)
    with pytest.raises(SecurityError) as info:
        load_secret_key(keys.server_secret)
    message = str(info.value)
    assert str(keys.server_secret) in message
    assert f"{mode:04o}" in message
    # The service refuses to start: its configs load the secret through the same check.
    with pytest.raises(SecurityError, match="group or others"):
        CurveServer.from_files(keys.server_secret, keys.allow_dir)
    os.chmod(keys.client_secret[ALLOWED], mode)
    with pytest.raises(SecurityError, match="group or others"):
        CurveClient.from_files(keys.client_secret[ALLOWED], keys.server_public)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_f5_owner_only_secret_key_loads(keys: Keys, mode: int) -> None:
    os.chmod(keys.server_secret, mode)
    pair = load_secret_key(keys.server_secret)
    assert pair.public == load_public_key(keys.server_public)


def test_f5_symlinked_secret_key_is_judged_by_its_target(keys: Keys, tmp_path: Path) -> None:
    link = tmp_path / "link.key_secret"
    link.symlink_to(keys.server_secret)  # a symlink itself shows mode 0777; the target counts
    assert load_secret_key(link) == load_secret_key(keys.server_secret)
    os.chmod(keys.server_secret, 0o644)
    with pytest.raises(SecurityError, match="0644"):
        load_secret_key(link)


# ------------------------------------------------------------------------------ key files, config


def test_write_keypair_modes_and_pyzmq_format(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "keys"
    public, secret = write_keypair(directory, "gateway-x")
    assert (public.name, secret.name) == ("gateway-x.key", "gateway-x.key_secret")
    assert directory.stat().st_mode & 0o777 == 0o700
    assert secret.stat().st_mode & 0o777 == 0o600
    assert public.stat().st_mode & 0o777 == 0o644
    zmq_public, zmq_secret = zmq.auth.load_certificate(secret)
    assert zmq_secret is not None and zmq.curve_public(zmq_secret) == zmq_public
    assert zmq.auth.load_certificate(public) == (zmq_public, None)
    assert [p.name for p in sorted(directory.iterdir())] == ["gateway-x.key", "gateway-x.key_secret"]


def test_write_keypair_refuses_overwrite_unless_asked(tmp_path: Path) -> None:
    _, secret = write_keypair(tmp_path, "a")
    before = secret.read_bytes()
    with pytest.raises(SecurityError, match="refusing to overwrite"):
        write_keypair(tmp_path, "a")
    assert secret.read_bytes() == before
    write_keypair(tmp_path, "a", overwrite=True)
    assert secret.read_bytes() != before
    assert secret.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 65, "sp ace"])
def test_key_names_are_identities_not_paths(tmp_path: Path, name: str) -> None:
    with pytest.raises(SecurityError, match="invalid key name"):
        write_keypair(tmp_path, name)


def test_key_pair_repr_hides_the_secret(keys: Keys) -> None:
    pair = load_secret_key(keys.server_secret)
    assert pair.secret is not None
    assert pair.secret.decode() not in repr(pair)


def test_allow_list_directory_reads_public_keys_by_name(keys: Keys) -> None:
    (keys.allow_dir / "stray.key_secret").write_text("ignored: not a .key file\n")
    allow = AllowList.from_paths(keys.allow_dir)
    assert allow.names() == (ALSO_ALLOWED, ALLOWED)
    assert allow.name_of(load_public_key(keys.allow_dir / f"{ALLOWED}.key")) == ALLOWED
    assert allow.name_of(load_public_key(keys.server_public)) is None


def test_allow_list_refuses_secret_files_duplicates_and_emptiness(keys: Keys, tmp_path: Path) -> None:
    leaked = tmp_path / "leaky"
    leaked.mkdir()
    (leaked / "x.key").write_bytes(keys.client_secret[ALLOWED].read_bytes())
    with pytest.raises(SecurityError, match="holds a secret key"):
        AllowList.from_paths(leaked)
    twice = tmp_path / "twice"
    twice.mkdir()
    for name in ("one", "two"):
        (twice / f"{name}.key").write_bytes((keys.allow_dir / f"{ALLOWED}.key").read_bytes())
    with pytest.raises(SecurityError, match="under two names"):
        AllowList.from_paths(twice)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SecurityError, match="nobody could connect"):
        AllowList.from_paths(empty)
    with pytest.raises(SecurityError, match="does not exist"):
        AllowList.from_paths(tmp_path / "missing")


def test_a_secret_key_that_does_not_match_its_public_key_is_refused(keys: Keys) -> None:
    text = keys.server_secret.read_text()
    other = load_public_key(keys.other_server_public).decode()
    public = load_public_key(keys.server_public).decode()
    keys.server_secret.write_text(text.replace(public, other))
    with pytest.raises(SecurityError, match="does not belong"):
        load_secret_key(keys.server_secret)
    with pytest.raises(SecurityError):
        KeyPair(b"short")


def test_security_for_demands_curve_on_the_network(keys: Keys, server_config: CurveServer) -> None:
    assert isinstance(security_for("ipc:///tmp/tradebus.sock"), NoSecurity)
    assert isinstance(security_for("inproc://ingress"), NoSecurity)
    with pytest.raises(SecurityError, match="needs CURVE"):
        security_for("tcp://10.0.0.5:5555")
    with pytest.raises(SecurityError, match="needs CURVE"):
        security_for("ws://host:80", allow_plaintext_tcp=True)
    with pytest.raises(SecurityError, match="no transport"):
        security_for("127.0.0.1:5555")
    assert isinstance(security_for("tcp://127.0.0.1:5555", allow_plaintext_tcp=True), NoSecurity)
    assert security_for("tcp://10.0.0.5:5555", server_config) is server_config
    client = CurveClient.from_files(keys.client_secret[ALLOWED], keys.server_public)
    assert security_for("tcp://10.0.0.5:5555", client) is client


def test_configs_refuse_the_wrong_side(
    ctx: zmq.Context[zmq.Socket[bytes]], keys: Keys, server_config: CurveServer
) -> None:
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    with pytest.raises(SecurityError, match="use CurveClient"):
        server_config.apply_client(sock)
    with pytest.raises(SecurityError, match="use CurveServer"):
        CurveClient.from_files(keys.client_secret[ALLOWED], keys.server_public).apply_server(sock)
    sock.close(linger=0)
