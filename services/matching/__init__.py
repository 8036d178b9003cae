"""The simulated venue: one pure, deterministic matching model for backtests and paper trading.

No I/O, no clock, no randomness (tests/unit/test_matching_purity.py enforces it). The rules are
in `venue.py`'s module docstring and docs/matching.md.
"""

from services.matching.config import MatchingConfig
from services.matching.orders import OrderStatus, VenueReport, VenueReportPayload
from services.matching.venue import SimulatedVenue

__all__ = ["MatchingConfig", "OrderStatus", "SimulatedVenue", "VenueReport", "VenueReportPayload"]
