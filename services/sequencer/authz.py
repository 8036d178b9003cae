"""Ingress authorization: may this authenticated peer send this envelope? (RELIABILITY F4)

Pure: no I/O, no clock. The sequencer service calls `IngressPolicy.check` for every decoded
envelope before it is sequenced, with the identity the transport authenticated (the ZAP User-Id,
i.e. the peer's key name, see `bus.security.peer_identity`), and answers a `Refusal` with an
`IngressRefused` to that peer; the envelope never reaches the journal or the core.

Each identity has a grant: a role (`PeerRole`) and the ids it owns. What a role may send, and
which fields must name something it owns:

| role | owns (`ids`) | may send (`source`) | the envelope must have | `producer_id` must be |
|---|---|---|---|---|
| strategy | strategy ids | STRATEGY (intents) | payload `strategy_id` in ids | ``strategy:<payload strategy_id>`` |
| gateway | venue ids | BROKER_REPORT | `venue` in ids | ``venue:<envelope venue>`` |
| feed | producer ids | MARKET_DATA | `instrument` in `instruments` (if that is non-empty) | an id, or ``<id>:<anything>`` |
| control | control names | CONTROL | | ``control:<name>`` for a name in ids |
| sequencer | (no grant) | nothing: the sequencer does not feed its own ingress | | |

The producer id prefixes are the ones the rest of tradebus already uses (the backtest runner's
``strategy:<id>`` and ``venue:<venue>``; `services.data.merge` names a feed's series
``<prefix>:<instrument>[:<interval>]``, so a feed owning ``binance`` may use ``binance:BTC-USD``).
Tying the producer id to the identity matters because the sequencer dedups per producer id: a
peer that could write under another's producer id could make that peer's next messages look like
repeats and have them dropped.

TIMER envelopes are refused from every peer: timers are made by the sequencer service itself.

Without security (``ipc://`` endpoints, NULL mechanism) there is no authenticated identity: the
caller passes ``None`` and the policy then checks only that the envelope is self-consistent (its
`source` is the one `PAYLOAD_SOURCE` allows for its payload type); who sent it is not known, so
nothing else can be checked. A policy built with ``require_identity=True`` (a CURVE deployment)
refuses a missing identity instead: a frame without User-Id there means the transport is
misconfigured, and it fails closed.

Refusals are typed (`AuthzReason`) and their detail names the identity, the field and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final

import msgspec

from schemas.base import tag_of
from schemas.bus import PeerRole
from schemas.enums import Source
from schemas.envelope import PAYLOAD_SOURCE, Envelope
from schemas.intents import CancelOrder, NoOp, PlaceOrder, ReplaceOrder, SetRiskFlag
from schemas.types import MAX_ID_CHARS, MAX_TEXT_CHARS

__all__ = [
    "CONTROL_PRODUCER_PREFIX",
    "ROLE_SOURCES",
    "STRATEGY_PRODUCER_PREFIX",
    "VENUE_PRODUCER_PREFIX",
    "AuthzReason",
    "IngressPolicy",
    "PeerGrant",
    "Refusal",
]

STRATEGY_PRODUCER_PREFIX: Final = "strategy:"
VENUE_PRODUCER_PREFIX: Final = "venue:"
CONTROL_PRODUCER_PREFIX: Final = "control:"

# What each role may send. A table, not branches: a new role or source is one line here.
ROLE_SOURCES: Final[Mapping[PeerRole, frozenset[Source]]] = {
    PeerRole.STRATEGY: frozenset({Source.STRATEGY}),
    PeerRole.GATEWAY: frozenset({Source.BROKER_REPORT}),
    PeerRole.FEED: frozenset({Source.MARKET_DATA}),
    PeerRole.CONTROL: frozenset({Source.CONTROL}),
    PeerRole.SEQUENCER: frozenset(),
}

_Intent = PlaceOrder | CancelOrder | ReplaceOrder | SetRiskFlag | NoOp
_OwnedId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]


class AuthzReason(StrEnum):
    """Why an envelope was refused at ingress. Stable codes: dashboards and tests match on them."""

    IDENTITY_REQUIRED = "identity_required"  # CURVE deployment, but the frame had no User-Id
    UNKNOWN_IDENTITY = "unknown_identity"  # authenticated, but no grant for that name
    SOURCE_MISMATCH = "source_mismatch"  # envelope source is not the one its payload type allows
    SOURCE_NOT_ALLOWED = "source_not_allowed"  # the identity's role may not send this source
    NOT_OWNER = "not_owner"  # strategy id / venue not one the identity owns
    INSTRUMENT_NOT_ALLOWED = "instrument_not_allowed"  # a feed publishing outside its instruments
    PRODUCER_NOT_OWNED = "producer_not_owned"  # producer_id outside the identity's convention


@dataclass(frozen=True, slots=True)
class Refusal:
    """The envelope may not enter; `detail` names the identity, the field and its value.

    `detail` fits `IngressRefused.detail` (MAX_TEXT_CHARS): it is clipped at the end, where the
    lists of allowed ids go, so identity, field and value always survive.
    """

    reason: AuthzReason
    detail: str

    def __post_init__(self) -> None:
        if len(self.detail) > MAX_TEXT_CHARS:
            object.__setattr__(self, "detail", self.detail[: MAX_TEXT_CHARS - 3] + "...")


class PeerGrant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one identity may do: its role and the ids it owns (meaning per role: module table).

    `instruments` restricts a feed to some instruments; empty means any. Other roles leave it
    empty.
    """

    role: PeerRole
    ids: tuple[_OwnedId, ...] = ()
    instruments: tuple[_OwnedId, ...] = ()

    def __post_init__(self) -> None:
        if self.role is PeerRole.SEQUENCER:
            raise ValueError("the sequencer role sends nothing to ingress: it needs no grant")
        if not self.ids:
            raise ValueError(f"a {self.role} grant needs at least one id (what it owns)")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"grant ids repeat: {list(self.ids)}")
        if self.instruments and self.role is not PeerRole.FEED:
            raise ValueError(f"only a feed grant may list instruments, not a {self.role} grant")


