"""CURVE encryption and authentication for the bus, key files, and the plaintext rule.

Theory of operation
-------------------
A CURVE server socket encrypts, but it does not decide who may connect: libzmq asks the ZAP
handler of the socket's *context* (an inproc REP socket at ``inproc://zeromq.zap.01``). When no
handler is running, libzmq lets any CURVE client in (RELIABILITY F2). So:

1. `ZapAuthenticator` runs pyzmq's ZAP handler thread for one context, serving the domains of the
   `CurveServer` configs it was given. It answers 200 only for the CURVE mechanism, a known
   domain and a client public key on that domain's `AllowList`; everything else (NULL, PLAIN,
   unknown keys, other domains) gets 400 (F1). On success the ZAP reply's User-Id is the key's
   *name* (the file stem of ``<name>.key``), so every message from that peer carries it:
   ``frame.get("User-Id")`` on a frame received with ``copy=False`` (see `peer_identity`).
2. `CurveServer.apply_server(socket)` refuses (`SecurityError`) unless such a handler is running
   in the socket's own context and serves the server's domain with the same allow-list. It also
   sets ``ZAP_ENFORCE_DOMAIN`` so libzmq itself fails closed should the handler stop later.
3. `CurveClient.apply_client(socket)` pins the server's public key: a server without the matching
   secret key cannot finish the handshake, and CURVE never falls back to plaintext (F3).
4. `security_for(endpoint, ...)` is the one rule for choosing: ``ipc://`` and ``inproc://`` may run
   plain (`NoSecurity`: the file system and the process are the boundary); any network transport
   demands CURVE unless the caller says ``allow_plaintext_tcp=True`` (local benchmarks only).

Key files use pyzmq's certificate format (``zmq.auth.load_certificate`` reads them):
``<name>.key`` holds the public key, ``<name>.key_secret`` both keys. A secret file is created
with mode 0600 from the start (never chmod-ed after the fact) and refused on load when group or
others have any access to it (F5).

Everything here reads files and touches sockets: it belongs at a service's edge, never in the core.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol, Self

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

__all__ = [
    "DEFAULT_ZAP_DOMAIN",
    "PUBLIC_KEY_SUFFIX",
    "SECRET_KEY_SUFFIX",
    "AllowList",
    "CurveClient",
    "CurveServer",
    "KeyPair",
    "NoSecurity",
    "SecurityError",
    "SocketSecurity",
    "ZapAuthenticator",
    "check_key_name",
    "load_public_key",
    "load_secret_key",
    "peer_identity",
    "public_key_path",
    "running_authenticator",
    "secret_key_path",
    "security_for",
    "write_keypair",
]

# The ZAP domain our server sockets use. libzmq passes it to the handler with each request; a
# handler that does not know the domain refuses, so two services in one context can keep two
# allow-lists apart by using two domains.
DEFAULT_ZAP_DOMAIN: Final = "tradebus"

PUBLIC_KEY_SUFFIX: Final = ".key"
SECRET_KEY_SUFFIX: Final = ".key_secret"

# A key name is a peer's identity: it is the ZAP User-Id, an authorization key and a file stem.
# Same bound as every other id on the wire (schemas.types.MAX_ID_CHARS); no path separators, and
# a leading letter or digit so "." and ".." and hidden files cannot be names.
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# Z85 text of a 32-byte CURVE key.
_Z85_KEY_CHARS: Final = 40
_CURVE_KEY_BYTES: Final = 32

# Permission bits that must be clear on a secret key file: any access for group or others (F5).
_SECRET_FORBIDDEN_BITS: Final = stat.S_IRWXG | stat.S_IRWXO
_SECRET_FILE_MODE: Final = 0o600
_KEY_DIR_MODE: Final = 0o700
_PUBLIC_FILE_MODE: Final = 0o644

# Local transports: the socket is reachable only through the file system (ipc) or from inside the
# process (inproc), so it may run without CURVE. Every other transport crosses a network.
_LOCAL_TRANSPORTS: Final = frozenset({"ipc", "inproc"})

# ZMQ_ZAP_ENFORCE_DOMAIN: with it set, libzmq refuses a CURVE handshake when no ZAP handler
# answers, instead of letting everyone in. A draft option in libzmq 4.3 (pyzmq's bundled build
# accepts it); where it is missing, the running-handler check in `apply_server` still holds.
_ZAP_ENFORCE_DOMAIN: Final = int(getattr(zmq, "ZAP_ENFORCE_DOMAIN", 93))

# How long `ZapAuthenticator.stop` waits for the handler thread. It answers TERMINATE within one
# poll round (microseconds); seconds mean it is stuck, and the caller hears so rather than hanging.
_ZAP_STOP_TIMEOUT_S: Final = 5.0

_BANNER: Final = """#   ****  Generated on {now} by tradebus keys  ****
#   ZeroMQ CURVE {kind} Certificate for peer {name!r}
{warning}
"""
_SECRET_WARNING: Final = "#   SECRET: keep mode 0600 and never copy it off this host; tradebus refuses it otherwise.\n"
_PUBLIC_WARNING: Final = "#   Public: copy it into the allow-list directory of the servers this peer connects to.\n"


class SecurityError(Exception):
    """A security setting or key file is unsafe or wrong; the service must not start with it."""


class SocketSecurity(Protocol):
    """What the socket factories in `bus.sockets` call: before bind and before connect."""

    def apply_server(self, socket: zmq.Socket[bytes]) -> None: ...

    def apply_client(self, socket: zmq.Socket[bytes]) -> None: ...


# ---------------------------------------------------------------------------------------------
# Keys and key files


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE key pair as Z85 text (40 bytes each). `secret` is None for a public-only key.

    The secret is left out of repr so it cannot leak into logs or test output.
    """

    public: bytes
    secret: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_z85_key(self.public, "public key")
        if self.secret is not None:
            _check_z85_key(self.secret, "secret key")
            if zmq.curve_public(self.secret) != self.public:
                raise SecurityError("secret key does not belong to the public key stored with it")

    def require_secret(self, origin: str) -> bytes:
        """The secret key, or SecurityError naming `origin` when this is a public-only key."""
        if self.secret is None:
            raise SecurityError(f"{origin}: no secret key in this file (is it a public {PUBLIC_KEY_SUFFIX} file?)")
        return self.secret


