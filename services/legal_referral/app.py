"""Bootstrap: build the legal-referral app; the channel file is validated before anything starts."""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.legal_referral import SERVICE_DIR
from services.legal_referral.domain.channels import DEFAULT_CHANNELS, load_channels
from services.legal_referral.entrypoints.consumer import LegalWorker
from services.legal_referral.entrypoints.grpc_server import LegalReferralServicer
from services.legal_referral.entrypoints.http import build_router
from services.legal_referral.handlers import LegalContext
from shared import web
from shared.config import NodeConfig, load_directory
from shared.pb import referral_pb2_grpc
from shared.runtime import ServiceRuntime


def build_app(cfg: NodeConfig) -> FastAPI:
    catalogue = load_channels(cfg.legal_channels or DEFAULT_CHANNELS)  # a bad file stops start-up, naming the line

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        rt = ServiceRuntime("legal_referral", cfg, SERVICE_DIR)
        ctx = LegalContext(cfg=cfg, directory=load_directory(cfg.directory), catalogue=catalogue)
        await rt.start([(referral_pb2_grpc.add_LegalReferralServiceServicer_to_server, LegalReferralServicer(rt, ctx),
                         "lianfang.v1.LegalReferralService")])
        worker = LegalWorker(rt, ctx)
        rt.spawn(worker.consume())
        rt.spawn(worker.dispatch())
        app.include_router(build_router(rt, ctx))
        yield
        await rt.close()

    app = FastAPI(title=f"联访 Lianfang legal referral — {cfg.name}", version="1.0", lifespan=lifespan)
    web.install(app)
    return app