class IngressPolicy:
    """Identity name -> grant, and the rule `check` applies to each envelope.

    Args:
        grants: identity name (the peer's key name) -> its grant.
        require_identity: refuse envelopes without an authenticated identity (set it whenever
            ingress runs CURVE); without it a missing identity means "security off" and only
            self-consistency is checked.

    Raises:
        ValueError: two identities own the same strategy id, venue, feed producer id or control
            name (ownership must be unambiguous).
    """

    def __init__(self, grants: Mapping[str, PeerGrant], *, require_identity: bool = False) -> None:
        owners: dict[tuple[PeerRole, str], str] = {}
        for identity in sorted(grants):
            grant = grants[identity]
            for owned in grant.ids:
                other = owners.setdefault((grant.role, owned), identity)
                if other != identity:
                    raise ValueError(f"{grant.role} id {owned!r} is granted to both {other!r} and {identity!r}")
        self._grants: dict[str, PeerGrant] = dict(sorted(grants.items()))
        self.require_identity = require_identity

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, require_identity: bool = False) -> IngressPolicy:
        """From decoded config (TOML/JSON): ``{identity: {"role": ..., "ids": [...], ...}}``.

        Raises:
            msgspec.ValidationError: a grant is malformed (unknown role or field, bad id).
            ValueError: see the class.
        """
        grants = msgspec.convert(config, dict[str, PeerGrant])
        return cls(grants, require_identity=require_identity)

    def grant(self, identity: str) -> PeerGrant | None:
        return self._grants.get(identity)

    @property
    def identities(self) -> tuple[str, ...]:
        return tuple(self._grants)

    def check(self, identity: str | None, envelope: Envelope) -> Refusal | None:
        """None if `identity` may send `envelope`, else why not.

        Args:
            identity: the authenticated peer name, or None when the transport has no security.
            envelope: the decoded envelope as received.
        """
        # The hot path (every envelope into the sequencer) only compares; names for the detail
        # (the payload's tag, who sent it) are built when refusing.
        payload = envelope.payload
        expected = PAYLOAD_SOURCE[type(payload)]
        if envelope.source is not expected:
            return Refusal(
                AuthzReason.SOURCE_MISMATCH,
                f"{_who(identity)}: source {envelope.source.value!r} cannot carry payload {_tag(payload)!r} "
                f"(only {expected.value!r} can)",
            )
        if identity is None:
            if self.require_identity:
                return Refusal(
                    AuthzReason.IDENTITY_REQUIRED,
                    f"{_who(identity)}: producer_id {envelope.producer_id!r} sent payload {_tag(payload)!r} "
                    "without an authenticated identity (User-Id) on a secured ingress",
                )
            return None
        grant = self._grants.get(identity)
        if grant is None:
            return Refusal(
                AuthzReason.UNKNOWN_IDENTITY,
                f"{_who(identity)} has no ingress grant (producer_id {envelope.producer_id!r}, payload {_tag(payload)!r})",
            )
        allowed = ROLE_SOURCES[grant.role]
        if envelope.source not in allowed:
            return Refusal(
                AuthzReason.SOURCE_NOT_ALLOWED,
                f"{_who(identity)} ({grant.role.value}) may not send source {envelope.source.value!r} "
                f"(payload {_tag(payload)!r}); it may send {sorted(s.value for s in allowed)}",
            )
        if grant.role is PeerRole.STRATEGY:
            return _check_strategy(identity, grant, envelope)
        if grant.role is PeerRole.GATEWAY:
            return _check_gateway(identity, grant, envelope)
        if grant.role is PeerRole.FEED:
            return _check_feed(identity, grant, envelope)
        assert grant.role is PeerRole.CONTROL, f"no ingress rule for role {grant.role}"
        return _check_producer(identity, envelope, {f"{CONTROL_PRODUCER_PREFIX}{name}" for name in grant.ids})