def check_key_name(name: str) -> str:
    """Return `name` if it can be a peer identity and key file stem.

    Raises:
        SecurityError: empty, longer than 64 characters, a path, or characters outside
            ``[A-Za-z0-9_.-]`` (the first one a letter or digit).
    """
    if not _NAME_RE.fullmatch(name):
        raise SecurityError(
            f"invalid key name {name!r}: use 1 to 64 characters from A-Z a-z 0-9 _ . -, "
            "starting with a letter or digit"
        )
    return name


def public_key_path(directory: str | os.PathLike[str], name: str) -> Path:
    return Path(directory) / f"{check_key_name(name)}{PUBLIC_KEY_SUFFIX}"


def secret_key_path(directory: str | os.PathLike[str], name: str) -> Path:
    return Path(directory) / f"{check_key_name(name)}{SECRET_KEY_SUFFIX}"


def write_keypair(directory: str | os.PathLike[str], name: str, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Create a new key pair for peer `name`: ``name.key`` (public) and ``name.key_secret``.

    The directory is created with mode 0700 if missing. The secret file is created with mode
    0600 (a temporary file opened with that mode, then renamed into place), so it is never
    readable by others, not even for a moment. The public file gets 0644.

    Args:
        directory: where the two files go.
        name: the peer's identity (see `check_key_name`).
        overwrite: replace an existing pair. Without it an existing secret or public file is an
            error: a new secret key silently locks the old one's owner out of every server.

    Returns:
        (public file, secret file).

    Raises:
        SecurityError: bad name, or the files exist and `overwrite` is false.
        OSError: the directory or files cannot be written.
    """
    directory = Path(directory)
    public_path = public_key_path(directory, name)
    secret_path = secret_key_path(directory, name)
    if not overwrite:
        existing = [str(p) for p in (secret_path, public_path) if p.exists()]
        if existing:
            raise SecurityError(f"refusing to overwrite existing key file(s) {', '.join(existing)}")
    directory.mkdir(mode=_KEY_DIR_MODE, parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    pair = KeyPair(public, secret)  # checks the pair before anything is written
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    _atomic_write(
        secret_path,
        _BANNER.format(now=now, kind="**Secret**", name=name, warning=_SECRET_WARNING)
        + _curve_section(pair.public, secret),
        _SECRET_FILE_MODE,
    )
    _atomic_write(
        public_path,
        _BANNER.format(now=now, kind="Public", name=name, warning=_PUBLIC_WARNING) + _curve_section(pair.public, None),
        _PUBLIC_FILE_MODE,
    )
    # Paired check (STYLE 8): what we wrote reads back as the same pair, under the F5 rule.
    assert load_secret_key(secret_path) == pair, f"key pair read back from {secret_path} differs"
    assert load_public_key(public_path) == pair.public, f"public key read back from {public_path} differs"
    return public_path, secret_path


def load_secret_key(path: str | os.PathLike[str]) -> KeyPair:
    """Read a ``.key_secret`` file after checking that nobody but its owner can access it (F5).

    The mode is checked on the open file descriptor, so the file checked is the file read (a
    symlink is followed, e.g. a mounted secret, and its target's mode is what counts).

    Raises:
        SecurityError: group or others have any permission on the file (message names the file
            and its mode), it is not a regular file, or it holds no valid key pair.
        OSError: the file cannot be opened.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SecurityError(f"secret key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & _SECRET_FORBIDDEN_BITS:
            raise SecurityError(
                f"secret key file {path} has mode {mode:04o}: group or others can access it; "
                f"run `chmod 600 {path}` (and consider the key leaked if others could read it)"
            )
        text = f.read()
    public, secret = _parse_key_file(text, path)
    if secret is None:
        raise SecurityError(f"secret key file {path} holds no secret-key")
    return _key_pair(public, secret, path)


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    """The Z85 public key of a ``.key`` file (or of a ``.key_secret`` file's public half).

    Raises:
        SecurityError: no valid public key in the file.
        OSError: the file cannot be read.
    """
    path = Path(path)
    public, _ = _parse_key_file(path.read_bytes(), path)
    return _key_pair(public, None, path).public


def _key_pair(public: bytes, secret: bytes | None, path: Path) -> KeyPair:
    try:
        return KeyPair(public, secret)
    except SecurityError as exc:
        raise SecurityError(f"key file {path}: {exc}") from None


def _parse_key_file(text: bytes, path: Path) -> tuple[bytes, bytes | None]:
    """(public, secret or None) from pyzmq's certificate text format."""
    public: bytes | None = None
    secret: bytes | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(b"#") or b"=" not in line:
            continue
        key, value = (part.strip() for part in line.split(b"=", 1))
        value = value.strip(b"'\"")
        if key == b"public-key":
            public = value
        elif key == b"secret-key":
            secret = value
    if public is None:
        raise SecurityError(f"key file {path} holds no public-key")
    return public, secret


def _check_z85_key(key: bytes, what: str) -> None:
    if len(key) != _Z85_KEY_CHARS:
        raise SecurityError(f"{what} must be {_Z85_KEY_CHARS} Z85 characters, got {len(key)}")
    try:
        decoded = z85.decode(key)
    except (ValueError, KeyError, IndexError, TypeError):
        raise SecurityError(f"{what} is not valid Z85 text") from None
    if len(decoded) != _CURVE_KEY_BYTES:
        raise SecurityError(f"{what} decodes to {len(decoded)} bytes, not {_CURVE_KEY_BYTES}")


def _curve_section(public: bytes, secret: bytes | None) -> str:
    lines = ["metadata", "curve", f'    public-key = "{public.decode("ascii")}"']
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode("ascii")}"')
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str, mode: int) -> None:
    """Write `text` to `path` through a temporary file created with `mode`, fsync, rename."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        os.fchmod(fd, mode)  # the umask may have removed bits from `mode`, never added any
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# ---------------------------------------------------------------------------------------------
# Allow-list


@dataclass(frozen=True, slots=True)
class AllowList:
    """The client public keys a server accepts, each under the peer name it authenticates as.

    `entries` is sorted by name; a name and a key each appear once (one key under two names would
    make the identity ambiguous).
    """

    entries: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        names = [name for name, _ in self.entries]
        if names != sorted(names):
            raise SecurityError("allow-list entries must be sorted by name")
        seen_names: set[str] = set()
        by_key: dict[bytes, str] = {}
        for name, key in self.entries:
            check_key_name(name)
            _check_z85_key(key, f"public key of {name!r}")
            if name in seen_names:
                raise SecurityError(f"allow-list names {name!r} twice")
            if key in by_key:
                raise SecurityError(f"allow-list has one public key under two names: {by_key[key]!r} and {name!r}")
            seen_names.add(name)
            by_key[key] = name

    @classmethod
    def from_keys(cls, keys: Mapping[str, bytes]) -> AllowList:
        """From a name -> Z85 public key mapping."""
        return cls(tuple(sorted(keys.items())))

    @classmethod
    def from_paths(cls, source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> AllowList:
        """From a directory of ``<name>.key`` files, or a list of such files.

        Only files ending in ``.key`` are read from a directory (secret ``.key_secret`` files are
        not public keys and are skipped). A public key file that also holds a secret key is
        refused: allow-list directories get copied around.

        Raises:
            SecurityError: no keys, a bad name or key, a file holding a secret, a duplicate.
            OSError: a path cannot be read.
        """
        if isinstance(source, (str, os.PathLike)):
            directory = Path(source)
            if not directory.is_dir():
                raise SecurityError(f"allow-list directory {directory} does not exist or is not a directory")
            files = sorted(p for p in directory.iterdir() if p.name.endswith(PUBLIC_KEY_SUFFIX) and p.is_file())
            where = f"directory {directory}"
        else:
            files = [Path(p) for p in source]
            where = "file list"
        keys: dict[str, bytes] = {}
        for path in files:
            if not path.name.endswith(PUBLIC_KEY_SUFFIX):
                raise SecurityError(f"allow-list file {path} must be named <peer name>{PUBLIC_KEY_SUFFIX}")
            name = check_key_name(path.name[: -len(PUBLIC_KEY_SUFFIX)])
            public, secret = _parse_key_file(path.read_bytes(), path)
            if secret is not None:
                raise SecurityError(f"allow-list file {path} holds a secret key: copy only the public {PUBLIC_KEY_SUFFIX} file")
            if name in keys:
                raise SecurityError(f"allow-list names {name!r} twice ({path})")
            keys[name] = _key_pair(public, None, path).public
        if not keys:
            raise SecurityError(f"allow-list {where} holds no {PUBLIC_KEY_SUFFIX} files: nobody could connect")
        return cls.from_keys(keys)

    def name_of(self, public_key: bytes) -> str | None:
        """The peer name of a Z85 public key, or None when the key is not allowed."""
        for name, key in self.entries:
            if key == public_key:
                return name
        return None

    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.entries)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


# ---------------------------------------------------------------------------------------------
# ZAP handler


class _NamedCurveAuthenticator(ThreadAuthenticator):
    """pyzmq's threaded ZAP handler with our rules: CURVE only, known domains, User-Id = name."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], allow_lists: Mapping[str, AllowList]) -> None:
        super().__init__(context=context)
        names: dict[bytes, str] = {}
        for allow in allow_lists.values():
            for name, key in allow:
                names[key] = name
        self._names = names  # the same key always has the same name (checked by ZapAuthenticator)
        for domain, allow in allow_lists.items():
            self.configure_curve_callback(domain, _AllowListProvider(allow))

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        # ZAP request frames: version, request id, domain, address, routing id, mechanism, creds.
        # Refuse every mechanism but CURVE here: pyzmq's handler would accept NULL by default.
        if len(msg) >= 6 and msg[5] != b"CURVE":
            self.log.debug("DENIED mechanism %r", msg[5])
            self._send_zap_reply(msg[1], b"400", b"CURVE required")
            return
        try:
            await super().handle_zap_message(msg)
        except Exception:
            # An exception would end the handler thread, and with it every later handshake.
            # Deny this one (500) and keep serving; the REP socket still owes this request a reply.
            self.log.exception("ZAP request failed; denied")
            if len(msg) >= 2:
                try:
                    self._send_zap_reply(msg[1], b"500", b"Internal error")
                except zmq.ZMQError:
                    self.log.exception("could not send the ZAP denial")

    def curve_user_id(self, client_public_key: bytes) -> str:
        # Called after the key passed the allow-list. A key without a name is a bug here: the
        # KeyError is caught above and the handshake denied, never let in as "anonymous".
        return self._names[z85.encode(client_public_key)]

    def stop(self) -> None:
        """Stop the thread without blocking forever, even if it has already died.

        pyzmq's `stop` sends TERMINATE with a blocking send on a PAIR socket: if the thread is
        gone, nobody is connected and that send never returns.
        """
        thread = self.thread
        if self.pipe is not None:
            if thread is not None and thread.is_alive():
                try:
                    self.pipe.send(b"TERMINATE", zmq.NOBLOCK)
                except zmq.Again:
                    pass  # the thread is closing its end right now
                thread.join(timeout=_ZAP_STOP_TIMEOUT_S)
                if thread.is_alive():
                    raise RuntimeError(f"ZAP handler thread did not stop within {_ZAP_STOP_TIMEOUT_S} s")
            self.thread = None  # type: ignore[assignment]
            self.pipe.close()
            self.pipe = None  # type: ignore[assignment]
        if self.zap_socket is not None:
            self.zap_socket.close()
        self.zap_socket = None  # type: ignore[assignment]


class _AllowListProvider:
    """pyzmq's `credentials_provider` protocol: callback(domain, z85 key) -> allowed."""

    def __init__(self, allow: AllowList) -> None:
        self._allow = allow

    def callback(self, domain: str, key: bytes) -> bool:
        return self._allow.name_of(key) is not None


# Running handlers by libzmq context address: one ZAP endpoint per context, so at most one each.
# Keyed by the underlying context so a shadow `zmq.Context` of the same context finds it too.
_RUNNING: dict[int, ZapAuthenticator] = {}
_RUNNING_LOCK = threading.Lock()


def running_authenticator(context: zmq.Context[zmq.Socket[bytes]]) -> ZapAuthenticator | None:
    """The `ZapAuthenticator` running in `context`, or None."""
    with _RUNNING_LOCK:
        handler = _RUNNING.get(context.underlying)
    return handler if handler is not None and handler.is_running else None


class ZapAuthenticator:
    """The ZAP handler of one ZeroMQ context, serving the domains of some `CurveServer` configs.

    Start it before any CURVE server socket of that context binds, stop it after they close and
    before the context terminates (its thread holds two sockets of the context)::

        with ZapAuthenticator(ctx, ingress_security):
            sock = ctx.socket(zmq.ROUTER)
            ingress_security.apply_server(sock)
            sock.bind(endpoint)
            ...

    Args:
        context: the context whose sockets it authenticates.
        servers: the server configs to serve; each brings its domain and allow-list.

    Raises:
        SecurityError: no servers; one domain with two different allow-lists; one key under two
            different names across domains.
    """

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], *servers: CurveServer) -> None:
        if not servers:
            raise SecurityError("a ZAP handler needs at least one CurveServer config to serve")
        allow_lists: dict[str, AllowList] = {}
        names: dict[bytes, str] = {}
        for server in servers:
            known = allow_lists.setdefault(server.domain, server.allow_list)
            if known != server.allow_list:
                raise SecurityError(f"ZAP domain {server.domain!r} configured with two different allow-lists")
            for name, key in server.allow_list:
                if names.setdefault(key, name) != name:
                    raise SecurityError(f"one public key is named both {names[key]!r} and {name!r}")
        self.context = context
        self.allow_lists: Mapping[str, AllowList] = dict(sorted(allow_lists.items()))
        self._auth: _NamedCurveAuthenticator | None = None

    @property
    def is_running(self) -> bool:
        return self._auth is not None and self._auth.is_alive()

    def serves(self, server: CurveServer) -> bool:
        """True when this handler answers for `server`'s domain with `server`'s allow-list."""
        return self.allow_lists.get(server.domain) == server.allow_list

    def start(self) -> None:
        """Start the handler thread and register it for its context.

        Raises:
            SecurityError: already started, or another handler runs in this context.
        """
        if self._auth is not None:
            raise SecurityError("ZAP handler already started")
        with _RUNNING_LOCK:
            other = _RUNNING.get(self.context.underlying)
            if other is not None and other.is_running:
                raise SecurityError("another ZAP handler is already running in this ZeroMQ context")
            auth = _NamedCurveAuthenticator(self.context, self.allow_lists)
            try:
                auth.start()
            except zmq.ZMQError as exc:
                auth.stop()
                raise SecurityError(
                    f"cannot start the ZAP handler: {exc} (is another, non-tradebus ZAP handler bound in this context?)"
                ) from exc
            self._auth = auth
            _RUNNING[self.context.underlying] = self

    def stop(self) -> None:
        """Stop the handler thread (idempotent). CURVE handshakes in its context then fail."""
        with _RUNNING_LOCK:
            if _RUNNING.get(self.context.underlying) is self:
                del _RUNNING[self.context.underlying]
        auth, self._auth = self._auth, None
        if auth is not None:
            auth.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Socket configs


