"""The bus benchmarks still run: tiny sizes, ipc only, real processes (tests/performance/bench_bus.py).

Numbers are not judged here (a shared test machine says nothing about speed); only that every
case completes, sees everything it sent, and measures something sane.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from tests.performance import bench_bus

N = 2_000
TICKS = 200
WARMUP = 20
PACE_MS = 1.0


@pytest.mark.parametrize("case", [bench_bus.case_throughput, bench_bus.case_raw_throughput])
def test_throughput_cases_see_every_record(case: Callable[..., dict[str, Any]]) -> None:
    result = case("ipc", N)
    assert result["complete"], result
    assert result["records_seen"] == N and result["gaps"] == 0, result
    assert result["refused"] == 0, result
    assert result["envelopes_per_s"] > 0 and result["seconds"] > 0, result
    assert result["feed_all_acked_seconds"] is not None, result  # every envelope acknowledged


@pytest.mark.parametrize(
    "case",
    [
        bench_bus.case_latency,
        bench_bus.case_raw_latency,
        functools.partial(bench_bus.case_latency, strategy_host=True),
    ],
    ids=["echo_process", "raw", "strategy_host"],
)
def test_latency_cases_see_every_order(case: Callable[..., dict[str, Any]]) -> None:
    result = case("ipc", TICKS, pace_ms=PACE_MS, warmup=WARMUP)
    assert result["complete"] and result["orders_seen"] == TICKS, result
    assert result["ticks_sent"] == TICKS, result
    latency = result["latency"]
    assert latency["samples"] == TICKS - WARMUP, result
    assert 0 < latency["min_us"] <= latency["p50_us"] <= latency["p95_us"] <= latency["p99_us"] <= latency["max_us"]
    assert latency["p50_us"] < 1_000_000, result  # a tick answered within a second, not a lost one
    assert 0 < result["first_hop"]["p50_us"] <= latency["p50_us"], result
