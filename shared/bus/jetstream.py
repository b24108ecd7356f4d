"""JetStream client: connection that survives a down server, the ledger stream, publish with
Nats-Msg-Id de-duplication, durable pull consumers with explicit ack, and per-case history."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from shared import telemetry
from shared.bus.envelope import SUBJECT_ROOT, Event, case_history_filter
from shared.config import BusConfig

log = logging.getLogger(__name__)

Handler = Callable[[Event, int], Awaitable[None]]  # (event, stream sequence)


class PoisonEvent(Exception):
    """An event that can never be processed (malformed): it is terminated, not redelivered forever."""


class Bus:
    def __init__(self, cfg: BusConfig, name: str, replicas: int = 1):
        self.cfg, self.name, self.replicas = cfg, name, replicas
        self.nc: nats.NATS | None = None
        self.js = None
        self.connected = asyncio.Event()

    async def connect(self, stop: asyncio.Event) -> None:
        """Keep trying until the server answers: services serve HTTP while the bus is away."""
        delay = 0.2
        while not stop.is_set():
            try:
                self.nc = await nats.connect(servers=[self.cfg.url], user=self.cfg.user, password=self.cfg.password,
                                             name=self.name, connect_timeout=2, max_reconnect_attempts=-1,
                                             reconnect_time_wait=0.5, allow_reconnect=True)
                self.js = self.nc.jetstream(timeout=10)
                await self.ensure_stream()
                self.connected.set()
                return
            except Exception as e:
                log.info("bus not reachable yet (%s); retrying", e)
                if self.nc is not None:
                    await self.nc.close()
                    self.nc = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def ensure_stream(self) -> None:
        cfg = StreamConfig(name=self.cfg.stream, subjects=[f"{SUBJECT_ROOT}.>"], storage=StorageType.FILE,
                           duplicate_window=600, num_replicas=self.replicas)
        try:
            await self.js.stream_info(self.cfg.stream)
        except nats.js.errors.NotFoundError:
            try:
                await self.js.add_stream(cfg)
            except nats.js.errors.BadRequestError:
                pass  # another process created it between our two calls

    async def publish(self, subject: str, data: bytes, headers: dict[str, str]) -> int:
        if not self.connected.is_set():
            raise ConnectionError("bus not connected")
        ack = await self.js.publish(subject, data, headers=headers, timeout=5)
        return ack.seq

    async def consume(self, durable: str, handler: Handler, stop: asyncio.Event, batch: int = 100) -> None:
        """Durable pull consumer on every case event; ack after the handler committed."""
        await self.connected.wait()
        psub = None
        while not stop.is_set():
            try:
                if psub is None:
                    psub = await self.js.pull_subscribe(
                        f"{SUBJECT_ROOT}.>", durable=durable, stream=self.cfg.stream,
                        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=60, max_ack_pending=10000))
                try:
                    msgs = await psub.fetch(batch, timeout=1)
                except NatsTimeout:
                    continue
                for msg in msgs:
                    await self._deliver(msg, handler)
            except Exception as e:
                log.warning("consumer %s: %s", durable, e)
                await asyncio.sleep(1)

    async def _deliver(self, msg, handler: Handler) -> None:
        try:
            event = Event.from_json(msg.data)
        except (ValueError, TypeError) as e:
            log.error("poison message on %s terminated: %s", msg.subject, e)
            await msg.term()
            return
        try:
            with telemetry.tracer().start_as_current_span(f"consume {event.type}", context=telemetry.extract(event.trace),
                                                          kind=telemetry.trace.SpanKind.CONSUMER):
                await handler(event, msg.metadata.sequence.stream)
        except PoisonEvent as e:
            log.error("event %s terminated: %s", event.id, e)
            await msg.term()
            return
        except Exception as e:  # transient (database busy...): redeliver later
            log.warning("event %s failed, redelivering: %s", event.id, e)
            await msg.nak(delay=1)
            return
        await msg.ack()

    async def history(self, case_id: str) -> list[tuple[Event, int]]:
        """Every event of one case, in ledger order (for a node that comes to share a case late)."""
        await self.connected.wait()
        psub = await self.js.pull_subscribe(case_history_filter(case_id), durable=None, stream=self.cfg.stream,
                                            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL,
                                                                  ack_policy=AckPolicy.NONE, inactive_threshold=10))
        out: list[tuple[Event, int]] = []
        try:
            while True:
                try:
                    msgs = await psub.fetch(256, timeout=0.5)
                except NatsTimeout:
                    break
                out += [(Event.from_json(m.data), m.metadata.sequence.stream) for m in msgs]
                if msgs[-1].metadata.num_pending == 0:
                    break
        finally:
            await psub.unsubscribe()
        return out

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception:
                await self.nc.close()
