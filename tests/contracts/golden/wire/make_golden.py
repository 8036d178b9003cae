"""Write the golden wire frames for tests/contracts/test_schema_evolution.py. Run by hand:

    cd /work/main && .venv/bin/python -m tests.contracts.golden.wire.make_golden

It encodes each case in `GOLDEN_CASES` (defined in the test, the single source of the expected
structs) with the production encoder, `schemas.codec.msgpack_encoder()`, and writes
`<channel>.<tag>[.minimal].msgpack` next to this file.

Frames are written once. A file that already exists is never overwritten, because it is the
record of what an older version put on the wire; if today's encoding of its case differs, this
script says so and exits 1, and the evolution test fails for the same reason. Fix the struct
change, not the frame. Deleting a frame to re-record it is a deliberate, reviewed act.

Adding a message type: add its cases to the test, run this script, commit the new files.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a plain script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from typing import Any

import msgspec

from schemas.codec import msgpack_encoder
from tests.contracts.test_schema_evolution import GOLDEN_CASES, GOLDEN_DIR


def _required_only(struct: Any) -> dict[str, Any]:
    """The struct as a map holding only its tag and required fields (nested payload too).

    A `.minimal` case spells its defaults out, and msgspec's `omit_defaults` drops a value only
    when it *is* the default object (an equal but distinct 60_000_000_000 is still written), so
    the frame is built from the required fields rather than trusted to the encoder.
    """
    info = msgspec.inspect.type_info(type(struct))
    assert isinstance(info, msgspec.inspect.StructType)
    keep = {f.encode_name for f in info.fields if f.required} | {info.tag_field}
    raw: dict[str, Any] = msgspec.to_builtins(struct)
    out = {key: value for key, value in raw.items() if key in keep}
    if "payload" in out:
        out["payload"] = _required_only(struct.payload)
    return out


def main() -> int:
    """Write missing golden frames; report (never rewrite) existing ones that no longer match.

    Returns:
        0 if every frame on disk matches its case, 1 otherwise.
    """
    encoder = msgpack_encoder()
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    mismatched = 0
    for name, (_, struct) in sorted(GOLDEN_CASES.items()):
        path = GOLDEN_DIR / name
        frame = encoder.encode(_required_only(struct) if ".minimal." in name else struct)
        if not path.exists():
            path.write_bytes(frame)
            print(f"wrote    {path.name} ({len(frame)} bytes)")
        elif path.read_bytes() == frame:
            print(f"kept     {path.name}")
        else:
            mismatched += 1
            print(f"DIFFERS  {path.name}: today's encoding of its case is not the v1 frame; left untouched")
    stray = sorted(p.name for p in GOLDEN_DIR.glob("*.msgpack") if p.name not in GOLDEN_CASES)
    for name in stray:
        print(f"STRAY    {name}: no case in the test (a message type was removed or renamed?)")
    return 1 if mismatched or stray else 0


if __name__ == "__main__":
    sys.exit(main())
