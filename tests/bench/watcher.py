"""Watches the ledger from outside the nodes: an ephemeral pull consumer on the whole stream
(lf.ev.>), read in a thread of its own. Each event is timed by the JetStream store timestamp carried
in its delivery metadata (wall clock, the server's: the moment the event was durably on the ledger),
so the watcher's own delays do not count. On a secured federation it connects like a node does —
TLS with a certificate from the federation CA and a NATS user of its own, which may read the stream
through its own inbox but not subscribe to lf.ev.> directly."""
from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from dataclasses import dataclass

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.bus.envelope import SUBJECT_ROOT
from shared.config import BusConfig


@dataclass(frozen=True)
class Seen:
    stored: float     # JetStream store time (epoch seconds)
    arrived: float    # when the watcher read it (epoch seconds)
    agency: str       # the publishing agency


class BusWatcher:
    def __init__(self, url: str, *, user: str | None = None, password: str | None = None,
                 tls: ssl.SSLContext | None = None, inbox_prefix: str = "_INBOX",
                 stream: str = BusConfig().stream):
        self.url, self.user, self.password, self.tls = url, user, password, tls
        self.inbox_prefix, self.stream = inbox_prefix, stream
        self.seen: dict[str, dict[str, Seen]] = {}  # case_id → event type → first sighting
        self.count = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-ledger-watcher", daemon=True)

    def start(self, timeout: float = 15) -> "BusWatcher":
        self._thread.start()
        if not self._ready.wait(timeout) or self._error:
            raise RuntimeError(f"ledger watcher could not read the stream: {self._error!r}")
        return self

    def first(self, case_id: str, type_: str) -> Seen | None:
        return self.seen.get(case_id, {}).get(type_)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # reported through start()
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async def bus_error(e: Exception) -> None:
            # (closing over TLS can meet the server's last bytes after its close_notify: nats-py's default
            # handler printed a traceback for that at the end of every few runs)
            if not self._stop.is_set():
                print(f"bench watcher: bus error: {e!r}", flush=True)

        nc = await nats.connect(self.url, name="bench-watcher", user=self.user, password=self.password, tls=self.tls,
                                inbox_prefix=self.inbox_prefix, max_reconnect_attempts=-1, error_cb=bus_error)
        js = nc.jetstream(timeout=10)
        for _ in range(100):  # the first node to connect creates the stream
            try:
                await js.stream_info(self.stream)
                break
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.2)
        psub = await js.pull_subscribe(f"{SUBJECT_ROOT}.>", durable=None, stream=self.stream,
                                       config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL,
                                                             ack_policy=AckPolicy.NONE, inactive_threshold=60),
                                       inbox_prefix=f"{self.inbox_prefix}.".encode())
        self._ready.set()
        while not self._stop.is_set():
            try:
                msgs = await psub.fetch(256, timeout=0.2)
            except (NatsTimeout, asyncio.TimeoutError):
                continue
            now = time.time()
            for m in msgs:
                self.count += 1
                try:
                    ev = json.loads(m.data)
                    seen = Seen(m.metadata.timestamp.timestamp(), now, ev["agency"])
                    self.seen.setdefault(ev["case_id"], {}).setdefault(ev["type"], seen)
                except (ValueError, KeyError, TypeError):
                    pass
        await psub.unsubscribe()
        await nc.close()

    def stop(self) -> None:
        if self._loop and self._stop and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
