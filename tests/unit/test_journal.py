"""The journal writer and reader: round trip, fsync policies, refusals before writing, fail-stop (S5)."""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import Envelope
from services.sequencer.journal import (
    MAX_RECORD_BYTES,
    FsyncPolicy,
    JournalError,
    JournalFailed,
    JournalWriter,
    RecordRefused,
    iter_envelopes,
    read_journal_header,
    recover_journal,
    scan_journal,
)
from services.sequencer.journal.framing import crc32
from services.sequencer.scenario import Scenario, demo_config


def _envelopes(n: int) -> list[Envelope]:
    s = Scenario()
    for i in range(n):
        if i % 3 == 2:
            s.place(f"o{i}", price=4_200_000 + i)
        else:
            s.bar("BTC-USD", 4_200_000 + i, 4_210_000, 4_190_000, 4_200_000 + i)
        s.advance()
    return s.sequenced()


ENVS = _envelopes(12)


class Counter:
    """Wraps an os function, counting calls and passing them through."""

    def __init__(self, real: Callable[..., object]) -> None:
        self.real = real
        self.calls = 0

    def __call__(self, *args: object) -> object:
        self.calls += 1
        return self.real(*args)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter(os.fsync)
    monkeypatch.setattr(os, "fsync", counter)
    return counter


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter(os.write)
    monkeypatch.setattr(os, "write", counter)
    return counter