@dataclass(frozen=True, slots=True)
class CurveServer:
    """CURVE settings of a server (binding) socket: its key pair, the clients it accepts, a domain.

    Build it at start-up (`from_files` loads and checks the keys then, F5), start a
    `ZapAuthenticator` for it, then `apply_server` each socket before `bind`.
    """

    keys: KeyPair
    allow_list: AllowList
    domain: str = DEFAULT_ZAP_DOMAIN

    def __post_init__(self) -> None:
        self.keys.require_secret("CurveServer")
        if not self.domain:
            raise SecurityError("a CURVE server needs a non-empty ZAP domain (libzmq skips ZAP without one)")

    @classmethod
    def from_files(
        cls,
        secret_key_file: str | os.PathLike[str],
        allowed: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        domain: str = DEFAULT_ZAP_DOMAIN,
    ) -> CurveServer:
        """Load the server's ``.key_secret`` file and the allow-list (a directory or file list)."""
        return cls(load_secret_key(secret_key_file), AllowList.from_paths(allowed), domain)

    def apply_server(self, socket: zmq.Socket[bytes]) -> None:
        """Make `socket` a CURVE server; call before `bind`.

        Raises:
            SecurityError: no `ZapAuthenticator` is running in the socket's context, or the one
                running does not serve this domain with this allow-list (F2).
        """
        handler = running_authenticator(socket.context)
        if handler is None:
            raise SecurityError(
                f"refusing to configure a CURVE server socket for ZAP domain {self.domain!r}: no ZAP handler "
                "is running in its ZeroMQ context (without one, libzmq accepts any CURVE client); "
                "start a ZapAuthenticator for this config in the socket's context first"
            )
        if not handler.serves(self):
            raise SecurityError(
                f"refusing to configure a CURVE server socket: the ZAP handler in its context does not serve "
                f"domain {self.domain!r} with this allow-list (it serves {sorted(handler.allow_lists)})"
            )
        socket.curve_secretkey = self.keys.require_secret("CurveServer")
        socket.curve_publickey = self.keys.public
        socket.curve_server = True
        socket.zap_domain = self.domain.encode("ascii")
        try:
            socket.setsockopt(_ZAP_ENFORCE_DOMAIN, 1)
        except zmq.ZMQError:
            pass  # libzmq without the draft option: the handler check above is the guard

    def apply_client(self, socket: zmq.Socket[bytes]) -> None:
        raise SecurityError("a CurveServer config cannot configure a connecting socket; use CurveClient")


