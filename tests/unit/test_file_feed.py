"""A file feed sends exactly the market-data envelopes the in-process backtest journals (D5).

The in-process side is built independently of `services.feeds`: series loaded as
`tradebus backtest --data` loads them, run through `run_backtest` with a do-nothing strategy,
and read back from the journal. Only seq_id and ingest_time_ns (the sequencer's) are set aside.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import msgspec
import pytest

from schemas.bus import TurnDone, TurnRequest
from schemas.enums import Source
from schemas.envelope import Envelope
from schemas.lockstep import FeedPull, FeedPullDone
from schemas.market import Bar
from services.backtest import BacktestConfig, instrument_spec_for, run_backtest
from services.data import BarSeries, load_bars, producer_ids, resample
from services.deploy.profile import FileFeed, Profile, load_profile
from services.deploy.run_config import backtest_config_for
from services.feeds.file_feed import feed_producer_ids, file_feed_stream, load_profile_series
from services.feeds.lockstep import PullResponder, StreamCursor
from services.sequencer.journal import JournalReader
from services.strategy.api import Strategy

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "examples" / "data"
BTC = DATA / "BTC-USD_1m.csv"
ETH = DATA / "ETH-USD_1m.csv"


def _profile(tmp_path: Path, feeds: str, extra: str = "") -> Profile:
    path = tmp_path / "profile.toml"
    path.write_text(
        f"""\
[group]
name = "t"
run_dir = "run"
mode = "backtest"

{feeds}

[[venues]]
name = "sim"
kind = "paper"

{extra}
""",
        encoding="utf-8",
    )
    return load_profile(path)


def _series(path: Path, instrument: str, config: BacktestConfig, interval: str | None = None) -> BarSeries:
    """As services/cli/backtest_cmd.py loads one --data file."""
    bars = load_bars(path, instrument, instrument_spec_for(instrument, config))
    return resample(bars, interval) if interval else bars


def _journaled_market_data(series: list[BarSeries], config: BacktestConfig, run_dir: Path) -> list[Envelope]:
    run_backtest(Strategy, series, config, run_dir=run_dir)
    out = [
        msgspec.structs.replace(env, seq_id=0, ingest_time_ns=0)
        for env in JournalReader(run_dir / "journal.tbj")
        if env.source is Source.MARKET_DATA
    ]
    assert len(out) == sum(len(s) for s in series)
    return out


def _feed_envelopes(profile: Profile, name: str) -> tuple[list[str], list[Envelope]]:
    feed = profile.feed(name)
    assert isinstance(feed, FileFeed)
    stream = file_feed_stream(profile, feed, backtest_config_for(profile))
    envelopes = list(stream.envelopes())
    assert len(envelopes) == stream.total
    assert list(stream.envelopes()) == envelopes  # a new iterator, the same stream (a run may start over)
    return list(stream.producers), envelopes


@pytest.mark.parametrize("interval", [None, "15m"])
def test_one_file_equals_the_in_process_journal(tmp_path: Path, interval: str | None) -> None:
    resample_line = f'resample = "{interval}"' if interval else ""
    profile = _profile(tmp_path, f'[[feeds]]\nname = "btc"\nkind = "file"\ndata = ["{BTC}"]\n{resample_line}')
    producers, sent = _feed_envelopes(profile, "btc")

    config = backtest_config_for(profile)
    expected = _journaled_market_data([_series(BTC, "BTC-USD", config, interval)], config, tmp_path / "inproc")

    assert producers == ["file:BTC-USD"]
    assert len(sent) == (28_800 if interval is None else 1_920)
    assert sent == expected  # every field: producer id and seq, event time, venue, payload
    assert [e.producer_seq for e in sent] == list(range(1, len(sent) + 1))
    # Byte for byte as the journal's envelopes once the sequencer's two fields are set.
    assert msgspec.msgpack.encode(sent[-1]) == msgspec.msgpack.encode(expected[-1])


def test_two_instruments_merge_in_the_backtest_order(tmp_path: Path) -> None:
    profile = _profile(tmp_path, f'[[feeds]]\nname = "both"\nkind = "file"\ndata = ["{ETH}", "{BTC}"]')
    producers, sent = _feed_envelopes(profile, "both")

    config = backtest_config_for(profile)
    series = [_series(ETH, "ETH-USD", config), _series(BTC, "BTC-USD", config)]
    expected = _journaled_market_data(series, config, tmp_path / "inproc")

    assert producers == ["file:ETH-USD", "file:BTC-USD"]
    assert sent == expected
    # Equal event times: BTC-USD before ETH-USD (instrument rank), whatever the data order.
    assert [e.instrument for e in sent[:4]] == ["BTC-USD", "ETH-USD", "BTC-USD", "ETH-USD"]
    assert all(a.event_time_ns <= b.event_time_ns for a, b in itertools.pairwise(sent))


def test_an_instrument_in_two_feeds_gets_the_profile_wide_producer_ids(tmp_path: Path) -> None:
    feeds = (
        f'[[feeds]]\nname = "a"\nkind = "file"\ndata = ["{BTC}"]\n\n'
        f'[[feeds]]\nname = "b"\nkind = "file"\ndata = ["BTC-USD@15m={BTC}", "{ETH}"]'
    )
    profile = _profile(tmp_path, feeds)
    config = backtest_config_for(profile)
    ids_a, sent_a = _feed_envelopes(profile, "a")
    ids_b, sent_b = _feed_envelopes(profile, "b")

    # The in-process backtest of the profile merges every file feed's series at once.
    everything = load_profile_series(profile, config)
    assert producer_ids(tuple(everything), "file") == ids_a + ids_b
    assert ids_a == ["file:BTC-USD:1m"] and ids_b == ["file:BTC-USD:15m", "file:ETH-USD"]
    feed_b = profile.feed("b")
    assert isinstance(feed_b, FileFeed)
    assert feed_producer_ids(profile, feed_b, everything[1:]) == ids_b

    series = [_series(BTC, "BTC-USD", config), _series(BTC, "BTC-USD", config, "15m")]
    series.append(_series(ETH, "ETH-USD", config))
    journal = _journaled_market_data(series, config, tmp_path / "inproc")
    assert sent_a == [e for e in journal if e.producer_id in ids_a]
    assert sent_b == [e for e in journal if e.producer_id in ids_b]


def test_profile_precision_and_instrument_specs_are_used(tmp_path: Path) -> None:
    extra = """\
