"""The deterministic sequencer core: envelopes in, outputs out, no I/O.

Nothing in this package may touch sockets, files, clocks, randomness or the environment
(tests/unit/test_core_purity.py enforces it). Time arrives on the envelopes.
"""

from services.sequencer.core.config import (
    AccountConfig,
    CoreConfig,
    CurrencySpec,
    InstrumentSpec,
    OrderRateLimit,
    RiskConfig,
    VenueSpec,
)
from services.sequencer.core.engine import SequencerCore
from services.sequencer.core.errors import (
    CoreError,
    IllegalTransition,
    InvariantViolation,
    RestoreError,
    SequenceError,
)
from services.sequencer.core.order_machine import (
    TRANSITIONS,
    OrderStateMachine,
    transition_table_markdown,
)
from services.sequencer.core.sequencing import Sequencer

__all__ = [
    "TRANSITIONS",
    "AccountConfig",
    "CoreConfig",
    "CoreError",
    "CurrencySpec",
    "IllegalTransition",
    "InstrumentSpec",
    "InvariantViolation",
    "OrderRateLimit",
    "OrderStateMachine",
    "RestoreError",
    "RiskConfig",
    "SequenceError",
    "Sequencer",
    "SequencerCore",
    "VenueSpec",
    "transition_table_markdown",
]
