"""What every service process has: config, its database (migrated to head), the bus connection,
the outbox relay and its gRPC server. Built inside the app lifespan, never at import time."""
from __future__ import annotations

import argparse
import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Coroutine, Iterable

import uvicorn
from fastapi import FastAPI

from shared import logs, rpc, stacks, telemetry
from shared.bus.jetstream import Bus
from shared.bus.outbox import OutboxRelay
from shared.config import Directory, NodeConfig, load_directory, load_node
from shared.db.migrations import upgrade_head
from shared.db.plumbing import already_processed
from shared.db.session import Database

log = logging.getLogger(__name__)


KEEP_ALIVE_S = 30


class ServiceRuntime:
    def __init__(self, service: str, cfg: NodeConfig, service_dir: Path):
        self.service, self.cfg, self.service_dir = service, cfg, service_dir
        self.own = cfg.services[service]
        self.directory: Directory = load_directory(cfg.directory)
        self.db = Database(self.own.database)
        self.bus = Bus(cfg.bus, name=f"{cfg.agency}/{service}", replicas=cfg.bus.replicas, tls=cfg.tls)
        self.relay = OutboxRelay(self.db, self.bus)
        self.stop = asyncio.Event()
        self.grpc_server = None
        self.channels = rpc.Channels(cfg.tls)  # to other nodes' gRPC servers, kept open between calls
        self._tasks: list[asyncio.Task] = []

    @property
    def agency(self) -> str:
        return self.cfg.agency

    async def react_once(self, consumer: str, event_id: str, work: Callable) -> None:
        """Run `work(session)` for one ledger event at most once per consumer: the inbox row and the
        reaction commit together, so a redelivered or replayed event changes nothing."""
        def unit(s):
            if not already_processed(s, consumer, event_id):
                work(s)
        await self.db.run_async(unit)

    def spawn(self, coro: Coroutine) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        return task

    async def start(self, grpc_services: Iterable[tuple[object, object, str]] = ()) -> None:
        telemetry.setup(self.service, self.agency)
        stacks.install(asyncio.get_running_loop())  # kill -USR1: where every thread and task waits (OPERATIONS)
        # Threads mostly wait on the database's group commit; more of them let more work share a commit.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64,
                                                                           thread_name_prefix="lianfang"))
        if self.cfg.tls:
            rpc.check_identity(self.cfg.tls, self.agency)
        await asyncio.to_thread(upgrade_head, self.service_dir, self.own.database)
        self.spawn(self.bus.connect(self.stop))
        self.spawn(self.relay.run(self.stop))
        if self.own.grpc:
            self.grpc_server = await rpc.start_server(self.own.grpc, grpc_services, tls=self.cfg.tls)
        log.info("%s/%s started", self.agency, self.service)

    async def close(self) -> None:
        self.stop.set()
        if self.grpc_server is not None:
            await self.grpc_server.stop(5)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.channels.close()
        await self.bus.close()
        self.db.dispose()


def main(service: str, build_app: Callable[[NodeConfig], FastAPI]) -> None:
    """`python -m services.<name> --config node.toml`: serve until SIGINT/SIGTERM, then stop cleanly."""
    parser = argparse.ArgumentParser(prog=f"lianfang-{service}")
    parser.add_argument("--config", required=True, help="node config (TOML)")
    args = parser.parse_args()
    cfg = load_node(args.config)
    logs.setup(service, cfg.agency)  # JSON lines with the trace id; identity-shaped values masked
    host, port = cfg.services[service].http.rsplit(":", 1)
    uvicorn.Server(uvicorn.Config(build_app(cfg), host=host, port=int(port), log_level="warning",
                                  log_config=None,  # uvicorn's loggers propagate to the JSON handler
                                  # idle keep-alive connections stay open 30 s: with uvicorn's 5 s an
                                  # overloaded loop closed connections a client had just sent a request on
                                  timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=5)).run()
