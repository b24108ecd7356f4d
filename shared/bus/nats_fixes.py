"""An adjustment to nats-py (2.16), applied once on import (shared.bus.jetstream imports this module).

Two others lived here while nats-py was pinned at 2.10 and left when it had them itself (2.16 has both,
2.11 neither): a plain header parser instead of the e-mail parser (a fifth of a busy node's CPU), and the
read loop ending at the end of the stream while connecting (nats.py#490: a server killed between CONNECT
and PONG froze the whole service). tests/unit/test_nats_fixes.py keeps the second's case."""
from __future__ import annotations

import asyncio

from nats.aio.transport import TcpTransport

CLOSE_S = 3.0  # how long closing a connection may wait for the server (then the socket is dropped)


def _bound_transport_close() -> None:
    """nats-py awaits its transport's close without a bound, in close() and before every reconnect
    (nats-io/nats.py#598, #671; still so in 2.16). Over TLS that close waits for the server's answer,
    which a server that is gone or frozen may never give: the client then neither closes nor reconnects,
    and the service waits on the bus for good (seen in test_faults: a routing service stuck for minutes in
    Bus.connect's close after a first attempt timed out). Bounded here; past the bound the socket is aborted."""
    unbounded = TcpTransport.wait_closed

    async def wait_closed(self) -> None:
        try:
            await asyncio.wait_for(unbounded(self), CLOSE_S)
        except asyncio.TimeoutError:
            self._io_writer.transport.abort()

    TcpTransport.wait_closed = wait_closed


_bound_transport_close()