@dataclass(frozen=True, slots=True)
class CurveClient:
    """CURVE settings of a client (connecting) socket: its own key pair and the server's key."""

    keys: KeyPair
    server_public_key: bytes

    def __post_init__(self) -> None:
        self.keys.require_secret("CurveClient")
        _check_z85_key(self.server_public_key, "server public key")

    @classmethod
    def from_files(
        cls, secret_key_file: str | os.PathLike[str], server_public_key_file: str | os.PathLike[str]
    ) -> CurveClient:
        """Load this peer's ``.key_secret`` file (F5 checked) and the server's ``.key`` file."""
        return cls(load_secret_key(secret_key_file), load_public_key(server_public_key_file))

    def apply_client(self, socket: zmq.Socket[bytes]) -> None:
        """Make `socket` a CURVE client of the pinned server key; call before `connect`."""
        socket.curve_secretkey = self.keys.require_secret("CurveClient")
        socket.curve_publickey = self.keys.public
        socket.curve_serverkey = self.server_public_key

    def apply_server(self, socket: zmq.Socket[bytes]) -> None:
        raise SecurityError("a CurveClient config cannot configure a binding socket; use CurveServer")


@dataclass(frozen=True, slots=True)
class NoSecurity:
    """No mechanism (ZeroMQ NULL): for ipc:// and inproc:// endpoints, or explicit plaintext tcp."""

    def apply_server(self, socket: zmq.Socket[bytes]) -> None:
        return None

    def apply_client(self, socket: zmq.Socket[bytes]) -> None:
        return None


