"""The canonical transition trace: every output of the core, one JSON object per line.

Canonical means byte-stable: msgspec's JSON encoder with sorted keys. Two execution paths agree
exactly when their trace files are byte-identical.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from schemas.outputs import Output

__all__ = ["TraceWriter", "decode_trace_lines", "encode_trace_line"]

_ENCODER = msgspec.json.Encoder(order="deterministic")
_DECODER = msgspec.json.Decoder(Output)


def encode_trace_line(output: Output) -> bytes:
    return _ENCODER.encode(output) + b"\n"


def decode_trace_lines(data: bytes) -> list[Output]:
    return [_DECODER.decode(line) for line in data.splitlines() if line.strip()]


class TraceWriter:
    """Collects outputs as canonical trace lines in memory (the caller decides where they go)."""

    __slots__ = ("_parts", "count")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.count = 0

    def extend(self, outputs: Iterable[Output]) -> None:
        for output in outputs:
            self._parts.append(_ENCODER.encode(output))
            self.count += 1

    def getvalue(self) -> bytes:
        return b"".join(part + b"\n" for part in self._parts)
