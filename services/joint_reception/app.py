"""Bootstrap: build the joint-reception app. The centre file is validated before anything starts."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI

from services.joint_reception import SERVICE_DIR
from services.joint_reception.domain.centre import Centre, CentreConfigError, load_centre
from services.joint_reception.entrypoints.consumer import CentreWorker
from services.joint_reception.entrypoints.grpc_server import JointReceptionServicer
from services.joint_reception.entrypoints.http import build_router
from services.joint_reception.handlers import CentreContext
from shared import web
from shared.config import NodeConfig
from shared.pb import joint_reception_pb2_grpc
from shared.runtime import ServiceRuntime

DEFAULT_CENTRE = Path(__file__).resolve().parents[2] / "infra" / "joint_reception" / "centre.toml"
log = logging.getLogger(__name__)


def hosted_centre(cfg: NodeConfig, default: Path = DEFAULT_CENTRE) -> Centre | None:
    """The centre this node hosts, if any. Only petition-bureau nodes host one: the file the node config
    names (it must name this node as host), or else the default file when it names this node."""
    explicit = cfg.joint_reception_centre
    if cfg.type != "petition_bureau":
        if explicit:
            raise CentreConfigError(f"{explicit}: 只有信访局节点设联合接访中心，{cfg.agency} 是 {cfg.type} "
                                    "(only petition-bureau nodes host a centre)")
        return None
    path = explicit or default
    if explicit is None and not path.exists():
        return None
    centre = load_centre(path)
    if centre.host != cfg.agency:
        if explicit:
            raise CentreConfigError(f"{path} [centre] host: 中心设在 {centre.host}，不是本节点 {cfg.agency} "
                                    "(the file names another host)")
        return None
    return replace(centre, division=centre.division or cfg.division)


def build_app(cfg: NodeConfig) -> FastAPI:
    centre = hosted_centre(cfg)  # a bad centre file stops start-up here, naming the line

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        rt = ServiceRuntime("joint_reception", cfg, SERVICE_DIR)
        ctx = CentreContext(cfg=cfg, directory=rt.directory, centre=centre)
        await rt.start([(joint_reception_pb2_grpc.add_JointReceptionServiceServicer_to_server,
                         JointReceptionServicer(rt, ctx), "lianfang.v1.JointReceptionService")])
        if centre is not None:
            log.info("%s hosts %s (%d windows)", cfg.agency, centre.name, len(centre.windows))
            worker = CentreWorker(rt, ctx)
            rt.spawn(worker.consume())
            rt.spawn(worker.dispatch())
        app.include_router(build_router(rt, ctx))
        yield
        await rt.close()

    title = f"联访 Lianfang joint reception — {cfg.name}" + (f"（{centre.name}）" if centre else "")
    app = FastAPI(title=title, version="1.0", lifespan=lifespan)
    web.install(app)
    return app
