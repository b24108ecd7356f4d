"""Bootstrap: build the intake app; everything is wired inside the lifespan."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.intake import SERVICE_DIR
from services.intake.entrypoints.audit import build_audit_router
from services.intake.entrypoints.consumer import Projector
from services.intake.entrypoints.grpc_server import CaseServicer
from services.intake.entrypoints.http import build_router
from services.intake.entrypoints.open311 import build_open311_router
from services.intake.handlers import IntakeContext
from services.intake.web import build_pages_router
from shared import web
from shared.config import NodeConfig
from shared.crypto import FieldCipher
from shared.pb import case_pb2_grpc
from shared.runtime import ServiceRuntime


def build_app(cfg: NodeConfig) -> FastAPI:
    holder: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        rt = ServiceRuntime("intake", cfg, SERVICE_DIR)
        ctx = IntakeContext(agency=cfg.agency, directory=rt.directory,
                            cipher=FieldCipher(cfg.secrets.field_key, cfg.secrets.old_field_keys),
                            pseudonym_key=cfg.secrets.pseudonym_key)
        await rt.start([(case_pb2_grpc.add_CaseServiceServicer_to_server, CaseServicer(rt, ctx),
                         "lianfang.v1.CaseService")])
        rt.spawn(Projector(rt).run())
        app.include_router(build_router(rt, ctx))
        app.include_router(build_open311_router(rt, ctx))
        app.include_router(build_audit_router(rt))
        app.include_router(build_pages_router(rt, ctx))
        holder["rt"] = rt
        yield
        await rt.close()

    app = FastAPI(title=f"联访 Lianfang intake — {cfg.name}", version="1.0", lifespan=lifespan)
    web.install(app)
    return app
