"""Routing handlers: decide and offer at the receiving node; sign for or return at the target node."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from services.routing.adapters.orm import OfferIn, OfferOut, RoutedCase
from services.routing.domain.rules import Rule, decide
from shared import divisions, ledger
from shared.bus import outbox
from shared.bus.envelope import Event
from shared.config import SERVICE_NAMES, Directory, NodeConfig
from shared.db.base import utcnow
from shared.db import rows
from shared.db.plumbing import OutboxRow, audit
from shared.db.prepared import Prepared
from shared.errors import Conflict, NotFound

FLAG_AFTER_TRIES = 3


@dataclass
class RoutingContext:
    cfg: NodeConfig
    directory: Directory
    rules: list[Rule]

    @property
    def agency(self) -> str:
        return self.cfg.agency


def _stage(s: Session, ctx: RoutingContext, case_id: str, type_: str, payload: dict, audience, actor="routing") -> Event:
    return outbox.stage(s, Event(case_id=case_id, type=type_, agency=ctx.agency, actor=actor, payload=payload,
                                 audience=sorted(audience)))


def on_registered(s: Session, ctx: RoutingContext, ev: Event) -> None:
    """首问负责: the node that received the petition routes it (and holds it until someone signs)."""
    if ev.agency != ctx.agency or rows.row_exists(s, RoutedCase.__table__, case_id=ev.case_id):
        return
    p = ev.payload
    rc = RoutedCase(case_id=ev.case_id, category=p.get("category"), division=p["division"], title=p["title"],
                    text=p["title"] + p["content"], reported_agency=p.get("reported_agency"), audience=ev.audience,
                    attempt=0, returns=0, excluded=[], decisions=[])  # (not added to the session: inserted below)
    route(s, ctx, rc)
    rows.insert_object(s, rc)  # (not flushed by the ORM: that flush was ≈ 10 % of the desk's routing CPU)


def route(s: Session, ctx: RoutingContext, rc: RoutedCase) -> None:
    d = decide(ctx.rules, ctx.directory, category=rc.category, division=rc.division, text=rc.text,
               origin=ctx.agency, excluded=set(rc.excluded), reported=rc.reported_agency)
    rc.attempt += 1
    rc.audience = sorted((set(rc.audience) | {d.target, *d.co_handlers}) - {rc.reported_agency})
    record = {**asdict(d), "attempt": rc.attempt, "category": rc.category or "其他", "lead": d.target}
    rc.decisions = [*rc.decisions, record]
    # The decision travels with the event it leads to (one event less per petition on every consumer
    # of the ledger than a case.routed of its own); the petitioner's progress view shows none of it.
    if d.manual:
        _stage(s, ctx, rc.case_id, ledger.MANUAL_REVIEW, {"bureau": d.target, "reason": d.reason, "routing": record},
               rc.audience)
        return
    if "legal_channel" in d.flags and "legal_referral" in SERVICE_NAMES:
        # 诉访分离: not offered as a petition; this node's legal-referral service classifies and refers it.
        _stage(s, ctx, rc.case_id, ledger.LEGAL_HANDOVER,
               {"attempt": rc.attempt, "rule": d.rule, "reason": d.reason, "routing": record}, rc.audience)
        return
    offered = _stage(s, ctx, rc.case_id, ledger.OFFERED, {"to": d.target, "lead": d.target, "co_handlers": d.co_handlers,
                                                          "attempt": rc.attempt, "routing": record}, rc.audience)
    rows.insert_object(s, OfferOut(case_id=rc.case_id, attempt=rc.attempt, target=d.target, event_id=offered.id,
                                   status="pending", tries=0, next_try_at=utcnow(), flagged=False))


def on_returned(s: Session, ctx: RoutingContext, ev: Event) -> None:
    """退回 re-routes without the returning body; too many returns → the bureau decides by hand."""
    rc = s.get(RoutedCase, ev.case_id)
    if rc is None or ev.payload.get("attempt") != rc.attempt:
        return  # not ours, or an answer to an offer already superseded
    rc.returns += 1
    rc.excluded = sorted(set(rc.excluded) | {ev.agency})
    if rc.returns >= ctx.cfg.max_returns:
        bureau = decide(ctx.rules, ctx.directory, category="其他", division=rc.division, text="",
                        origin=ctx.agency).target
        _stage(s, ctx, rc.case_id, ledger.MANUAL_REVIEW,
               {"bureau": bureau, "reason": f"已被退回{rc.returns}次，转信访局人工分办"}, rc.audience)
        return
    route(s, ctx, rc)


# Built once: a statement built anew works out its cache key on every dispatcher round. Offers are marked
# delivered by a prepared statement (shared/db/prepared.py): loading each as an ORM object to set its
# status cost ≈ 13 % of the desk's routing CPU (py-spy).
_DUE = (select(OfferOut, RoutedCase, OutboxRow.headers)
        .join(RoutedCase, RoutedCase.case_id == OfferOut.case_id)
        .join(OutboxRow, OutboxRow.event_id == OfferOut.event_id)
        .where(OfferOut.status == "pending", OfferOut.next_try_at <= bindparam("now"),
               OutboxRow.published_at.is_not(None))
        .order_by(OfferOut.next_try_at).limit(bindparam("batch")))
DUE_BATCH = 100  # offers a dispatcher round takes at most
_DELIVERED = Prepared(OfferOut.__table__.update().where(OfferOut.__table__.c.case_id == bindparam("the_case"),
                                                         OfferOut.__table__.c.attempt == bindparam("the_attempt")))


def due_offers(s: Session) -> list[tuple[OfferOut, RoutedCase, dict]]:
    """Offers whose 交办 event is already on the bus (so no answer can overtake it) and due a try, with
    the trace context the 交办 event was staged in (the call continues that trace)."""
    return [(o, rc, headers) for o, rc, headers in s.execute(_DUE, {"now": utcnow(), "batch": DUE_BATCH})]


def offers_delivered(s: Session, offers: list[tuple[str, int]]) -> None:
    """(case id, attempt) of each offer the target node has answered."""
    _DELIVERED.run(s, [{"the_case": case_id, "the_attempt": attempt, "status": "delivered"}
                       for case_id, attempt in offers])


def offer_failed(s: Session, ctx: RoutingContext, case_id: str, attempt: int, error: str) -> None:
    o = s.get(OfferOut, (case_id, attempt))
    o.tries += 1
    o.last_error = error[:500]
    o.next_try_at = utcnow() + timedelta(seconds=min(0.5 * 2 ** o.tries, 10))
    if o.tries >= FLAG_AFTER_TRIES and not o.flagged:
        o.flagged = True
        rc = s.get(RoutedCase, case_id)
        _stage(s, ctx, case_id, ledger.OFFER_UNANSWERED, {"to": o.target, "tries": o.tries, "attempt": attempt,
                                                   "note": "承办机构未在期限内答复，已提请督办；首问机构继续负责"},
               rc.audience)


# --- at the target node -------------------------------------------------------------------------

def receive_offer(s: Session, ctx: RoutingContext, req) -> OfferIn:
    """交办 arrives. Idempotent per (case, attempt). Under auto_sign_for, sign or return at once."""
    # (a key lookup first: loading through the ORM cost more than the rest of a new offer's checks)
    if rows.row_exists(s, OfferIn.__table__, case_id=req.case_id, attempt=req.attempt):
        return s.get(OfferIn, (req.case_id, req.attempt))
    offer = OfferIn(case_id=req.case_id, attempt=req.attempt, from_agency=req.from_agency, category=req.category,
                    division=req.division, title=req.title, rule=req.rule, reason=req.reason,
                    skipped_level=req.skipped_level, audience=sorted(set(req.audience) | {ctx.agency}),
                    status="pending", received_at=utcnow())  # (not added to the session: inserted below)
    audit(s, agency=ctx.agency, actor=req.from_agency, action="offer.receive", object_id=req.case_id)
    if ctx.cfg.auto_sign_for:
        problem = check_offer(ctx, offer)
        if problem:
            return_offer(s, ctx, offer, "auto", problem)
        else:
            sign_for(s, ctx, offer, "auto")
    rows.insert_object(s, offer)  # (once answered; not flushed by the ORM: ≈ 8 % of the 人社局's routing CPU)
    return offer


def check_offer(ctx: RoutingContext, offer: OfferIn) -> str | None:
    """The automatic checks before 签收: the matter lies within this body's jurisdiction."""
    if not divisions.contains(ctx.cfg.division, offer.division):
        return f"不属本机构辖区（{divisions.name(offer.division)}不在{divisions.name(ctx.cfg.division)}范围内）"
    return None