def _create(tmp_path: Path, **kwargs: object) -> JournalWriter:
    return JournalWriter.create(tmp_path / "j.tbj", demo_config(), **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ round trip


def test_round_trip(tmp_path: Path) -> None:
    with _create(tmp_path) as writer:
        for env in ENVS:
            writer.append(env)
        assert writer.last_seq_id == len(ENVS)
    path = tmp_path / "j.tbj"
    scan = scan_journal(path)
    assert scan.envelopes == ENVS
    assert (scan.records, scan.last_seq_id, scan.tail_bytes_cut, scan.valid_end) == (
        len(ENVS),
        len(ENVS),
        0,
        path.stat().st_size,
    )
    assert list(iter_envelopes(path)) == ENVS
    assert list(iter_envelopes(path, after_seq_id=9)) == ENVS[9:]
    header = read_journal_header(path)
    assert header.config_json.encode() == demo_config().canonical_json()
    assert header.config_hash == demo_config().config_hash() == scan.config().config_hash()


def test_batch_writes_the_same_bytes_as_single_appends(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with _create(tmp_path / "a", fsync=FsyncPolicy.NEVER) as one_by_one:
        for env in ENVS:
            one_by_one.append(env)
    with _create(tmp_path / "b", fsync=FsyncPolicy.NEVER) as batched:
        batched.append_batch(ENVS[:5])
        batched.append_batch([])
        batched.append_batch(ENVS[5:])
        assert batched.last_seq_id == len(ENVS)
    assert (tmp_path / "a" / "j.tbj").read_bytes() == (tmp_path / "b" / "j.tbj").read_bytes()


def test_create_never_overwrites(tmp_path: Path) -> None:
    with _create(tmp_path) as writer:
        writer.append(ENVS[0])
    before = (tmp_path / "j.tbj").read_bytes()
    with pytest.raises(FileExistsError):
        _create(tmp_path)
    assert (tmp_path / "j.tbj").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["j.tbj"], "no temp file left behind"


def test_open_for_append_continues_and_refuses_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "j.tbj"
    with _create(tmp_path) as writer:
        writer.append_batch(ENVS[:6])
    with JournalWriter.open_for_append(path) as writer:
        assert writer.last_seq_id == 6
        writer.append_batch(ENVS[6:])
    assert scan_journal(path).envelopes == ENVS
    with open(path, "ab") as f:
        f.write(b"\x07" * 9)
    with pytest.raises(JournalError, match="recover_journal"):
        JournalWriter.open_for_append(path)
    assert recover_journal(path).tail_bytes_cut == 9
    with JournalWriter.open_for_append(path) as writer:
        assert writer.last_seq_id == len(ENVS)


def test_closed_writer_refuses(tmp_path: Path) -> None:
    writer = _create(tmp_path)
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        writer.append(ENVS[0])


# ------------------------------------------------------------------------ fsync policies


def test_always_fsyncs_every_append_and_once_per_batch(tmp_path: Path, fsyncs: Counter, writes: Counter) -> None:
    writer = _create(tmp_path, fsync=FsyncPolicy.ALWAYS)
    fsyncs.calls = writes.calls = 0
    for env in ENVS[:4]:
        writer.append(env)
    assert (fsyncs.calls, writes.calls) == (4, 4)
    writer.append_batch(ENVS[4:])
    assert (fsyncs.calls, writes.calls) == (5, 5), "group commit: one write and one fsync per batch"
    writer.close()
    assert fsyncs.calls == 5, "nothing unsynced left for close"


def test_never_does_not_fsync(tmp_path: Path, fsyncs: Counter) -> None:
    writer = _create(tmp_path, fsync=FsyncPolicy.NEVER)
    fsyncs.calls = 0
    writer.append_batch(ENVS[:3])
    for env in ENVS[3:]:
        writer.append(env)
    writer.close()
    assert fsyncs.calls == 0
    assert len(scan_journal(tmp_path / "j.tbj").envelopes) == len(ENVS)


def test_interval_fsyncs_once_the_interval_has_passed(tmp_path: Path, fsyncs: Counter) -> None:
    now = [0]
    writer = _create(tmp_path, fsync=FsyncPolicy("interval"), fsync_interval_ms=10, clock_ns=lambda: now[0])
    fsyncs.calls = 0
    for t_ms, expected in [(1, 0), (5, 0), (9, 0), (10, 1), (12, 1), (19, 1), (20, 2)]:
        now[0] = t_ms * 1_000_000
        writer.append(ENVS[writer.last_seq_id])
        assert fsyncs.calls == expected, f"at {t_ms} ms"
    writer.sync()
    assert fsyncs.calls == 3
    now[0] = 25_000_000
    writer.append(ENVS[writer.last_seq_id])  # 5 ms after the forced sync: not yet
    assert fsyncs.calls == 3
    writer.close()
    assert fsyncs.calls == 4, "close makes the unsynced tail durable"


# ------------------------------------------------------------------------ refused before writing


def test_seq_gaps_and_repeats_are_refused_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "j.tbj"
    with _create(tmp_path) as writer:
        writer.append(ENVS[0])
        size = path.stat().st_size
        with pytest.raises(RecordRefused, match="does not follow"):
            writer.append(ENVS[2])  # gap
        with pytest.raises(RecordRefused, match="does not follow"):
            writer.append(ENVS[0])  # repeat
        with pytest.raises(RecordRefused, match="does not follow"):
            writer.append_batch([ENVS[1], ENVS[2], ENVS[4]])  # gap inside a batch: nothing written
        assert (path.stat().st_size, writer.last_seq_id) == (size, 1)
        writer.append_batch(ENVS[1:3])  # still usable: a refusal is not a failure
        assert writer.last_seq_id == 3


def test_record_over_max_record_bytes_is_refused_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "j.tbj"
    huge = msgspec.structs.replace(ENVS[1], idempotency_key="k" * (MAX_RECORD_BYTES + 1))
    with _create(tmp_path) as writer:
        writer.append(ENVS[0])
        size = path.stat().st_size
        with pytest.raises(RecordRefused, match="MAX_RECORD_BYTES"):
            writer.append(huge)
        with pytest.raises(RecordRefused, match="MAX_RECORD_BYTES"):
            writer.append_batch([ENVS[1], msgspec.structs.replace(huge, seq_id=3)])
        assert (path.stat().st_size, writer.last_seq_id, writer.failed) == (size, 1, False)
        writer.append(ENVS[1])
    assert len(scan_journal(path).envelopes) == 2


def test_record_that_would_not_decode_is_refused_before_writing(tmp_path: Path) -> None:
    """Small enough, but outside the schema's limits: it would make the journal unreadable."""
    path = tmp_path / "j.tbj"
    bad = msgspec.structs.replace(ENVS[0], idempotency_key="k" * 65)  # Id allows 64 characters
    with _create(tmp_path) as writer:
        size = path.stat().st_size
        with pytest.raises(RecordRefused, match="would not decode"):
            writer.append(bad)
        assert path.stat().st_size == size


def test_record_that_does_not_encode_is_refused_before_writing(tmp_path: Path) -> None:
    """A lone surrogate cannot be UTF-8: msgspec raises UnicodeEncodeError, we refuse it typed."""
    path = tmp_path / "j.tbj"
    bad = msgspec.structs.replace(ENVS[0], idempotency_key="a\udc80b")
    with _create(tmp_path) as writer:
        size = path.stat().st_size
        with pytest.raises(RecordRefused, match="does not encode"):
            writer.append(bad)
        assert (path.stat().st_size, writer.failed) == (size, False)


# ------------------------------------------------------------------------ S5: fail-stop


def _broken(errno_code: int, partial: bool = False) -> Callable[..., int]:
    real = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        if partial:
            real(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno_code, os.strerror(errno_code))

    return write


@pytest.mark.parametrize("partial", [False, True], ids=["nothing written", "half written"])
def test_write_error_makes_the_writer_refuse_everything_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, partial: bool
) -> None:
    path = tmp_path / "j.tbj"
    writer = _create(tmp_path)
    writer.append_batch(ENVS[:3])
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", _broken(errno.ENOSPC, partial))
        with pytest.raises(JournalFailed, match="ENOSPC") as caught:
            writer.append(ENVS[3])
    assert isinstance(caught.value.__cause__, OSError)
    # The disk is fine again, but the writer must not carry on.
    attempts: list[Callable[[], None]] = [
        lambda: writer.append(ENVS[3]),
        lambda: writer.append_batch(ENVS[3:5]),
        writer.sync,
    ]
    for attempt in attempts:
        with pytest.raises(JournalFailed, match="after seq 3"):
            attempt()
    assert writer.failed and writer.last_seq_id == 3
    writer.close()
    scan = recover_journal(path)  # what the restart does: the half record is a torn tail
    assert (scan.records, scan.tail_bytes_cut > 0) == (3, partial)


def test_fsync_error_makes_the_writer_refuse_everything_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = _create(tmp_path, fsync=FsyncPolicy.ALWAYS)
    writer.append(ENVS[0])

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "injected fsync failure")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(JournalFailed, match="fsync"):
            writer.append(ENVS[1])
    with pytest.raises(JournalFailed):
        writer.append(ENVS[2])  # never retried: the pages may already be gone
    with pytest.raises(JournalFailed):
        writer.sync()
    writer.close()


