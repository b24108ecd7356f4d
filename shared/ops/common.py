"""What the operator commands share: the node's own bus connection, and whether a service answers."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from typing import AsyncIterator

from shared.bus.jetstream import Bus
from shared.config import NodeConfig

BUS_TIMEOUT_S = 20.0


class OpsError(Exception):
    """A problem the operator must fix (bus unreachable, service still running...): exit code 2."""


def local_http(addr: str) -> str:
    """A service's HTTP address as reachable from the node itself (0.0.0.0 listens on loopback too)."""
    host, port = addr.rsplit(":", 1)
    if host in ("0.0.0.0", "", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def healthz(addr: str, timeout: float = 2.0) -> dict:
    """{"up": bool, "bus": bool|None, "detail": str} from the service's GET /healthz."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(local_http(addr) + "/healthz", timeout=timeout) as r:
            body = json.loads(r.read() or b"{}")
            return {"up": r.status == 200, "bus": body.get("bus"), "detail": f"HTTP {r.status}"}
    except urllib.error.HTTPError as e:
        return {"up": False, "bus": None, "detail": f"HTTP {e.code}"}
    except (OSError, ValueError) as e:
        return {"up": False, "bus": None, "detail": str(getattr(e, "reason", e))}


@asynccontextmanager
async def node_bus(cfg: NodeConfig, purpose: str) -> AsyncIterator[Bus]:
    """The node's own bus connection (its NATS user, its TLS certificate), as its services make it."""
    bus = Bus(cfg.bus, name=f"{cfg.agency}/lianfang-{purpose}", replicas=cfg.bus.replicas, tls=cfg.tls)
    stop = asyncio.Event()
    try:
        await asyncio.wait_for(bus.connect(stop), timeout=BUS_TIMEOUT_S)
    except asyncio.TimeoutError:
        stop.set()
        await bus.close()
        raise OpsError(f"总线不可达 cannot reach the bus at {cfg.bus.url} within {BUS_TIMEOUT_S:.0f}s") from None
    try:
        yield bus
    finally:
        stop.set()
        await bus.close()
