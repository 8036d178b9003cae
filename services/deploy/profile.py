"""Deployment profiles: what one process group runs, where its files live, how it connects.

A profile is a TOML file (YAML is not supported: PyYAML is not a dependency of tradebus). Every
process of the group, and `tradebus up` / `down`, load the same file with `load_profile`, so they
agree on endpoints, paths and settings without passing anything else around.

Theory of operation:

- Strict. Every section forbids unknown fields, so a typo is an error, not a silently ignored
  setting. `load_profile` collects every problem and raises one `ProfileError` listing them all
  as `field.path: message (value)`, e.g. `feeds[0].data[1]: file not found: /x/y.csv ('y.csv')`.
- One path rule. A relative path anywhere in a profile (run_dir, data files, strategy files,
  keys_dir, `ipc://` endpoints) is relative to the directory holding the profile file, never to
  the current directory: the same profile means the same files whoever starts it, from wherever.
  `~` expands to the home directory. Loaded profiles hold absolute paths only.
- Checked before anything starts. Files that must exist (data, strategy modules, keys_dir) are
  checked at load time, so `tradebus up` refuses a broken profile before supervisord runs.
  Strategy modules are not imported here: that is the strategy host's job, in its own process.
- Two passes. Pydantic checks each section and reports all field errors at once; checks that
  span sections (unique names, tcp needs security, endpoints distinct, ...) run when every
  section is valid, and are also all reported together.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bus.endpoints import EndpointError, parse_endpoint
from bus.security import SecurityError, public_key_path
from services.data.times import format_interval, parse_interval
from services.deploy.paths import socket_path
from services.matching.config import DAY_NS, MatchingConfig
from services.sequencer.checkpoint import DEFAULT_KEEP_CHECKPOINTS
from services.sequencer.core.config import InstrumentSpec, RiskConfig
from services.sequencer.journal import DEFAULT_FSYNC_INTERVAL_MS, FsyncPolicy

__all__ = [
    "DEFAULT_CHECKPOINT_EVERY_EVENTS",
    "AccountSection",
    "CheckpointSection",
    "DataSpec",
    "EndpointsSection",
    "FeedProfile",
    "FileFeed",
    "GroupSection",
    "JournalSection",
    "Mode",
    "Profile",
    "ProfileError",
    "SecuritySection",
    "StrategyProfile",
    "StrategyRef",
    "SyntheticFeed",
    "VenueProfile",
    "load_profile",
    "read_run_dir",
]

Mode = Literal["backtest", "paper", "live"]

DEFAULT_CHECKPOINT_EVERY_EVENTS: Final = 5_000
"""Events between checkpoints: recovery replays at most this many journal records past the
newest good checkpoint (same default as `tradebus scenario --checkpoint-every`)."""

# Default endpoint socket names under run_dir.
_DEFAULT_SOCKETS: Final = {"ingress": "ingress.sock", "publication": "publication.sock", "sync": "sync.sock"}

_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # also a supervisor program name suffix
_INSTRUMENT_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"  # BTC-USD, BTC/USDT, BTC/USDT:USDT
_MAX_VALUE_REPR: Final = 80  # longer values are cut in error messages
_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.DOTALL)
_CROSS_CHECK: Final = "profile_inconsistent"
_TCP_NEEDS_SECURITY: Final = (
    "a tcp endpoint needs [security] keys_dir and server_key (CURVE), or security.allow_plaintext_tcp = true"
)


class ProfileError(ValueError):
    """A profile that cannot be used. The message lists every problem, one per line.

    Attributes:
        source: the profile file.
        problems: each problem as `field.path: message (value)`.
    """

    def __init__(self, source: str | os.PathLike[str], problems: Sequence[str]) -> None:
        assert problems
        self.source = str(source)
        self.problems = tuple(problems)
        count = f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}"
        super().__init__(f"profile {self.source}: {count}\n" + "\n".join(f"  {p}" for p in self.problems))


# --- value types ---------------------------------------------------------------------------------


def _wrong_type(message: str) -> PydanticCustomError:
    """A value of the wrong type. (Pydantic reports ValueError and its own errors, not TypeError.)"""
    return PydanticCustomError("wrong_type", message)


def _base_dir(info: ValidationInfo) -> Path:
    """The profile's directory (validation context), else the current one for profiles built in code."""
    context = info.context
    if isinstance(context, dict) and isinstance(context.get("base_dir"), Path):
        base: Path = context["base_dir"]
        return base
    return Path.cwd()


