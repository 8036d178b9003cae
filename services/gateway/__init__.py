"""The paper venue gateway: a `SimulatedVenue` in its own process, on the bus.

- `turns`: lockstep (bus backtest): turn requests in, venue answers out; no sockets.
- `paper`: free-running (paper / live groups): published records in, report envelopes out after
  a wall-clock latency; no sockets.
- `report_ids`: idempotency keys and incarnation-proof trade ids of the reports it sends.
- `venue_log`: the append-only log of every command the venue was handed, per incarnation.
- `main`: the process (`run_gateway`), which wires those to the sockets.
"""

from services.gateway.main import GatewayService, peer_id, run_gateway
from services.gateway.paper import PaperGateway
from services.gateway.turns import TurnHandler
from services.gateway.venue_log import VenueLog, read_venue_log, venue_log_path

__all__ = [
    "GatewayService",
    "PaperGateway",
    "TurnHandler",
    "VenueLog",
    "peer_id",
    "read_venue_log",
    "run_gateway",
    "venue_log_path",
]
