"""Bootstrap: build the supervision app; everything is wired inside the lifespan.

Settings (environment): LIANFANG_REMIND_DAYS — 催办 N days before a deadline, comma-separated (default
"3"); LIANFANG_SUPERVISION_INTERVAL_S — the checker's period in seconds (default 1);
LIANFANG_SUPERVISION_GRACE_S — the checker judges the clocks as they stood this many seconds ago, so
an act done just before a deadline whose event is still in flight is not taken for a breach (default 600);
LIANFANG_CLOCK_FILE — the injectable clock (shared/clock.py)."""
from __future__ import annotations

import os
from datetime import timedelta
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.supervision import SERVICE_DIR
from services.supervision.entrypoints.consumer import SupervisionWorker
from services.supervision.entrypoints.http import build_router
from services.supervision.handlers import SupervisionContext
from shared import web
from shared.config import NodeConfig
from shared.runtime import ServiceRuntime
from shared.wakeup import IDLE_S


def remind_days() -> tuple[int, ...]:
    raw = os.environ.get("LIANFANG_REMIND_DAYS", "3")
    try:
        days = tuple(sorted({int(x) for x in raw.split(",") if x.strip()}))
    except ValueError:
        raise SystemExit(f"LIANFANG_REMIND_DAYS must be comma-separated whole days, got {raw!r}") from None
    if any(d < 0 for d in days):
        raise SystemExit("LIANFANG_REMIND_DAYS: days must not be negative")
    return days


def build_app(cfg: NodeConfig) -> FastAPI:
    days = remind_days()
    interval = float(os.environ.get("LIANFANG_SUPERVISION_INTERVAL_S", str(IDLE_S)))
    grace = timedelta(seconds=float(os.environ.get("LIANFANG_SUPERVISION_GRACE_S", "600")))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        rt = ServiceRuntime("supervision", cfg, SERVICE_DIR)
        ctx = SupervisionContext(cfg=cfg, directory=rt.directory, remind_days=days, grace=grace)
        await rt.start()  # gRPC: health and reflection only (supervision answers no calls)
        worker = SupervisionWorker(rt, ctx, interval_s=interval)
        rt.spawn(worker.consume())
        rt.spawn(worker.check())
        app.include_router(build_router(rt, ctx))
        yield
        await rt.close()

    app = FastAPI(title=f"联访 Lianfang supervision — {cfg.name}", version="1.0", lifespan=lifespan)
    web.install(app)
    return app
