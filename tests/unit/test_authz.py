"""F4: an authenticated identity may only speak for what it owns; refusals say who, what, which value."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas.bus import PeerRole
from schemas.control import AdjustCash, HaltTrading, Timer
from schemas.enums import OrderType, RiskFlag, Side, Source
from schemas.envelope import PAYLOAD_SOURCE, Envelope, Payload
from schemas.intents import CancelOrder, NoOp, PlaceOrder, ReplaceOrder, SetRiskFlag
from schemas.market import Bar, Trade
from schemas.reports import FillReport, OrderAcceptedReport
from schemas.types import MAX_TEXT_CHARS
from services.sequencer.authz import AuthzReason, IngressPolicy, PeerGrant, Refusal
from tests.purity import PurityRules

CONFIG: dict[str, Any] = {
    "strategy-host-a": {"role": "strategy", "ids": ["sma", "rsi"]},
    "strategy-host-b": {"role": "strategy", "ids": ["momentum"]},
    "gateway-sim": {"role": "gateway", "ids": ["sim"]},
    "feed-binance": {"role": "feed", "ids": ["binance"], "instruments": ["BTC-USD", "ETH-USD"]},
    "feed-files": {"role": "feed", "ids": ["file"]},
    "ops": {"role": "control", "ids": ["ops"]},
}
POLICY = IngressPolicy.from_config(CONFIG)
SECURED = IngressPolicy.from_config(CONFIG, require_identity=True)


def env(payload: Payload, producer_id: str, *, source: Source | None = None, **fields: Any) -> Envelope:
    return Envelope(
        source=source if source is not None else PAYLOAD_SOURCE[type(payload)],
        producer_id=producer_id,
        producer_seq=1,
        event_time_ns=1_700_000_000_000_000_000,
        payload=payload,
        **fields,
    )


def place(strategy_id: str) -> PlaceOrder:
    return PlaceOrder(
        strategy_id=strategy_id,
        client_order_id="c1",
        instrument="BTC-USD",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=10,
        price=100,
    )


FILL = FillReport(client_order_id="c1", trade_id="t1", quantity=1, price=100)
BAR = Bar(open=1, high=2, low=1, close=2, volume=5)


def refused(result: Refusal | None, reason: AuthzReason, *mentions: str) -> None:
    assert result is not None, f"expected a {reason} refusal, got none"
    assert result.reason is reason, result
    for text in mentions:
        assert text in result.detail, f"{text!r} not in detail {result.detail!r}"


# ------------------------------------------------------------------------------------ allowed


@pytest.mark.parametrize(
    ("identity", "envelope"),
    [
        ("strategy-host-a", env(place("sma"), "strategy:sma", venue="sim", instrument="BTC-USD")),
        ("strategy-host-a", env(place("rsi"), "strategy:rsi")),
        ("strategy-host-a", env(CancelOrder(strategy_id="sma", client_order_id="c1"), "strategy:sma")),
        ("strategy-host-a", env(ReplaceOrder(strategy_id="rsi", client_order_id="c1", price=5), "strategy:rsi")),
        ("strategy-host-a", env(SetRiskFlag(strategy_id="sma", flag=RiskFlag.HALT, enabled=True), "strategy:sma")),
        ("strategy-host-b", env(NoOp(strategy_id="momentum"), "strategy:momentum")),
        ("gateway-sim", env(FILL, "venue:sim", venue="sim")),
        ("gateway-sim", env(OrderAcceptedReport(client_order_id="c1"), "venue:sim", venue="sim")),
        ("feed-binance", env(BAR, "binance:BTC-USD", instrument="BTC-USD")),
        ("feed-binance", env(Trade(price=1, quantity=1), "binance", instrument="ETH-USD")),
        ("feed-files", env(BAR, "file:XYZ:1m", instrument="XYZ")),
        ("ops", env(HaltTrading(reason="drill"), "control:ops")),
        ("ops", env(AdjustCash(currency="USD", amount=5), "control:ops")),
    ],
)
def test_owned_envelopes_pass(identity: str, envelope: Envelope) -> None:
    assert POLICY.check(identity, envelope) is None
    assert SECURED.check(identity, envelope) is None


# ------------------------------------------------------------------------------------ refused


def test_strategy_sending_for_another_strategy_is_refused() -> None:
    result = POLICY.check("strategy-host-a", env(place("momentum"), "strategy:momentum"))
    refused(result, AuthzReason.NOT_OWNER, "'strategy-host-a'", "strategy_id", "'momentum'")
    # Cancelling someone else's order is the same refusal.
    result = POLICY.check("strategy-host-b", env(CancelOrder(strategy_id="sma", client_order_id="c1"), "strategy:sma"))
    refused(result, AuthzReason.NOT_OWNER, "'strategy-host-b'", "'sma'")


def test_strategy_using_another_producer_id_is_refused() -> None:
    """Its own strategy id, but writing under another producer: could poison that one's dedup."""
    result = POLICY.check("strategy-host-a", env(place("sma"), "strategy:momentum"))
    refused(result, AuthzReason.PRODUCER_NOT_OWNED, "'strategy-host-a'", "producer_id", "'strategy:momentum'")
    result = POLICY.check("strategy-host-a", env(place("sma"), "strategy:rsi"))
    refused(result, AuthzReason.PRODUCER_NOT_OWNED, "'strategy:rsi'", "strategy:sma")


