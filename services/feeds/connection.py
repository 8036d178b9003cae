"""Noticing that the sequencer came back: a disconnect followed by a new handshake.

Envelopes the DEALER had written may die with the old connection; the producer must then send
its unacknowledged window again (`IngressClient.resend_unacked`). The socket monitor tells us
exactly when: libzmq reports ``DISCONNECTED`` when the connection drops (the sequencer exited or
the network failed) and ``HANDSHAKE_SUCCEEDED`` when a new one is ready for messages. Only a
handshake that follows a disconnect counts as a reconnect, so the first connection (whose
handshake may be reported after we have already written to it) never causes a repeat.
"""

from __future__ import annotations

from typing import Final

import zmq
from zmq.utils.monitor import recv_monitor_message

from bus.sockets import Socket

__all__ = ["ReconnectWatch"]

_EVENTS: Final = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


class ReconnectWatch:
    """Monitors one connecting socket (in its own context) for reconnects.

    Args:
        socket: the socket to watch; `close` must be called before the socket is closed.
    """

    def __init__(self, socket: Socket) -> None:
        self._socket = socket
        self._monitor: Socket | None = socket.get_monitor_socket(_EVENTS)
        self.disconnected = False
        self.reconnects = 0

    def check(self) -> bool:
        """Read the pending monitor events (never blocks).

        Returns:
            True if the socket reconnected since the last check (after a disconnect): time to
            send the unacknowledged window again.
        """
        monitor = self._monitor
        reconnected = False
        while monitor is not None:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
            if event["event"] == zmq.EVENT_DISCONNECTED:
                self.disconnected = True
            elif event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED and self.disconnected:
                self.disconnected = False
                self.reconnects += 1
                reconnected = True
        return reconnected

    def close(self) -> None:
        """Stop monitoring (idempotent)."""
        if self._monitor is None:
            return
        try:
            self._socket.disable_monitor()
        except zmq.ZMQError:
            pass  # the socket is already closed
        self._monitor.close(linger=0)
        self._monitor = None
