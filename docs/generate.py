"""Regenerate the generated docs: `python docs/generate.py` (from the repository root)."""

from __future__ import annotations

from pathlib import Path

from services.sequencer.core.order_machine import DOC_HEADER, transition_table_markdown

DOCS = Path(__file__).parent


def main() -> None:
    (DOCS / "order_state_machine.md").write_text(DOC_HEADER + transition_table_markdown())


if __name__ == "__main__":
    main()
