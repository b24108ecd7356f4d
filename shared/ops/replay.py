"""`lianfang replay`: rebuild a node's read model from the ledger (从账本重建读模型).

The intake read model — cases, case_events, query_codes, registrations — is a pure fold of the ledger
(`services.intake.handlers.project_event`), so it can always be rebuilt: the tables are emptied and every
event of LF_LEDGER is applied again in stream order, exactly as the service's Projector does (a node that
came to share a case late is given that case's earlier history, backfill=True). The node's own records
— encrypted petitioner identity, idempotency keys, the audit trail — are not touched.

The service must be stopped: its Projector would write into the tables while they are rebuilt. We refuse
when its HTTP port answers. Wipe and replay are one transaction, so a failure leaves the old read model."""
from __future__ import annotations

import asyncio
import getpass
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import delete, func, select

from shared.bus.envelope import SUBJECT_ROOT, Event
from shared.bus.jetstream import Bus, published_by_claimant
from shared.config import NodeConfig
from shared.db.migrations import upgrade_head
from shared.db.plumbing import audit
from shared.db.session import Database
from shared.ops.common import OpsError, node_bus

REPO = Path(__file__).resolve().parent.parent.parent
REPLAYABLE = ("intake",)
Progress = Callable[[int, int], None]  # (events applied so far, events on the ledger)


@dataclass
class ReplayResult:
    events: int          # ledger messages read
    cases: int           # cases in the rebuilt read model
    last_seq: int        # the last ledger sequence replayed


def port_answers(addr: str, timeout: float = 1.0) -> bool:
    host, port = addr.rsplit(":", 1)
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::", "[::]") else host
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


async def read_ledger(bus: Bus, stream: str, batch: int = 256):
    """Every message of the ledger in stream order, as (event | None, stream seq, pending after it).
    An ephemeral consumer that acks nothing: the services' durable consumers are untouched."""
    psub = await bus.js.pull_subscribe(f"{SUBJECT_ROOT}.>", durable=None, stream=stream,
                                       config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL,
                                                             ack_policy=AckPolicy.NONE, inactive_threshold=30),
                                       inbox_prefix=f"{bus.inbox}.".encode())
    try:
        while True:
            try:
                msgs = await psub.fetch(batch, timeout=2)
            except NatsTimeout:
                return
            for m in msgs:
                try:
                    ev = Event.from_json(m.data)
                    ev = ev if published_by_claimant(m.subject, ev) else None  # forged: the consumers drop it too
                except (ValueError, TypeError):
                    ev = None  # poison: terminated by the consumers, never applied
                yield ev, m.metadata.sequence.stream, m.metadata.num_pending
            if msgs[-1].metadata.num_pending == 0:
                return
    finally:
        await psub.unsubscribe()


def _intake_tables():
    from services.intake.adapters.orm import CaseEventRow, CaseRow, QueryCodeRow, RegistrationRow
    return [CaseEventRow, QueryCodeRow, RegistrationRow, CaseRow]


async def replay(cfg: NodeConfig, service: str = "intake", *, every: int = 1000, progress: Progress | None = None,
                 actor: str | None = None) -> ReplayResult:
    if service not in REPLAYABLE:
        raise OpsError(f"服务 {service} 没有可重放的读模型 no replayable read model (only: {', '.join(REPLAYABLE)})")
    if service not in cfg.services:
        raise OpsError(f"节点 {cfg.agency} 未配置服务 node runs no {service}")
    own = cfg.services[service]
    if port_answers(own.http):
        raise OpsError(f"{cfg.agency}/{service} 仍在运行（{own.http} 有应答），请先停止该服务 the service still "
                       f"answers on {own.http}: stop it before replaying")
    from services.intake import handlers
    await asyncio.to_thread(upgrade_head, REPO / "services" / service, own.database)  # a deleted db file: made anew
    db = Database(own.database)
    try:
        async with node_bus(cfg, "replay") as bus:
            total = (await bus.js.stream_info(cfg.bus.stream)).state.last_seq
            with db.unit_of_work() as s:
                for table in _intake_tables():
                    s.execute(delete(table))
                events = last = 0
                async for ev, seq, _pending in read_ledger(bus, cfg.bus.stream):
                    events, last = events + 1, seq
                    if ev is not None:
                        if not handlers.project_event(s, cfg.agency, ev, seq):
                            # the node came to share the case late: its history up to here, in order
                            for past, past_seq in await bus.history(ev.case_id):
                                if past_seq <= seq:
                                    handlers.project_event(s, cfg.agency, past, past_seq, True)
                        s.flush()
                    if progress and every and events % every == 0:
                        progress(events, total)
                cases = s.scalar(select(func.count()).select_from(_intake_tables()[-1]))
                audit(s, agency=cfg.agency, actor=actor or f"operator:{getpass.getuser()}", action="readmodel.replay",
                      object_id=service, detail=f"rebuilt from {cfg.bus.stream}: {events} events up to seq {last}, "
                                                f"{cases} cases")
    finally:
        db.dispose()
    return ReplayResult(events=events, cases=cases, last_seq=last)