def test_strategy_sending_a_gateway_report_is_refused() -> None:
    result = POLICY.check("strategy-host-a", env(FILL, "venue:sim", venue="sim"))
    refused(result, AuthzReason.SOURCE_NOT_ALLOWED, "'strategy-host-a'", "strategy", "'broker_report'", "fill_report")


def test_gateway_sending_market_data_is_refused() -> None:
    result = POLICY.check("gateway-sim", env(BAR, "venue:sim", venue="sim", instrument="BTC-USD"))
    refused(result, AuthzReason.SOURCE_NOT_ALLOWED, "'gateway-sim'", "gateway", "'market_data'", "bar")


def test_gateway_reporting_for_another_venue_is_refused() -> None:
    result = POLICY.check("gateway-sim", env(FILL, "venue:binance", venue="binance"))
    refused(result, AuthzReason.NOT_OWNER, "'gateway-sim'", "venue", "'binance'")
    result = POLICY.check("gateway-sim", env(FILL, "venue:other", venue="sim"))
    refused(result, AuthzReason.PRODUCER_NOT_OWNED, "'gateway-sim'", "'venue:other'")


@pytest.mark.parametrize(
    "payload", [place("sma"), CancelOrder(strategy_id="sma", client_order_id="c1")], ids=lambda p: type(p).__name__
)
def test_feed_sending_an_intent_is_refused(payload: Payload) -> None:
    result = POLICY.check("feed-binance", env(payload, "strategy:sma"))
    refused(result, AuthzReason.SOURCE_NOT_ALLOWED, "'feed-binance'", "feed", "'strategy'")


def test_feed_outside_its_producers_or_instruments_is_refused() -> None:
    result = POLICY.check("feed-binance", env(BAR, "file:BTC-USD", instrument="BTC-USD"))
    refused(result, AuthzReason.PRODUCER_NOT_OWNED, "'feed-binance'", "'file:BTC-USD'")
    result = POLICY.check("feed-binance", env(BAR, "binancex:BTC-USD", instrument="BTC-USD"))
    refused(result, AuthzReason.PRODUCER_NOT_OWNED, "'binancex:BTC-USD'")  # a prefix is a whole id
    result = POLICY.check("feed-binance", env(BAR, "binance:DOGE-USD", instrument="DOGE-USD"))
    refused(result, AuthzReason.INSTRUMENT_NOT_ALLOWED, "'feed-binance'", "instrument", "'DOGE-USD'")


def test_control_only_sends_control() -> None:
    refused(POLICY.check("ops", env(place("sma"), "strategy:sma")), AuthzReason.SOURCE_NOT_ALLOWED, "'ops'")
    refused(POLICY.check("ops", env(HaltTrading(), "control:other")), AuthzReason.PRODUCER_NOT_OWNED, "'control:other'")