def sign_for(s: Session, ctx: RoutingContext, offer: OfferIn, actor: str) -> None:
    """签收: this body becomes the holder."""
    if offer.status != "pending":
        raise Conflict(f"该交办已{ {'signed': '签收', 'returned': '退回'}[offer.status] } (already answered)")
    offer.status = "signed"
    _stage(s, ctx, offer.case_id, ledger.SIGNED_FOR, {"attempt": offer.attempt}, offer.audience, actor)
    audit(s, agency=ctx.agency, actor=actor, action="offer.sign_for", object_id=offer.case_id)


def return_offer(s: Session, ctx: RoutingContext, offer: OfferIn, actor: str, reason: str) -> None:
    """退回 with a reason: the deciding node re-routes."""
    if offer.status != "pending":
        raise Conflict("该交办已处理 (already answered)")
    offer.status, offer.answer_reason = "returned", reason
    _stage(s, ctx, offer.case_id, ledger.RETURNED, {"attempt": offer.attempt, "reason": reason}, offer.audience, actor)
    audit(s, agency=ctx.agency, actor=actor, action="offer.return", object_id=offer.case_id, detail=reason)


def pending_offer(s: Session, case_id: str) -> OfferIn:
    offer = s.scalars(select(OfferIn).where(OfferIn.case_id == case_id).order_by(OfferIn.attempt.desc())).first()
    if offer is None:
        raise NotFound(f"本机构没有案件 {case_id} 的交办 (no offer)")
    return offer
