"""Deployment profiles: the default loads; every problem is reported, by field path, all at once."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from services.deploy.paths import MAX_UNIX_SOCKET_PATH
from services.deploy.profile import FileFeed, Profile, ProfileError, load_profile, read_run_dir

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "ops" / "profiles" / "default.toml"

# A valid profile, relative paths only: files are made next to it by `_write`.
BASE = """\
[group]
name = "t"
run_dir = "run"
mode = "paper"

[[feeds]]
name = "btc"
kind = "file"
data = ["BTC-USD_1m.csv", "ETH-USD@1h=eth.csv"]

[[venues]]
name = "sim"
kind = "paper"

[[strategies]]
name = "s1"
path = "strat.py:Mine"
"""


def _write(tmp_path: Path, text: str, name: str = "profile.toml") -> Path:
    for data in ("BTC-USD_1m.csv", "eth.csv"):
        (tmp_path / data).write_text("timestamp,open,high,low,close,volume\n")
    (tmp_path / "strat.py").write_text("class Mine: pass\n")
    path = tmp_path / name
    path.write_text(text)
    return path


def _problems(path: Path) -> tuple[str, ...]:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(path) in str(info.value)
    for problem in info.value.problems:
        assert problem in str(info.value)
    return info.value.problems


def test_default_profile_loads() -> None:
    profile = load_profile(DEFAULT)
    assert profile.group.mode == "backtest"
    assert profile.group.run_dir == REPO / "runs" / "group"
    (feed,) = profile.feeds
    assert isinstance(feed, FileFeed)
    assert feed.resample == "15m"
    assert [(d.instrument, d.path) for d in feed.data] == [("BTC-USD", REPO / "examples/data/BTC-USD_1m.csv")]
    (venue,) = profile.venues
    assert venue.matching.maker_fee == venue.matching.taker_fee == Decimal("0.001")
    (strategy,) = profile.strategies
    assert strategy.path.file == REPO / "examples/strategies/sma_cross.py"
    assert strategy.path.class_name == "SmaCross"
    assert strategy.strategy_id == "main"  # tradebus backtest's default: make run and make backtest agree
    for _, endpoint in profile.endpoints.named():
        assert endpoint.startswith(f"ipc://{REPO / 'runs' / 'group'}/")


def test_base_profile_loads_and_resolves_against_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, BASE)
    monkeypatch.chdir("/")  # not the profile's directory: relative paths must not follow the cwd
    profile = load_profile(os.path.relpath(path, "/"))
    assert profile.group.run_dir == tmp_path / "run"
    feed = profile.feeds[0]
    assert isinstance(feed, FileFeed)
    assert [(d.instrument, d.interval, d.path) for d in feed.data] == [
        ("BTC-USD", None, tmp_path / "BTC-USD_1m.csv"),
        ("ETH-USD", "1h", tmp_path / "eth.csv"),
    ]
    assert profile.strategies[0].path.spec == f"{tmp_path / 'strat.py'}:Mine"
    assert profile.endpoints.ingress == f"ipc://{tmp_path / 'run' / 'ingress.sock'}"
    assert profile.venue("sim").matching_config().latency_ns == 0


def test_unknown_field_is_named(tmp_path: Path) -> None:
    text = BASE.replace('kind = "file"', 'kind = "file"\ncolour = "red"') + "\n[extras]\nx = 1\n"
    problems = _problems(_write(tmp_path, text))
    assert "feeds[0].colour: extra inputs are not permitted ('red')" in problems
    assert "extras: extra inputs are not permitted" in problems
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        ("tcp://host:99999", "endpoints.ingress: port 99999 is out of range 1-65535 ('tcp://host:99999')"),
        ("tcp://host:0", "endpoints.ingress: port 0"),
        ("tcp://host", "endpoints.ingress: "),
        (
            "http://x",
            "endpoints.ingress: scheme 'http' is not supported; use ipc://PATH or tcp://HOST:PORT ('http://x')",
        ),
        ("localhost:5555", "endpoints.ingress: "),
        ("ipc://" + "d/" * 60 + "x.sock", "endpoints.ingress: ipc path is"),
    ],
)
def test_bad_endpoint_is_named(tmp_path: Path, endpoint: str, fragment: str) -> None:
    problems = _problems(_write(tmp_path, BASE + f'\n[endpoints]\ningress = "{endpoint}"\n'))
    assert len(problems) == 1, problems
    assert problems[0].startswith(fragment), problems


def test_tcp_needs_security(tmp_path: Path) -> None:
    endpoints = '\n[endpoints]\ningress = "tcp://10.0.0.5:7001"\npublication = "tcp://10.0.0.5:7002"\n'
    problems = _problems(_write(tmp_path, BASE + endpoints))
    assert [p.split(":")[0] for p in problems] == ["endpoints.ingress", "endpoints.publication"]
    assert "needs [security] keys_dir and server_key" in problems[0]

    plain = load_profile(_write(tmp_path, BASE + endpoints + "\n[security]\nallow_plaintext_tcp = true\n"))
    assert plain.endpoints.ingress == "tcp://10.0.0.5:7001"

    keys = tmp_path / "keys"
    keys.mkdir()
    security = '\n[security]\nkeys_dir = "keys"\nserver_key = "sequencer"\n'
    problems = _problems(_write(tmp_path, BASE + endpoints + security))
    missing_key = f"security: server_key: public key file not found: {keys / 'sequencer.key'} (tradebus keys generate)"
    assert problems == (missing_key,)
    (keys / "sequencer.key").write_text("public\n")
    curve = load_profile(_write(tmp_path, BASE + endpoints + security))
    assert curve.security.curve and curve.security.keys_dir == keys


def test_missing_strategy_file_is_named(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, BASE.replace("strat.py:Mine", "strategies/gone.py")))
    gone = tmp_path / "strategies/gone.py"
    assert problems == (f"strategies[0].path: file not found: {gone} ('strategies/gone.py')",)


def test_missing_data_file_is_named(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, BASE.replace("eth.csv", "nope/eth.csv")))
    assert problems == (f"feeds[0].data[1]: file not found: {tmp_path / 'nope/eth.csv'} ('ETH-USD@1h=nope/eth.csv')",)


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.replace('mode = "paper"', "mode = paper"))
    problems = _problems(path)
    assert len(problems) == 1
    assert "TOML syntax error at line 4, column 8" in problems[0]
    assert f"{path}:4:8" in problems[0]


def test_every_error_is_collected(tmp_path: Path) -> None:
    text = (
        BASE.replace('mode = "paper"', 'mode = "demo"')
        .replace("eth.csv", "missing.csv")
        .replace('kind = "paper"', 'kind = "paper"\nlatency_ms = -1')
        + '\n[journal]\nfsync = "sometimes"\n\n[account]\ncash = "lots"\n'
    )
    problems = _problems(_write(tmp_path, text))
    assert [p.split(":")[0] for p in problems] == [
        "group.mode",
        "journal.fsync",
        "feeds[0].data[1]",
        "venues[0].latency_ms",
        "account.cash",
    ]


def test_cross_section_problems_are_all_reported(tmp_path: Path) -> None:
    text = (
        BASE.replace('mode = "paper"', 'mode = "backtest"')
        + """