def test_timers_are_refused_from_every_peer() -> None:
    for identity in POLICY.identities:
        refused(POLICY.check(identity, env(Timer(), "clock")), AuthzReason.SOURCE_NOT_ALLOWED, repr(identity), "timer")


def test_unknown_identity_is_refused() -> None:
    result = POLICY.check("strategy-host-z", env(place("sma"), "strategy:sma"))
    refused(result, AuthzReason.UNKNOWN_IDENTITY, "'strategy-host-z'", "'strategy:sma'")


def test_source_must_match_the_payload_whoever_sends() -> None:
    forged = env(FILL, "strategy:sma", source=Source.STRATEGY, venue="sim")
    refused(POLICY.check("strategy-host-a", forged), AuthzReason.SOURCE_MISMATCH, "'strategy-host-a'", "fill_report")
    refused(POLICY.check(None, forged), AuthzReason.SOURCE_MISMATCH, "unauthenticated", "'strategy'")


# ------------------------------------------------------------------------- security off (ipc)


def test_without_identity_only_self_consistency_is_checked() -> None:
    # Over ipc nobody is authenticated: any self-consistent envelope passes, whatever its ids.
    assert POLICY.check(None, env(place("nobody-configured"), "anything")) is None
    assert POLICY.check(None, env(Timer(), "clock")) is None


def test_secured_policy_refuses_a_missing_identity() -> None:
    result = SECURED.check(None, env(place("sma"), "strategy:sma"))
    refused(result, AuthzReason.IDENTITY_REQUIRED, "'strategy:sma'", "place_order")


# --------------------------------------------------------------------------------- config


def test_config_errors_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        IngressPolicy.from_config({"x": {"role": "superuser", "ids": ["a"]}})
    with pytest.raises(msgspec.ValidationError):
        IngressPolicy.from_config({"x": {"role": "strategy", "ids": ["a"], "admin": True}})
    with pytest.raises(msgspec.ValidationError, match="at least one id"):
        IngressPolicy.from_config({"x": {"role": "strategy", "ids": []}})
    with pytest.raises(msgspec.ValidationError, match="sends nothing"):
        IngressPolicy.from_config({"x": {"role": "sequencer", "ids": ["s"]}})
    with pytest.raises(msgspec.ValidationError, match="only a feed"):
        IngressPolicy.from_config({"x": {"role": "gateway", "ids": ["sim"], "instruments": ["BTC-USD"]}})


def test_one_id_has_one_owner() -> None:
    with pytest.raises(ValueError, match="'sma' is granted to both 'a' and 'b'"):
        IngressPolicy({"a": PeerGrant(PeerRole.STRATEGY, ("sma",)), "b": PeerGrant(PeerRole.STRATEGY, ("sma",))})
    # The same id under two roles is two different things (a venue and a strategy named alike).
    IngressPolicy({"a": PeerGrant(PeerRole.STRATEGY, ("sim",)), "b": PeerGrant(PeerRole.GATEWAY, ("sim",))})


def test_detail_fits_the_wire_and_keeps_the_facts() -> None:
    many = tuple(f"strategy-{i:03d}" for i in range(100))
    policy = IngressPolicy({"big-host": PeerGrant(PeerRole.STRATEGY, many)})
    result = policy.check("big-host", env(place("intruder"), "strategy:intruder"))
    refused(result, AuthzReason.NOT_OWNER, "'big-host'", "strategy_id", "'intruder'")
    assert result is not None and len(result.detail) == MAX_TEXT_CHARS and result.detail.endswith("...")


def test_authz_is_pure() -> None:
    """No I/O, clock or randomness: the policy is a function of config, identity and envelope."""
    rules = PurityRules(
        stdlib={"__future__", "collections", "dataclasses", "enum", "typing"},
        prefixes=("schemas", "msgspec"),
    )
    path = Path(__file__).resolve().parents[2] / "services" / "sequencer" / "authz.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    assert rules.bad_imports(tree) == []
    assert rules.bad_calls(tree) == (set(), set())
