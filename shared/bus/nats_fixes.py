"""Two adjustments to nats-py 2.10, applied once on import (shared.bus.jetstream imports this module)."""
from __future__ import annotations

import asyncio

import nats.aio.client
from nats.aio.transport import TcpTransport

CLOSE_S = 3.0  # how long closing a connection may wait for the server (then the socket is dropped)


def _bound_transport_close() -> None:
    """nats-py awaits its transport's close without a bound, in close() and before every reconnect
    (nats-io/nats.py#598, #671). Over TLS that close waits for the server's answer, which a server that
    is gone or frozen may never give: the client then neither closes nor reconnects, and the service
    waits on the bus for good (seen in test_faults: a routing service stuck for minutes in Bus.connect's
    close after a first attempt timed out). Bounded here; past the bound the socket is aborted."""
    unbounded = TcpTransport.wait_closed

    async def wait_closed(self) -> None:
        try:
            await asyncio.wait_for(unbounded(self), CLOSE_S)
        except asyncio.TimeoutError:
            self._io_writer.transport.abort()

    TcpTransport.wait_closed = wait_closed


class HeaderParser:
    """What nats-py reads every message's headers with, in place of the standard library's e-mail parser
    (its `BytesParser`): ≈ 1 µs a message instead of ≈ 20. Every delivery, acknowledgement reply and
    history read carries headers, so the e-mail parser took a fifth of a node's CPU where it reads
    case histories (py-spy, `make bench`). NATS headers are `Name: value` lines (no folded lines); a
    line without a colon is skipped, a repeated name keeps its last value — as the e-mail parser's
    mapping did for nats-py."""

    def parsebytes(self, raw: bytes) -> dict[str, str]:
        out = {}
        for line in raw.decode("utf-8", "surrogateescape").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon and name.strip():
                out[name.strip()] = value.strip()
        return out


_bound_transport_close()
nats.aio.client.BytesParser = HeaderParser  # (the name nats-py's Client makes its header parser with)
