"""docs/protocol.md's generated tables match the structs, and its example frame is real."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import msgspec

from schemas import PAYLOAD_SOURCE, Envelope, Output
from schemas.codec import envelope_decoder

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_protocol", ROOT / "docs" / "generate_protocol.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_protocol_doc_is_current() -> None:
    gen = _generator()
    text = gen.DOC.read_text(encoding="utf-8")
    assert gen.updated(text) == text, "docs/protocol.md is out of date; run `python docs/generate_protocol.py`"


def test_protocol_doc_lists_every_field_of_every_message() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    for cls in [Envelope, *PAYLOAD_SOURCE]:
        for field in msgspec.structs.fields(cls):
            assert f"| `{field.encode_name}` |" in text, (cls.__name__, field.name)
    for member in msgspec.inspect.type_info(Output).types:  # type: ignore[attr-defined]
        assert f"`{member.tag}` ({member.cls.__name__})" in text


def test_example_frame_in_the_doc_decodes() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    block = text.split("MessagePack bytes a producer sends:", 1)[1].split("```")[1]
    frame = bytes.fromhex(" ".join(block.split()))
    env = envelope_decoder().decode(frame)
    assert env.payload.__struct_config__.tag == "place_order"
    assert re.search(rf"as the {len(frame)} MessagePack bytes", text)