def security_for(
    endpoint: str,
    curve: CurveServer | CurveClient | None = None,
    *,
    allow_plaintext_tcp: bool = False,
) -> SocketSecurity:
    """The security to apply to a socket bound or connected at `endpoint`.

    - `curve` given: it is used, whatever the transport (CURVE over ipc works too).
    - ``ipc://`` or ``inproc://`` without `curve`: `NoSecurity`.
    - ``tcp://`` without `curve`: refused unless `allow_plaintext_tcp` (local benchmarks only:
      anyone who can reach the port can then send anything).
    - any other transport without `curve`: refused.

    Raises:
        SecurityError: a network endpoint with no CURVE config, or an endpoint with no transport.
    """
    transport, sep, _ = endpoint.partition("://")
    if not sep or not transport:
        raise SecurityError(f"endpoint {endpoint!r} has no transport (expected e.g. tcp://host:port or ipc:///path)")
    if curve is not None:
        return curve
    if transport in _LOCAL_TRANSPORTS:
        return NoSecurity()
    if transport == "tcp" and allow_plaintext_tcp:
        return NoSecurity()
    raise SecurityError(
        f"endpoint {endpoint!r} crosses a network and needs CURVE keys (server secret key and allow-list, "
        "or client keys and the server's public key); plaintext tcp only with allow_plaintext_tcp=True"
    )


def peer_identity(frame: zmq.Frame) -> str | None:
    """The authenticated peer name a message part carries (ZAP User-Id), or None without one.

    The frame must come from ``recv(copy=False)`` / ``recv_multipart(copy=False)``: copied bytes
    lose their metadata. A NULL-mechanism socket (ipc) has no User-Id.
    """
    try:
        user_id = frame.get("User-Id")
    except zmq.ZMQError:
        return None
    if isinstance(user_id, bytes):
        user_id = user_id.decode("utf-8", "replace")
    return user_id if isinstance(user_id, str) and user_id else None
