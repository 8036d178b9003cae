"""JSON Schema (draft 2020-12) for other languages, generated from the structs in this package.

Theory of operation: the structs are the schema (STYLE point 3). msgspec derives one JSON Schema
document per channel from them; this module only wraps each document with `$schema`, `$id`,
a title and a description, normalises docstring whitespace, and renders it byte-for-byte
deterministically. The rendered files are committed under `schemas/jsonschema/` so that a
reader in another language never needs Python; `check()` (and the contract test that calls it)
fails when the structs change and the committed files were not regenerated.

Regenerate with `tradebus schema export` (or `make schema`).
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Final

import msgspec

from schemas.bus import BusMessage
from schemas.envelope import SCHEMA_VERSION, Envelope
from schemas.outputs import Output
from schemas.state import CoreSnapshot

__all__ = [
    "DEFAULT_DIR",
    "DRAFT",
    "SCHEMA_FILES",
    "build_schemas",
    "check",
    "export",
    "render",
]

DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"

# Where the committed documents live: inside the package, so the wheel ships them
# (pyproject's package-data includes `schemas/jsonschema/*.json`).
DEFAULT_DIR: Final = Path(__file__).resolve().parent / "jsonschema"

_UNITS = (
    "Prices, quantities and amounts are integers, never floats: a price counts the instrument's "
    "price unit (10**-price_decimals), a quantity counts its size unit (10**-size_decimals), cash "
    "and fees count the currency's unit (10**-decimals of that currency); the decimals come from "
    "the core's configuration. On the wire every message is one MessagePack map with the same "
    "shape as the JSON described here; tagged structs carry their snake_case tag in `type`."
)

# One entry per channel: file name -> (root type, title, what the channel carries).
_CHANNELS: Final[dict[str, tuple[Any, str, str]]] = {
    "envelope.schema.json": (
        Envelope,
        f"tradebus Envelope (inbound, schema_version {SCHEMA_VERSION})",
        (
            "Every input to the sequencer: market data, venue reports, timers, control commands and "
            "strategy intents, each carried as the tagged `payload` of one Envelope."
        ),
    ),
    "output.schema.json": (
        Output,
        "tradebus Output (published by the sequencer core)",
        (
            "Everything the sequencer core publishes: the order transition trace, refusals, venue "
            "commands and bookings. Exactly one tagged struct per message."
        ),
    ),
    "bus.schema.json": (
        BusMessage,
        "tradebus transport messages (publication, sync, heartbeats, acknowledgements)",
        (
            "The messages of the process group that are not core inputs. Each travels as the body "
            "of a two-part ZeroMQ message [kind, body]: kind is the ASCII tag below (the `type` "
            "value), body the message's MessagePack map. Exactly one tagged struct per message."
        ),
    ),
    "snapshot.schema.json": (
        CoreSnapshot,
        "tradebus CoreSnapshot (checkpoints and the sync endpoint)",
        (
            "The core's whole state at one seq_id. Lists are in canonical order (sorted by key); the "
            "state hash is SHA-256 of its MessagePack encoding with sorted map keys."
        ),
    ),
}

SCHEMA_FILES: Final = tuple(sorted(_CHANNELS))


def _clean_descriptions(node: Any) -> Any:
    """Dedent docstring-derived descriptions the same way on every Python version.

    msgspec copies `__doc__` verbatim apart from `textwrap.dedent`, and Python 3.13 started
    stripping docstring indentation at compile time, so without this the committed files would
    differ between 3.11 and 3.13 and `check` would report drift that is not there.
    """
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value)
            if key == "description" and isinstance(value, str)
            else _clean_descriptions(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_clean_descriptions(item) for item in node]
    return node


def build_schemas() -> dict[str, dict[str, Any]]:
    """Build one JSON Schema document per channel from the structs.

    Returns:
        File name (e.g. ``envelope.schema.json``) -> JSON Schema document (draft 2020-12).
    """
    documents: dict[str, dict[str, Any]] = {}
    for name, (root, title, what) in _CHANNELS.items():
        generated = _clean_descriptions(msgspec.json.schema(root))
        header = {
            "$schema": DRAFT,
            "$id": f"urn:tradebus:schema:{name.removesuffix('.schema.json')}",
            "title": title,
            "description": f"{what}\n\n{_UNITS}\n\nGenerated from the msgspec structs in "
            f"`schemas/` by `tradebus schema export`; do not edit by hand.",
        }
        # The generated document is either a root `$ref` or a root `anyOf` (for a union), plus
        # `$defs`; neither uses the header's keys, so merging cannot overwrite anything.
        clash = header.keys() & generated.keys()
        assert not clash, f"{name}: msgspec now emits {sorted(clash)} itself"
        documents[name] = {**header, **generated}
    return documents


def render(document: dict[str, Any]) -> str:
    """Render one document deterministically: sorted keys, 2-space indent, ASCII, final newline."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def _directory(directory: str | os.PathLike[str] | None) -> Path:
    return DEFAULT_DIR if directory is None else Path(directory)


def export(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write every schema document into `directory` (created if needed).

    Args:
        directory: target directory; defaults to the package's ``schemas/jsonschema``.

    Returns:
        The paths of the schema files, in file-name order (all of them, changed or not).
    """
    target = _directory(directory)
    target.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, document in sorted(build_schemas().items()):
        path = target / name
        data = render(document).encode("ascii")
        # Rewrite only what changed, so an export that changes nothing leaves mtimes alone.
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        paths.append(path)
    return paths


def check(directory: str | os.PathLike[str] | None = None) -> list[str]:
    """Compare the files in `directory` with what the structs generate today.

    Args:
        directory: directory holding the committed schema files; defaults to the package's.

    Returns:
        Sorted names of the files that are missing or differ; empty when everything matches.
    """
    target = _directory(directory)
    drifted: list[str] = []
    for name, document in sorted(build_schemas().items()):
        path = target / name
        if not path.is_file() or path.read_bytes() != render(document).encode("ascii"):
            drifted.append(name)
    return drifted
