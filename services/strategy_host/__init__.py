"""The strategy host process: a user strategy, a replica of the core, and the bus around them.

    main          run_strategy_host(profile, name): the process (sockets, heartbeats, signals)
    lockstep      LockstepHost: answers the sequencer's strategy turns in a bus backtest
    free_running  FreeRunningHost: paper / live, events from the published stream, intents to ingress
    session       StrategySession and Replica: the strategy, its context, the replica core
    series        what a Backtrader-style strategy binds, rebuilt from instrument names and the profile

The turn and free-running logic take records and requests as plain values, so they are tested
without sockets (tests/unit/test_strategy_host_turns.py); the process is tested against a stand-in
sequencer (tests/integration/test_strategy_host_process.py).
"""

from services.strategy_host.free_running import FreeRunningHost
from services.strategy_host.lockstep import LockstepHost
from services.strategy_host.main import StrategyHostProcess, peer_id, run_strategy_host
from services.strategy_host.session import Replica, ReplicaError, StrategyFailure, StrategySession

__all__ = [
    "FreeRunningHost",
    "LockstepHost",
    "Replica",
    "ReplicaError",
    "StrategyFailure",
    "StrategyHostProcess",
    "StrategySession",
    "peer_id",
    "run_strategy_host",
]