[account]
price_decimals = 3
size_decimals = 5

[instruments.ETH-USD]
venue = "sim"
base = "ETH"
quote = "USD"
price_decimals = 4
size_decimals = 6
"""
    profile = _profile(tmp_path, f'[[feeds]]\nname = "both"\nkind = "file"\ndata = ["{BTC}", "{ETH}"]', extra)
    _, sent = _feed_envelopes(profile, "both")

    config = backtest_config_for(profile)
    assert (config.price_decimals, config.size_decimals) == (3, 5)
    expected = _journaled_market_data(
        [_series(BTC, "BTC-USD", config), _series(ETH, "ETH-USD", config)], config, tmp_path / "inproc"
    )
    assert sent == expected
    first = {e.instrument: e for e in reversed(sent)}
    btc, eth = first["BTC-USD"].payload, first["ETH-USD"].payload
    assert isinstance(btc, Bar) and isinstance(eth, Bar)
    assert first["BTC-USD"].venue == first["ETH-USD"].venue == "sim"  # the profile's venue
    # 30000.00 and 6.1298 at 3 / 5 decimals (the account's); 2000.00 and 173.4844 at 4 / 6 (ETH's).
    assert (btc.open, btc.volume) == (30_000_000, 612_980)
    assert (eth.open, eth.volume) == (20_000_000, 173_484_400)


# --------------------------------------------------------------------------------------------
# pulled in lockstep (the sequencer's FeedPull turns), answered by position


def _pull(turn: int, position: int, count: int, *, peer: str = "feed-both", kind: str = "feed") -> TurnRequest:
    payload = msgspec.msgpack.encode(FeedPull(from_position=position, max_count=count))
    return TurnRequest(peer=peer, turn=turn, seq_id=0, kind=kind, payload=payload)


def _split(answer: list[Envelope | TurnDone] | None) -> tuple[list[Envelope], FeedPullDone]:
    assert answer is not None
    *items, done = answer
    envelopes = [e for e in items if isinstance(e, Envelope)]
    assert isinstance(done, TurnDone) and len(envelopes) == len(items)
    pulled = msgspec.msgpack.decode(done.payload, type=FeedPullDone)
    assert done.envelopes == pulled.sent == len(envelopes)
    return envelopes, pulled


def test_pulls_walk_the_stream_by_position_and_a_lost_answer_is_sent_again(tmp_path: Path) -> None:
    profile = _profile(tmp_path, f'[[feeds]]\nname = "both"\nkind = "file"\ndata = ["{ETH}", "{BTC}"]\nresample = "1h"')
    feed = profile.feed("both")
    assert isinstance(feed, FileFeed)
    stream = file_feed_stream(profile, feed, backtest_config_for(profile))
    everything = list(stream.envelopes())
    lines: list[str] = []
    responder = PullResponder("feed-both", StreamCursor(stream.envelopes), lines.append)

    got: list[Envelope] = []
    turn, ended = 0, False
    while not ended:
        turn += 1
        envelopes, done = _split(responder.on_turn(_pull(turn, len(got) + 1, 500)))
        got += envelopes
        ended = done.ended
    assert got == everything and len(everything) == stream.total == 960
    assert turn == 2  # 500 + 460: the second answer says the stream ended

    # The last turn asked again (its answer was lost): the same answer, the cursor untouched.
    again = responder.on_turn(_pull(turn, 501, 500))
    assert _split(again)[0] == everything[500:] and responder.repeats == 1
    # A new run pulls from position 1 again; any position can be asked for.
    assert _split(responder.on_turn(_pull(1, 1, 3)))[0] == everything[:3]
    assert _split(responder.on_turn(_pull(2, 700, 2)))[0] == everything[699:701]
    assert _split(responder.on_turn(_pull(3, 5, 1)))[0] == everything[4:5]
    assert responder.cursor.reopened == 2
    assert any("starts over" in line for line in lines)
    # Past the end: nothing, ended. Exactly at the end: ended with the last one.
    assert _split(responder.on_turn(_pull(4, 961, 10)))[0] == []
    tail, done = _split(responder.on_turn(_pull(5, 960, 10)))
    assert tail == everything[-1:] and done.ended
    # Not ours, or not a pull: no answer.
    assert responder.on_turn(_pull(6, 1, 1, peer="feed-other")) is None
    assert responder.on_turn(_pull(6, 1, 1, kind="venue")) is None
    assert responder.on_turn(TurnRequest(peer="feed-both", turn=6, seq_id=0, kind="feed", payload=b"\x01")) is None
