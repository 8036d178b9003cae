"""Write the golden wire frames for tests/contracts/test_schema_evolution.py. Run by hand:

    cd /work/main && .venv/bin/python -m tests.contracts.golden.wire.make_golden

For each case in `GOLDEN_CASES` (defined in the test, the single source of the expected structs)
it writes `<channel>.<tag>[.minimal].msgpack` next to this file, holding `golden_frame(name)`:

- a full frame is the case encoded by the production encoder, `schemas.codec.msgpack_encoder()`,
  which puts every field on the wire (less any field listed in the test's ADDED_AFTER_V1);
- a `.minimal` frame is what a producer in another language that sends only the required fields
  writes: a plain map of the tag and the required fields, encoded with `msgspec.msgpack.encode`,
  never a struct (a struct would put its defaults on the wire and prove nothing about them).

Frames are written once. A file that already exists is never overwritten, because it is the
record of what an older version put on the wire; if today's encoding of its case differs, this
script says so and exits 1, and the evolution test fails for the same reason. Fix the struct
change, not the frame.

The v1 frames were deleted and re-recorded exactly once, before v1 shipped to anyone, when the
schemas stopped omitting defaults (every field is now encoded) and `schema_version` became
"absent means 1". That was the last time: from here on a frame on disk is history, and
re-recording one would hide a break in the contract.

Adding a message type: add its cases to the test, run this script, commit the new files.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a plain script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from tests.contracts.test_schema_evolution import GOLDEN_CASES, GOLDEN_DIR, golden_frame


def main() -> int:
    """Write missing golden frames; report (never rewrite) existing ones that no longer match.

    Returns:
        0 if every frame on disk matches its case, 1 otherwise.
    """
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    mismatched = 0
    for name in sorted(GOLDEN_CASES):
        path = GOLDEN_DIR / name
        frame = golden_frame(name)
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
