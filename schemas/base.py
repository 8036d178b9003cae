"""The base every wire struct derives from: frozen, strict, tagged by its snake_case name."""

from __future__ import annotations

import re

import msgspec

__all__ = ["Message", "tag_of"]

_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def tag_of(class_name: str) -> str:
    """Wire tag for a struct class: `FillReport` -> `fill_report`."""
    return _CAMEL_BOUNDARY.sub("_", class_name).lower()


# Every field is always encoded (no omit_defaults): msgspec omits a default only when the value is
# the very same object, so two equal messages could encode differently and equal states would hash
# differently. Canonical bytes matter more here than a few bytes per frame.
class Message(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="type",
    tag=tag_of,
    gc=False,  # scalar-only payloads cannot form reference cycles; skipping GC tracking is faster
):
    """Base of every message on the wire. Unknown fields are refused; the `type` field tags it."""
