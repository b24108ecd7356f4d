"""Three adjustments to nats-py 2.10, applied once on import (shared.bus.jetstream imports this module)."""
from __future__ import annotations

import asyncio
import logging

import nats.aio.client
from nats import errors
from nats.aio.client import DEFAULT_BUFFER_SIZE, Client
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


def _read_loop_ends_at_eof_while_connecting() -> None:
    """A server that closes the connection between the client's CONNECT and its PONG (killed, or shutting
    down) leaves nats-py 2.10's client "connecting" with its read loop started. That loop checks for the
    end of the stream only when "connected", and a read at the end returns b"" at once: it spins without
    ever yielding, and the service's event loop runs nothing else again (nats-io/nats.py#490, fixed
    upstream in #719 after 2.10). Seen in test_whole_bus_down_under_load: a service stopped answering
    anything, and py-spy showed its main thread in Client._read_loop. As upstream: the end of the stream
    ends the loop while connecting too (the reconnect attempt that was connecting then fails and retries)."""

    async def _read_loop(self) -> None:
        while True:
            try:
                if self.is_closed or self.is_reconnecting or self._transport is None:
                    break
                if (self.is_connected or self.is_connecting) and self._transport.at_eof():
                    err = errors.UnexpectedEOF()
                    await self._error_cb(err)
                    await self._process_op_err(err)
                    break
                b = await self._transport.read(DEFAULT_BUFFER_SIZE)
                await self._ps.parse(b)
            except errors.ProtocolError:
                await self._process_op_err(errors.ProtocolError())
                break
            except OSError as e:
                await self._process_op_err(e)
                break
            except asyncio.CancelledError:
                break
            except Exception as ex:
                logging.getLogger("nats.aio.client").error("nats: encountered error", exc_info=ex)
                break

    Client._read_loop = _read_loop


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
_read_loop_ends_at_eof_while_connecting()
nats.aio.client.BytesParser = HeaderParser  # (the name nats-py's Client makes its header parser with)
