"""What a profile means to the core: the instruments of its feeds and the configuration they run under.

Every process of a group derives its `CoreConfig` here, from the same profile, so the sequencer
and every replica (strategy hosts) agree on it; the journal header and checkpoints carry its hash
and refuse any other. `backtest_config_for` is the in-process equivalent of a profile: the same
strategy and data through `run_backtest` with it give the same journal as the group in lockstep.
"""

from __future__ import annotations

from services.backtest.config import BacktestConfig, core_config_for, instrument_spec_for
from services.deploy.profile import FileFeed, Profile
from services.sequencer.core.config import CoreConfig

__all__ = ["backtest_config_for", "core_config_for_profile", "feed_instruments"]


def feed_instruments(profile: Profile) -> list[str]:
    """Every instrument any feed of the profile produces, sorted."""
    names: set[str] = set()
    for feed in profile.feeds:
        if isinstance(feed, FileFeed):
            names.update(spec.instrument for spec in feed.data)
        else:
            names.add(feed.instrument)
    return sorted(names)


def backtest_config_for(profile: Profile, strategy_name: str | None = None) -> BacktestConfig:
    """The BacktestConfig equivalent to `profile` (one venue: its matching settings apply).

    Instruments not in `[instruments]` get specs derived from their names, on the profile's venue.
    """
    account = profile.account
    venue = profile.venues[0]
    strategies = profile.strategies
    strategy = (
        profile.strategy(strategy_name) if strategy_name is not None else (strategies[0] if strategies else None)
    )
    base = BacktestConfig(
        cash=account.cash,
        currency=account.currency,
        currency_decimals=account.currency_decimals,
        allow_short=account.allow_short,
        price_decimals=account.price_decimals,
        size_decimals=account.size_decimals,
        matching=venue.matching_config(),
        risk=profile.risk,
        strategy_id=strategy.strategy_id if strategy is not None else "main",
    )
    instruments = dict(profile.instruments)
    for name in feed_instruments(profile):
        if name not in instruments:
            instruments[name] = instrument_spec_for(name, base).model_copy(update={"venue": venue.name})
    return base.model_copy(update={"instruments": instruments})


def core_config_for_profile(profile: Profile) -> CoreConfig:
    """The sequencer core's configuration for this profile's group."""
    return core_config_for(feed_instruments(profile), backtest_config_for(profile))
