"""Bootstrap: build the routing app; rules are validated before anything starts."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.routing import SERVICE_DIR
from services.routing.domain.rules import load_rules
from services.routing.entrypoints.consumer import RoutingWorker
from services.routing.entrypoints.grpc_server import AssignmentServicer
from services.routing.entrypoints.http import build_router
from services.routing.handlers import RoutingContext
from shared import web
from shared.config import NodeConfig, load_directory
from shared.pb import assignment_pb2_grpc
from shared.runtime import ServiceRuntime

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "infra" / "routing" / "rules.toml"


def build_app(cfg: NodeConfig) -> FastAPI:
    rules = load_rules(cfg.rules or DEFAULT_RULES)  # a bad rule file stops start-up here, naming the line

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        rt = ServiceRuntime("routing", cfg, SERVICE_DIR)
        ctx = RoutingContext(cfg=cfg, directory=load_directory(cfg.directory), rules=rules)
        await rt.start([(assignment_pb2_grpc.add_AssignmentServiceServicer_to_server, AssignmentServicer(rt, ctx),
                         "lianfang.v1.AssignmentService")])
        worker = RoutingWorker(rt, ctx)
        rt.spawn(worker.consume())
        rt.spawn(worker.dispatch())
        app.include_router(build_router(rt, ctx))
        yield
        await rt.close()

    app = FastAPI(title=f"联访 Lianfang routing — {cfg.name}", version="1.0", lifespan=lifespan)
    web.install(app)
    return app