def _resolve(text: str, base_dir: Path) -> Path:
    if not text:
        raise ValueError("empty path")
    if "\x00" in text:
        raise ValueError("path contains a NUL byte")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return Path(os.path.normpath(path))


def _path(value: object, info: ValidationInfo) -> object:
    return _resolve(value, _base_dir(info)) if isinstance(value, str) else value


def _existing_dir(value: object, info: ValidationInfo) -> object:
    if not isinstance(value, str):
        return value
    path = _resolve(value, _base_dir(info))
    if not path.is_dir():
        raise ValueError(f"directory not found: {path}")
    return path


def _interval(value: object) -> object:
    if not isinstance(value, str):
        raise _wrong_type("expected an interval string like '1m', '15m', '1h'")
    return format_interval(parse_interval(value))


def _pace(value: object) -> object:
    if value == "max":
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < float("inf"):
        return float(value)
    raise ValueError("pace must be 'max' (as fast as the group takes it) or a positive multiple of real time (1.0)")


def _count(value: object) -> object:
    if value == "unlimited" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError("count must be a positive number of bars or 'unlimited'")


Name = Annotated[str, Field(min_length=1, max_length=64, pattern=_NAME_PATTERN)]
InstrumentName = Annotated[str, Field(min_length=1, max_length=64, pattern=_INSTRUMENT_PATTERN)]
ResolvedPath = Annotated[Path, BeforeValidator(_path)]
ExistingDir = Annotated[Path, BeforeValidator(_existing_dir)]
Interval = Annotated[str, BeforeValidator(_interval)]
Pace = Annotated[float | Literal["max"], BeforeValidator(_pace)]
Count = Annotated[int | Literal["unlimited"], BeforeValidator(_count)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- [group] -------------------------------------------------------------------------------------


class GroupSection(_Section):
    """`[group]`: the group's name, its run directory and how it runs."""

    name: Name
    run_dir: ResolvedPath = Field(description="journal, checkpoints, logs, supervisor socket and pid file")
    mode: Mode = Field(description="backtest: lockstep over files; paper: simulated venues; live: real venues")

    @model_validator(mode="after")
    def _run_dir_usable(self) -> GroupSection:
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ValueError(f"run_dir {self.run_dir} exists and is not a directory")
        return self


# --- [endpoints] / [security] --------------------------------------------------------------------


def _endpoint(value: object, info: ValidationInfo) -> object:
    """Checked by `bus.endpoints` as the sequencer and its peers will use it (connect rules: a
    concrete host and port, since every process connects to the same string); ipc paths resolved."""
    if not isinstance(value, str):
        raise _wrong_type("expected an endpoint string: ipc://PATH or tcp://HOST:PORT")
    scheme, sep, rest = value.partition("://")
    if sep and scheme not in ("ipc", "tcp"):
        raise ValueError(f"scheme {scheme!r} is not supported; use ipc://PATH or tcp://HOST:PORT")
    if scheme == "ipc" and sep and rest and not rest.startswith("@"):
        value = f"ipc://{_resolve(rest, _base_dir(info))}"
    try:
        endpoint = parse_endpoint(value)
    except EndpointError as exc:
        raise ValueError(exc.problem) from None
    return str(endpoint)


Endpoint = Annotated[str, BeforeValidator(_endpoint)]


class EndpointsSection(_Section):
    """`[endpoints]`: where the sequencer binds and everyone else connects.

    Each defaults to an `ipc://` socket in run_dir (or under /tmp if run_dir is too long for a
    socket path, see `services.deploy.paths`).
    """

    ingress: Endpoint = Field(description="events, intents, reports and commands in, to the sequencer")
    publication: Endpoint = Field(description="sequenced events out, to every subscriber")
    sync: Endpoint = Field(description="snapshots and missing ranges on request (resync)")

    def named(self) -> tuple[tuple[str, str], ...]:
        return (("ingress", self.ingress), ("publication", self.publication), ("sync", self.sync))


class SecuritySection(_Section):
    """`[security]`: CURVE keys for tcp endpoints.

    keys_dir and server_key come together. allow_plaintext_tcp lets tcp endpoints run without
    CURVE: anyone who reaches the port can then trade (RELIABILITY F1), so it is off by default.
    """

    keys_dir: ExistingDir | None = None
    server_key: Name | None = Field(default=None, description="name of the sequencer's key pair in keys_dir")
    allow_plaintext_tcp: bool = False

    @model_validator(mode="after")
    def _keys_together(self) -> SecuritySection:
        if (self.keys_dir is None) != (self.server_key is None):
            missing = "server_key" if self.server_key is None else "keys_dir"
            raise ValueError(f"keys_dir and server_key go together; {missing} is missing")
        if self.keys_dir is not None and self.server_key is not None:
            try:
                public = public_key_path(self.keys_dir, self.server_key)
            except SecurityError as exc:
                raise ValueError(f"server_key: {exc}") from None
            if not public.is_file():  # every host needs it; the secret half only the sequencer's
                raise ValueError(f"server_key: public key file not found: {public} (tradebus keys generate)")
        return self

    @property
    def curve(self) -> bool:
        return self.keys_dir is not None


# --- [journal] / [checkpoint] --------------------------------------------------------------------


class JournalSection(_Section):
    """`[journal]`: when appended records are made durable (see FsyncPolicy)."""

    fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    fsync_interval_ms: int = Field(default=DEFAULT_FSYNC_INTERVAL_MS, ge=1, le=60_000)

    @model_validator(mode="after")
    def _interval_used(self) -> JournalSection:
        if "fsync_interval_ms" in self.model_fields_set and self.fsync is not FsyncPolicy.INTERVAL:
            raise ValueError(f"fsync_interval_ms is only used with fsync = 'interval' (fsync is {self.fsync.value!r})")
        return self


class CheckpointSection(_Section):
    """`[checkpoint]`: how often the sequencer checkpoints, and how many checkpoints it keeps."""

    every_events: int = Field(default=DEFAULT_CHECKPOINT_EVERY_EVENTS, ge=1)
    keep: int = Field(default=DEFAULT_KEEP_CHECKPOINTS, ge=1, description="recovery falls back to older ones (S3)")


# --- [[feeds]] -----------------------------------------------------------------------------------


class DataSpec(_Section):
    """One data file of a file feed, written `[INSTRUMENT[@INTERVAL]=]PATH` as for `tradebus backtest --data`.

    The instrument defaults to the file name up to the first '_' or '.' (BTC-USD_1m.csv -> BTC-USD);
    @INTERVAL resamples this file.
    """

    instrument: InstrumentName
    interval: str | None = None
    path: Path
    text: str = Field(description="as written in the profile")


def _data_spec(value: object, info: ValidationInfo) -> object:
    if not isinstance(value, str):
        raise _wrong_type("expected a string '[INSTRUMENT[@INTERVAL]=]PATH'")
    name, sep, path_text = value.partition("=")
    if not sep:
        path_text = value
        name = Path(value).name.split("_", 1)[0].split(".", 1)[0]
    instrument, at, interval = name.partition("@")
    if not instrument:
        raise ValueError("no instrument name (write INSTRUMENT=PATH)")
    if not re.match(_INSTRUMENT_PATTERN, instrument):
        raise ValueError(f"instrument {instrument!r} is not a name (letters, digits, '_', '.', ':', '/', '-')")
    own_interval = format_interval(parse_interval(interval)) if at else None
    path = _resolve(path_text, _base_dir(info))
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return DataSpec(instrument=instrument, interval=own_interval, path=path, text=value)


class _FeedBase(_Section):
    name: Name
    pace: Pace = Field(default="max", description="'max' or a multiple of real time; lockstep backtests ignore it")


class FileFeed(_FeedBase):
    """`[[feeds]] kind = "file"`: bars from files (CSV, CSV.gz, Parquet)."""

    kind: Literal["file"]
    data: tuple[Annotated[DataSpec, BeforeValidator(_data_spec)], ...] = Field(min_length=1)
    resample: Interval | None = Field(default=None, description="resample every file of this feed")


class SyntheticFeed(_FeedBase):
    """`[[feeds]] kind = "synthetic"`: seeded random-walk bars (services.data.synthetic)."""

    kind: Literal["synthetic"]
    instrument: InstrumentName
    seed: int = Field(ge=0)
    interval: Interval = "1m"
    start_price: Decimal = Field(default=Decimal(30_000), gt=0, description="display units")
    count: Count = "unlimited"


FeedProfile = Annotated[FileFeed | SyntheticFeed, Field(discriminator="kind")]
_FEED_KINDS: Final = frozenset({"file", "synthetic"})


# --- [[venues]] ----------------------------------------------------------------------------------


def _latency_ms(value: Decimal) -> Decimal:
    ns = value * 1_000_000
    if ns != ns.to_integral_value() or ns > DAY_NS:
        raise ValueError("latency_ms must be a whole number of nanoseconds, at most one day")
    return value


def _matching(value: object) -> object:
    if isinstance(value, dict) and "latency_ns" in value:
        raise ValueError("latency_ns is not set here: set latency_ms on the venue")
    return value


class VenueProfile(_Section):
    """`[[venues]]`: a venue and its gateway. Only simulated ("paper") venues exist for now.

    `[venues.matching]` is a MatchingConfig (fees, slippage, fill rules), except its latency,
    which is set here in milliseconds.
    """

    name: Name
    kind: Literal["paper"]
    latency_ms: Annotated[Decimal, Field(ge=0), AfterValidator(_latency_ms)] = Decimal(0)
    matching: Annotated[MatchingConfig, BeforeValidator(_matching)] = MatchingConfig()

    def matching_config(self) -> MatchingConfig:
        """The venue's MatchingConfig with its latency."""
        return MatchingConfig.model_validate(
            {**self.matching.model_dump(), "latency_ns": int(self.latency_ms * 1_000_000)}
        )


# --- [[strategies]] ------------------------------------------------------------------------------


class StrategyRef(_Section):
    """A strategy class in a file: `path/to/file.py[:ClassName]`."""

    file: Path
    class_name: str | None = None

    @property
    def spec(self) -> str:
        """The form `services.strategy.loader.load_strategy_class` takes."""
        return f"{self.file}:{self.class_name}" if self.class_name else str(self.file)


def _strategy_ref(value: object, info: ValidationInfo) -> object:
    if not isinstance(value, str):
        raise _wrong_type("expected 'path/to/file.py[:ClassName]'")
    target, colon, class_name = value.rpartition(":")
    if not colon or not class_name.isidentifier():
        target, class_name = value, ""
    path = _resolve(target, _base_dir(info))
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return StrategyRef(file=path, class_name=class_name or None)


class StrategyProfile(_Section):
    """`[[strategies]]`: a strategy host. strategy_id defaults to name; params go to the strategy."""

    name: Name
    path: Annotated[StrategyRef, BeforeValidator(_strategy_ref)]
    strategy_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "strategy_id" not in data and isinstance(data.get("name"), str):
            return {**data, "strategy_id": data["name"]}
        return data


# --- [account] -----------------------------------------------------------------------------------


class AccountSection(_Section):
    """`[account]`: money and precision, as in BacktestConfig (same fields, same defaults)."""

    cash: Decimal = Field(default=Decimal(100_000), ge=0, description="starting cash, account currency")
    currency: str = Field(default="USD", min_length=1, max_length=16)
    currency_decimals: int = Field(default=6, ge=0, le=18)
    allow_short: bool = Field(default=False, description="margin account: sells beyond the position are allowed")
    price_decimals: int = Field(default=2, ge=0, le=12, description="for instruments not in [instruments]")
    size_decimals: int = Field(default=4, ge=0, le=12, description="for instruments not in [instruments]")


# --- the profile ---------------------------------------------------------------------------------

_Named = TypeVar("_Named", FileFeed | SyntheticFeed, VenueProfile, StrategyProfile)


class Profile(_Section):
    """A deployment profile: one process group (one sequencer, its feeds, gateways and strategies).

    Sections: [group], [endpoints], [security], [journal], [checkpoint], [[feeds]], [[venues]],
    [[strategies]], [account], [risk] (a RiskConfig), [instruments.NAME] (InstrumentSpecs).

    Relative paths resolve against the directory of the profile file (the `base_dir` of the
    validation context; the current directory for a profile built in code). See the module doc.
    """

    group: GroupSection
    endpoints: EndpointsSection
    security: SecuritySection = SecuritySection()
    journal: JournalSection = JournalSection()
    checkpoint: CheckpointSection = CheckpointSection()
    feeds: tuple[FeedProfile, ...] = Field(min_length=1)
    venues: tuple[VenueProfile, ...] = Field(min_length=1)
    strategies: tuple[StrategyProfile, ...] = ()
    account: AccountSection = AccountSection()
    risk: RiskConfig = RiskConfig()
    instruments: dict[str, InstrumentSpec] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_endpoints(cls, data: Any, info: ValidationInfo) -> Any:
        """Fill endpoints not given with ipc sockets in run_dir (which needs run_dir resolved first)."""
        if not isinstance(data, dict):
            return data
        endpoints = data.get("endpoints", {})
        if not isinstance(endpoints, dict):
            return data
        base_dir = _base_dir(info)
        group = data.get("group")
        run_dir_text = group.get("run_dir") if isinstance(group, dict) else None
        try:
            run_dir = _resolve(run_dir_text, base_dir) if isinstance(run_dir_text, str) else base_dir
        except ValueError:
            run_dir = base_dir  # [group] reports it; these defaults are never used
        filled = dict(endpoints)
        for field, name in _DEFAULT_SOCKETS.items():
            filled.setdefault(field, f"ipc://{socket_path(run_dir, name).path}")
        return {**data, "endpoints": filled}

    @model_validator(mode="after")
    def _cross_checks(self) -> Profile:
        problems: list[tuple[str, str, object]] = []
        seen: dict[str, str] = {}
        for field, endpoint in self.endpoints.named():
            if endpoint in seen:
                problems.append((f"endpoints.{field}", f"same endpoint as endpoints.{seen[endpoint]}", endpoint))
            seen.setdefault(endpoint, field)
            if endpoint.startswith("tcp://") and not self.security.curve and not self.security.allow_plaintext_tcp:
                problems.append((f"endpoints.{field}", _TCP_NEEDS_SECURITY, endpoint))
        for section, items in (("feeds", self.feeds), ("venues", self.venues), ("strategies", self.strategies)):
            problems += _duplicates(section, "name", [item.name for item in items])
        problems += _duplicates("strategies", "strategy_id", [s.strategy_id for s in self.strategies])
        for i, feed in enumerate(self.feeds):
            if self.group.mode == "backtest" and isinstance(feed, SyntheticFeed) and feed.count == "unlimited":
                problems.append((f"feeds[{i}].count", "a backtest needs a finite count", feed.count))
        venue_names = {venue.name for venue in self.venues}
        for name, spec in self.instruments.items():
            if spec.venue not in venue_names:
                problems.append((f"instruments.{name}.venue", "not the name of any [[venues]] entry", spec.venue))
        if problems:
            raise PydanticCustomError(
                _CROSS_CHECK,
                "{summary}",
                {"summary": "; ".join(_problem(*p) for p in problems), "problems": tuple(problems)},
            )
        return self

    def feed(self, name: str) -> FileFeed | SyntheticFeed:
        return _by_name(self.feeds, name, "feed")

    def venue(self, name: str) -> VenueProfile:
        return _by_name(self.venues, name, "venue")

    def strategy(self, name: str) -> StrategyProfile:
        return _by_name(self.strategies, name, "strategy")


def _by_name(items: tuple[_Named, ...], name: str, what: str) -> _Named:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {what} named {name!r}")


def _duplicates(section: str, field: str, values: list[str]) -> list[tuple[str, str, object]]:
    first: dict[str, int] = {}
    out: list[tuple[str, str, object]] = []
    for i, value in enumerate(values):
        if value in first:
            out.append((f"{section}[{i}].{field}", f"duplicate of {section}[{first[value]}].{field}", value))
        first.setdefault(value, i)
    return out


# --- loading and error messages ------------------------------------------------------------------


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read and check a TOML profile.

    Raises:
        ProfileError: the file cannot be read or parsed, or any value is wrong; the message lists
            every problem found.
    """
    source = Path(path)
    data = _read_toml(source)
    try:
        return Profile.model_validate(data, context={"base_dir": _profile_dir(source)})
    except ValidationError as exc:
        raise ProfileError(source, _problems(exc)) from None


def read_run_dir(path: str | os.PathLike[str]) -> Path:
    """The run directory of a profile, checking only its [group] section.

    For `tradebus down`: stopping a group must not depend on its data files still existing.

    Raises:
        ProfileError: the file cannot be read or parsed, or [group] is wrong.
    """
    source = Path(path)
    data = _read_toml(source)
    try:
        group = GroupSection.model_validate(data.get("group"), context={"base_dir": _profile_dir(source)})
    except ValidationError as exc:
        raise ProfileError(source, _problems(exc, prefix=("group",))) from None
    return group.run_dir


def _profile_dir(source: Path) -> Path:
    return Path(os.path.normpath(source.absolute().parent))


def _read_toml(source: Path) -> dict[str, Any]:
    if source.suffix.lower() in (".yaml", ".yml"):
        raise ProfileError(source, ["YAML profiles are not supported (PyYAML is not installed); write it in TOML"])
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(source, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(source, [f"cannot read: {exc}"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.match(str(exc))
        if match is None:
            raise ProfileError(source, [f"TOML syntax error: {exc}"]) from None
        where = f"{source}:{match['line']}:{match['col']}"
        message = f"TOML syntax error at line {match['line']}, column {match['col']} ({where}): {match['msg']}"
        raise ProfileError(source, [message]) from None


def _problems(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[str]:
    out: list[str] = []
    for err in exc.errors():
        if err["type"] == _CROSS_CHECK:
            out += [_problem(*p) for p in err["ctx"]["problems"]]
            continue
        loc = prefix + tuple(err["loc"])
        ctx = err.get("ctx", {})
        if err["type"] == "too_short" and isinstance(err["input"], list | tuple):
            if len(err["input"]) >= ctx["min_length"]:
                continue  # enough entries were given; the errors of the bad ones are reported
            out.append(_problem(_loc(loc), f"at least {ctx['min_length']} entry required", None))
            continue
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += (ctx.get("discriminator", "'kind'").strip("'"),)
            expected = ", ".join(repr(kind) for kind in sorted(_FEED_KINDS))
            if err["type"] == "union_tag_not_found":
                out.append(_problem(_loc(loc), f"field required (one of {expected})", None))
            else:
                out.append(_problem(_loc(loc), f"must be one of {expected}", ctx.get("tag")))
            continue
        if err["type"] == "value_error" and "error" in ctx:
            message = str(ctx["error"])
        else:
            message = err["msg"][:1].lower() + err["msg"][1:]
        value = None if err["type"] == "missing" else err.get("input")
        out.append(_problem(_loc(loc), message, value))
    return out


def _loc(loc: tuple[str | int, ...]) -> str:
    """('feeds', 0, 'file', 'data', 1) -> 'feeds[0].data[1]' (the union tag is not a field)."""
    text = ""
    previous: str | int | None = None
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(previous, int) and part in _FEED_KINDS:
            pass  # the discriminated-union tag pydantic inserts after feeds[i]
        else:
            text += f".{part}" if text else part
        previous = part
    return text or "(profile)"


def _problem(where: str, message: str, value: object) -> str:
    """`where: message (value)`, the value only when it is a plain scalar."""
    if isinstance(value, str | int | float | Decimal):
        shown = repr(value)
        if len(shown) > _MAX_VALUE_REPR:
            shown = shown[: _MAX_VALUE_REPR - 3] + "..."
        return f"{where}: {message} ({shown})"
    return f"{where}: {message}"
