"""Pull requests that hand over events the moment they are there.

nats.py's PullSubscription.fetch(batch, timeout), once it has had to wait, keeps the first message until
the batch is full or the timeout has passed. At low load every hop of a case (intake → routing → the
target node → supervision) therefore waited up to that timeout: about a second from desk to 签收.
Here one pull request stays open on the server; what it delivers is handed over as soon as it arrives,
whatever has arrived with it included, and what it brings later waits in the inbox for the next call."""
from __future__ import annotations

import asyncio
import json
import uuid

import nats
from nats.aio.msg import Msg

STATUS, DESCRIPTION = "Status", "Description"  # headers of the server's status messages (408 expired, 409 …)


class ConsumerGone(Exception):
    """The durable consumer was deleted on the server: make it again."""


class Puller:
    def __init__(self, nc: nats.NATS, stream: str, durable: str, inbox_prefix: str):
        self.nc = nc
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.inbox = f"{inbox_prefix}.pull.{uuid.uuid4().hex}"
        self._queue: asyncio.Queue[Msg | None] = asyncio.Queue()  # (None: interrupted)
        self._open = 0  # messages the pull request on the server may still deliver (0: none is open)
        self._sub = None

    async def start(self) -> "Puller":
        self._sub = await self.nc.subscribe(self.inbox, cb=self._queue.put)
        return self

    async def next_batch(self, batch: int, wait: float) -> list[Msg]:
        """Up to `batch` messages, as soon as there is one; [] after `wait` seconds without any."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            if self._queue.empty() and self._open == 0:
                await self.nc.publish(self.subject, json.dumps({"batch": batch, "expires": int(wait * 1e9)}).encode(),
                                      reply=self.inbox)
                self._open = batch
            try:
                # (a second more than the request lives: its 408 ends it; without one it was lost in a reconnect)
                msg = await asyncio.wait_for(self._queue.get(), timeout=max(deadline - loop.time(), 0) + 1)
            except asyncio.TimeoutError:
                self._open = 0
                return []
            if msg is None:  # interrupted (the consumer is stopping)
                return []
            if self._data(msg):
                break
            if loop.time() >= deadline:
                return []
        out = [msg]
        await asyncio.sleep(0)  # let what arrived in the same read reach the queue
        while len(out) < batch and not self._queue.empty():
            if (m := self._queue.get_nowait()) is not None and self._data(m):
                out.append(m)
        return out

    def interrupt(self) -> None:
        """End a next_batch that is waiting now, at once (with no messages)."""
        self._queue.put_nowait(None)

    def _data(self, msg: Msg) -> bool:
        """A message to deliver, or a status message that ends the pull request (408 expired, 409 …)."""
        if msg.headers and STATUS in msg.headers:
            if msg.headers[STATUS] != "100":  # (100: heartbeat; the request goes on)
                self._open = 0
            if msg.headers[STATUS] == "409" and "deleted" in msg.headers.get(DESCRIPTION, "").lower():
                raise ConsumerGone(msg.headers.get(DESCRIPTION))
            return False
        self._open = max(self._open - 1, 0)
        return True

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