def test_fsync_error_in_sync_and_interval_mode_also_fails_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = _create(tmp_path, fsync=FsyncPolicy.INTERVAL, fsync_interval_ms=1_000_000)
    writer.append(ENVS[0])

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "injected fsync failure")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(JournalFailed):
            writer.sync()
    with pytest.raises(JournalFailed):
        writer.append(ENVS[1])
    writer.close()


def test_prechecked_market_data_skips_only_the_decode_back_of_market_data(tmp_path: Path) -> None:
    """The backtest checks market-data series once; everything else is still decoded back."""
    sc = Scenario()
    bar = sc.bar("BTC-USD", 4_200_000, 4_210_000, 4_190_000, 4_200_000)
    place = sc.place("o1")
    envs = sc.sequenced()
    out_of_range = msgspec.structs.replace(envs[1], payload=msgspec.structs.replace(place.payload, quantity=2**63))
    with JournalWriter.create(tmp_path / "j.tbj", demo_config(), fsync=FsyncPolicy.NEVER) as writer:
        with pytest.raises(RecordRefused, match="would not decode"):
            writer.append_batch([envs[0], out_of_range], prechecked_market_data=True)
        writer.append_batch(envs, prechecked_market_data=True)
    assert [e.payload for e in iter_envelopes(tmp_path / "j.tbj")] == [bar.payload, place.payload]


@given(st.binary(max_size=4096), st.integers(min_value=0, max_value=2**32 - 1))
def test_the_journal_crc_is_zlibs_crc32(data: bytes, start: int) -> None:
    """The journal format says CRC-32 (zlib's): the faster implementation must agree bit for bit."""
    assert crc32(data) == zlib.crc32(data)
    assert crc32(data, start) == zlib.crc32(data, start)