[[feeds]]
name = "btc"
kind = "synthetic"
instrument = "X-USD"
seed = 7

[[strategies]]
name = "s2"
path = "strat.py"
strategy_id = "s1"

[instruments.X-USD]
venue = "elsewhere"
base = "X"
quote = "USD"
price_decimals = 2
size_decimals = 2
"""
    )
    problems = _problems(_write(tmp_path, text))
    assert problems == (
        "feeds[1].name: duplicate of feeds[0].name ('btc')",
        "strategies[1].strategy_id: duplicate of strategies[0].strategy_id ('s1')",
        "feeds[1].count: a backtest needs a finite count ('unlimited')",
        "instruments.X-USD.venue: not the name of any [[venues]] entry ('elsewhere')",
    )


def test_feed_kind_and_required_fields(tmp_path: Path) -> None:
    text = BASE + '\n[[feeds]]\nname = "a"\nkind = "socket"\n\n[[feeds]]\nname = "b"\n\n[[venues]]\nkind = "paper"\n'
    problems = _problems(_write(tmp_path, text))
    assert problems == (
        "feeds[1].kind: must be one of 'file', 'synthetic' ('socket')",
        "feeds[2].kind: field required (one of 'file', 'synthetic')",
        "venues[1].name: field required",
    )


def test_missing_sections_are_named(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, '[group]\nname = "t"\nrun_dir = "run"\nmode = "paper"\nfeeds = []\n'))
    assert problems == (
        "group.feeds: extra inputs are not permitted",
        "feeds: field required",
        "venues: field required",
    )


def test_yaml_is_refused_plainly(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("group: {}\n")
    assert _problems(path) == ("YAML profiles are not supported (PyYAML is not installed); write it in TOML",)


def test_read_run_dir_needs_only_the_group(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.replace("eth.csv", "gone.csv"))
    with pytest.raises(ProfileError):
        load_profile(path)
    assert read_run_dir(path) == tmp_path / "run"


def test_long_run_dir_moves_default_sockets_under_tmp(tmp_path: Path) -> None:
    deep = "d" * 120
    profile = load_profile(_write(tmp_path, BASE.replace('run_dir = "run"', f'run_dir = "{deep}"')))
    for _, endpoint in profile.endpoints.named():
        path = endpoint.removeprefix("ipc://")
        assert path.startswith("/tmp/tradebus-") and len(path) <= MAX_UNIX_SOCKET_PATH
    again = load_profile(tmp_path / "profile.toml")
    assert again.endpoints == profile.endpoints  # the same run_dir always maps to the same sockets


def test_profile_built_in_code_without_context_resolves_against_cwd(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    _write(tmp_path, BASE)
    monkeypatch.chdir(tmp_path)
    profile = Profile.model_validate({
        "group": {"name": "t", "run_dir": "run", "mode": "paper"},
        "feeds": [{"name": "f", "kind": "synthetic", "instrument": "X-USD", "seed": 1}],
        "venues": [{"name": "v", "kind": "paper", "latency_ms": "1.5"}],
    })  # fmt: skip
    assert profile.group.run_dir == tmp_path / "run"
    assert profile.venue("v").matching_config().latency_ns == 1_500_000