def _check_strategy(identity: str, grant: PeerGrant, envelope: Envelope) -> Refusal | None:
    payload = envelope.payload
    assert isinstance(payload, _Intent), f"STRATEGY source with payload {type(payload).__name__}"
    if payload.strategy_id not in grant.ids:
        return Refusal(
            AuthzReason.NOT_OWNER,
            f"{_who(identity)}: strategy_id {payload.strategy_id!r} of {_tag(payload)!r} is not one of its strategies "
            f"{sorted(grant.ids)}",
        )
    return _check_producer(identity, envelope, {f"{STRATEGY_PRODUCER_PREFIX}{payload.strategy_id}"})


def _check_gateway(identity: str, grant: PeerGrant, envelope: Envelope) -> Refusal | None:
    if envelope.venue not in grant.ids:
        return Refusal(
            AuthzReason.NOT_OWNER,
            f"{_who(identity)}: venue {envelope.venue!r} of {_tag(envelope.payload)!r} is not one of its venues "
            f"{sorted(grant.ids)}",
        )
    return _check_producer(identity, envelope, {f"{VENUE_PRODUCER_PREFIX}{envelope.venue}"})


def _check_feed(identity: str, grant: PeerGrant, envelope: Envelope) -> Refusal | None:
    if grant.instruments and envelope.instrument not in grant.instruments:
        return Refusal(
            AuthzReason.INSTRUMENT_NOT_ALLOWED,
            f"{_who(identity)}: instrument {envelope.instrument!r} is not one of its instruments {sorted(grant.instruments)}",
        )
    producer = envelope.producer_id
    if any(producer == owned or producer.startswith(f"{owned}:") for owned in grant.ids):
        return None
    return Refusal(
        AuthzReason.PRODUCER_NOT_OWNED,
        f"{_who(identity)}: producer_id {producer!r} is neither one of its producer ids {sorted(grant.ids)} "
        "nor '<id>:...' under one of them",
    )


def _check_producer(identity: str, envelope: Envelope, allowed: set[str]) -> Refusal | None:
    if envelope.producer_id in allowed:
        return None
    return Refusal(
        AuthzReason.PRODUCER_NOT_OWNED,
        f"{_who(identity)}: producer_id {envelope.producer_id!r} is not its own (expected {' or '.join(sorted(allowed))})",
    )


def _who(identity: str | None) -> str:
    return "unauthenticated peer" if identity is None else f"identity {identity!r}"


def _tag(payload: object) -> str:
    return tag_of(type(payload).__name__)
