"""Legal-referral handlers (诉访分离). Each runs inside the caller's unit of work.

At the node that received the case (首问): remember its facts, classify it when routing hands it over,
refer it to the body of the channel, give the petitioner the written notice once that body accepted,
re-classify when it declined, and take a clerk's override. At the receiving body: accept (receipt
number) or decline a referral, report its progress, record the 检调对接 "5+1" steps (procuratorate),
decide relief requests. Every node: the relief totals of the cases it shares."""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, fields
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.legal_referral.adapters.orm import LegalCase, ReceiptCounter, ReferralIn, ReferralOut, ReliefRow
from services.legal_referral.domain import channels, notice, steps
from services.legal_referral.domain.channels import Catalogue, Classification
from services.legal_referral.domain.receipts import receipt_number
from services.legal_referral.domain.relief import from_fen, to_fen, yuan
from shared import clock, divisions, ledger
from shared.bus import outbox
from shared.bus.envelope import Event
from shared.config import Directory, NodeConfig
from shared.db import rows
from shared.db.base import utcnow
from shared.db.plumbing import OutboxRow, audit
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.pb import referral_pb2

FLAG_AFTER_TRIES = 3
CHANNEL, RELIEF = "channel", "relief"
IN_CHANNEL = ("accepted", "filed", "decided", "withdrawn")  # a legal body has the case
PROGRESS_EVENTS = {"filed": ledger.REFERRAL_FILED, "decided": ledger.REFERRAL_DECIDED,
                   "withdrawn": ledger.REFERRAL_WITHDRAWN}
PROGRESS_FROM = {"filed": ("accepted",), "decided": ("accepted", "filed"), "withdrawn": ("accepted", "filed")}
STATUS_LABELS = {"pending": "待接收", "accepted": "已接收", "declined": "已退回", "superseded": "已被新的移送取代",
                 "filed": "已立案受理", "decided": "已作出决定", "withdrawn": "申请人已撤回",
                 "approved": "已批准救助", "refused": "不予救助"}


class StepMissing(Conflict):
    """检调对接: a step out of order (409); the body names the step that is missing."""

    def __init__(self, message: str, missing: str | None):
        super().__init__(message, "step")
        self.missing = missing

    def body(self) -> dict:
        b = super().body()
        if self.missing:
            b["error"]["missing_step"] = self.missing
        return b


@dataclass
class LegalContext:
    cfg: NodeConfig
    directory: Directory
    catalogue: Catalogue

    @property
    def agency(self) -> str:
        return self.cfg.agency


def _stage(s: Session, ctx: LegalContext, case_id: str, type_: str, payload: dict, audience,
           actor: str = "legal_referral") -> Event:
    return outbox.stage(s, Event(case_id=case_id, type=type_, agency=ctx.agency, actor=actor, payload=payload,
                                 audience=sorted(set(audience))))


def _audience(base, *extra: str | None, reported: str | None) -> list[str]:
    """Who shares the case: never the body reported on (检举控告)."""
    return sorted((set(base) | {x for x in extra if x}) - {reported, None})


def _day(iso: str) -> str:
    d = ledger.local_date(iso)
    return f"{d.year}年{d.month}月{d.day}日"


def _label(ctx: LegalContext, agency: str | None) -> str | None:
    entry = ctx.directory.get(agency) if agency else None
    return entry.name if entry else agency


# --- at the node that received the case: classify and refer ------------------------------------------

def on_registered(s: Session, ctx: LegalContext, ev: Event) -> None:
    """Remember the facts of every case this node registered: routing may hand it over later."""
    if ev.agency != ctx.agency or rows.row_exists(s, LegalCase.__table__, case_id=ev.case_id):
        return  # (a key lookup: loading through the ORM cost more than the rest of a registration's handling)
    p = ev.payload
    # (inserted without the ORM's flush, which was a quarter of the desk's legal_referral CPU: py-spy)
    rows.insert_object(s, LegalCase(
        case_id=ev.case_id, category=p.get("category"), division=p["division"], title=p["title"],
        text=p["title"] + p["content"], reported_agency=p.get("reported_agency"), registered_at=ev.time,
        audience=_audience(ev.audience, reported=p.get("reported_agency")), status="registered", attempt=0,
        classification=None, history=[], declines=[], excluded_channels=[]))


def on_handover(s: Session, ctx: LegalContext, ev: Event) -> None:
    """Routing found a 涉法涉诉 matter: classify it and refer it (诉访分离)."""
    if ev.agency != ctx.agency:
        return
    lc = s.get(LegalCase, ev.case_id)
    if lc is None:
        raise LookupError(f"case {ev.case_id} handed over before its registration was seen")  # redelivered
    if lc.status != "registered":
        return
    lc.audience = _audience(lc.audience, *ev.audience, reported=lc.reported_agency)
    lc.status = "classifying"
    refer(s, ctx, lc, _classify(ctx, lc), "legal_referral")


def _classify(ctx: LegalContext, lc: LegalCase) -> Classification | None:
    return channels.classify(ctx.catalogue, ctx.directory, category=lc.category, text=lc.text, division=lc.division,
                             reported_agency=lc.reported_agency, excluded_channels=set(lc.excluded_channels))


def refer(s: Session, ctx: LegalContext, lc: LegalCase, c: Classification | None, actor: str) -> None:
    """Record the classification and refer the case to its body; without one, the petition bureau decides."""
    if c is None:
        bureau = channels.find_body(ctx.directory, "petition_bureau", lc.division, set())
        why = "没有适用的法律渠道规则" if not lc.declines else \
            "已被" + "、".join(f"{_label(ctx, d['by'])}（{d['channel_label']}）" for d in lc.declines) + "退回，其余法律渠道均不适用"
        lc.status = "manual_review"
        _stage(s, ctx, lc.case_id, ledger.MANUAL_REVIEW,
               {"bureau": bureau.agency if bureau else ctx.agency, "reason": f"{why}，转信访局人工分办"},
               lc.audience, actor)
        return
    lc.attempt += 1
    record = {**asdict(c), "attempt": lc.attempt}
    lc.classification, lc.history = record, [*lc.history, record]
    lc.audience = _audience(lc.audience, c.body, reported=lc.reported_agency)
    lc.status = "referred"
    ref_id = f"{lc.case_id}-a{lc.attempt}"
    _stage(s, ctx, lc.case_id, ledger.LEGAL_CLASSIFIED, record, lc.audience, actor)
    referred = _stage(s, ctx, lc.case_id, ledger.REFERRED,
                      {"attempt": lc.attempt, "ref_id": ref_id, "to": c.body, "channel": c.channel,
                       "channel_label": c.channel_label}, lc.audience, actor)
    request = {"ref_id": ref_id, "case_id": lc.case_id, "from_agency": ctx.agency, "attempt": lc.attempt,
               "kind": CHANNEL, "channel": c.channel, "channel_label": c.channel_label,
               "category": lc.category or "其他", "division": lc.division, "title": lc.title, "rule": c.rule,
               "reasons": c.reasons, "audience": lc.audience, "reported_agency": lc.reported_agency or ""}
    s.add(ReferralOut(ref_id=ref_id, case_id=lc.case_id, attempt=lc.attempt, kind=CHANNEL, target=c.body,
                      event_id=referred.id, request=request, status="pending", tries=0, next_try_at=utcnow(),
                      flagged=False))


def _answers_current(lc: LegalCase | None, ev: Event) -> bool:
    return (lc is not None and lc.status == "referred" and ev.payload.get("attempt") == lc.attempt
            and lc.classification is not None and ev.agency == lc.classification["body"])


def on_referral_accepted(s: Session, ctx: LegalContext, ev: Event) -> None:
    """The body accepted: the petitioner gets the written notice (书面告知) naming channel, body, receipt."""
    lc = s.get(LegalCase, ev.case_id)
    if not _answers_current(lc, ev):
        return
    lc.status, lc.receipt_no = "accepted", ev.payload["receipt_no"]
    c = lc.classification
    lc.notice = notice.compose(ctx.catalogue.channel(c["channel"]), case_title=lc.title,
                               registered_on=_day(lc.registered_at), body_name=c["body_name"],
                               receipt_no=lc.receipt_no, referring_name=ctx.cfg.name, issued_on=_day(ev.time))
    _stage(s, ctx, lc.case_id, ledger.LEGAL_NOTICE, {"attempt": lc.attempt, "notice": lc.notice}, lc.audience)


def on_referral_declined(s: Session, ctx: LegalContext, ev: Event) -> None:
    """退回: the case comes back with the reason; classified again without that channel (or to the bureau)."""
    lc = s.get(LegalCase, ev.case_id)
    if not _answers_current(lc, ev):
        return
    c = lc.classification
    lc.declines = [*lc.declines, {"by": ev.agency, "attempt": lc.attempt, "channel": c["channel"],
                                  "channel_label": c["channel_label"], "reason": ev.payload["reason"]}]
    lc.excluded_channels = sorted(set(lc.excluded_channels) | {c["channel"]})
    lc.status = "declined"
    refer(s, ctx, lc, _classify(ctx, lc), "legal_referral")


def on_referral_progress(s: Session, ctx: LegalContext, ev: Event) -> None:
    lc = s.get(LegalCase, ev.case_id)
    if lc is not None and lc.classification and ev.agency == lc.classification["body"] and lc.status in IN_CHANNEL:
        lc.status = {v: k for k, v in PROGRESS_EVENTS.items()}[ev.type]


def override_classification(s: Session, ctx: LegalContext, case_id: str, channel_id: str, reason: str,
                            body: str | None, actor: str) -> dict:
    """人工改判: a clerk sets the channel (and body) with a reason; both classifications stay on record."""
    lc = s.get(LegalCase, case_id)
    if lc is None or lc.status == "registered":
        raise NotFound(f"本节点没有分流案件 {case_id} (not classified here)")
    if lc.status in IN_CHANNEL:
        raise Conflict(f"该事项已由{lc.classification['body_name']}接收（回执 {lc.receipt_no}），不能改判 (already accepted)")
    prev = lc.classification
    previous = Classification(**{f.name: prev[f.name] for f in fields(Classification)}) if prev else None
    try:
        c = channels.override(ctx.catalogue, ctx.directory, channel_id=channel_id, reason=reason, division=lc.division,
                              body_agency=body, reported_agency=lc.reported_agency, previous=previous)
    except ValueError as e:
        raise Invalid(str(e), str(e).split(":")[0]) from None
    audit(s, agency=ctx.agency, actor=actor, action="legal.override", object_id=case_id,
          detail=f"{prev['channel'] if prev else '-'} → {c.channel} @ {c.body}: {reason}")
    refer(s, ctx, lc, c, actor)
    return legal_case_json(lc)


def legal_case_json(lc: LegalCase) -> dict:
    return {"case_id": lc.case_id, "status": lc.status, "status_label": _origin_status_label(lc.status),
            "attempt": lc.attempt, "classification": lc.classification, "classifications": lc.history,
            "declines": lc.declines, "excluded_channels": lc.excluded_channels, "receipt_no": lc.receipt_no,
            "notice": lc.notice}


def _origin_status_label(status: str) -> str:
    return {"registered": "未转法律渠道", "classifying": "分流中", "referred": "已移送待接收", "declined": "已被退回",
            "manual_review": "转信访局人工分办"}.get(status) or STATUS_LABELS.get(status, status)


# --- delivery of referrals and relief requests (the dispatcher) -----------------------------------------

def due_referrals(s: Session) -> list[ReferralOut]:
    """Referrals whose event is already on the bus (so no answer can overtake it) and due a try."""
    return list(s.scalars(select(ReferralOut)
                          .join(OutboxRow, OutboxRow.event_id == ReferralOut.event_id)
                          .where(ReferralOut.status == "pending", ReferralOut.next_try_at <= utcnow(),
                                 OutboxRow.published_at.is_not(None))
                          .order_by(ReferralOut.next_try_at).limit(100)))


def referral_delivered(s: Session, ref_id: str) -> None:
    s.get(ReferralOut, ref_id).status = "delivered"


def referral_failed(s: Session, ctx: LegalContext, ref_id: str, error: str) -> None:
    o = s.get(ReferralOut, ref_id)
    o.tries += 1
    o.last_error = error[:500]
    o.next_try_at = utcnow() + timedelta(seconds=min(0.5 * 2 ** o.tries, 10))
    if o.tries >= FLAG_AFTER_TRIES and not o.flagged:
        o.flagged = True
        _stage(s, ctx, o.case_id, ledger.OFFER_UNANSWERED,
               {"to": o.target, "tries": o.tries, "attempt": o.attempt, "ref_id": ref_id,
                "note": "接收机关未在期限内答复移送，已提请督办；移送机关继续负责"}, o.request["audience"])


# --- relief requests (司法救助 / 社会救助): from a node that knows the case ------------------------------

def _known_case(s: Session, ctx: LegalContext, case_id: str) -> dict:
    lc = s.get(LegalCase, case_id)
    if lc is not None:
        return {"division": lc.division, "category": lc.category or "其他", "title": lc.title, "audience": lc.audience,
                "reported_agency": lc.reported_agency,
                "body_type": (lc.classification or {}).get("body_type") if lc.status in IN_CHANNEL else None}
    r = s.scalars(select(ReferralIn).where(ReferralIn.case_id == case_id, ReferralIn.kind == CHANNEL,
                                           ReferralIn.status.in_(IN_CHANNEL))
                  .order_by(ReferralIn.attempt.desc())).first()
    if r is None:
        raise NotFound(f"本节点未办理案件 {case_id}，不能提出救助申请 (case not handled here)")
    return {"division": r.division, "category": r.category, "title": r.title, "audience": r.audience,
            "reported_agency": r.reported_agency, "body_type": ctx.cfg.type}


def request_relief(s: Session, ctx: LegalContext, case_id: str, kind: str, amount: Decimal, basis: str,
                   to: str | None, actor: str) -> dict:
    """救助申请: to the body that decides it (a court or procuratorate handling the case, or 民政)."""
    facts = _known_case(s, ctx, case_id)
    ch = ctx.catalogue.channels.get(kind)
    if ch is None or not ch.relief:
        relief_kinds = [c.id for c in ctx.catalogue.channels.values() if c.relief]
        raise Invalid(f"kind: 不是救助渠道 {kind!r}（可选：{', '.join(relief_kinds)}）", "kind")
    reported = facts["reported_agency"]
    if to is not None:
        body = ctx.directory.get(to)
        if body is None or body.type not in ch.bodies:
            raise Invalid(f"to: {to} 不是“{ch.label}”的决定机关", "to")
        if body.agency == reported:
            raise Invalid("to: 被检举机构不得办理（回避）", "to")
    else:
        prefer = facts["body_type"] if facts["body_type"] in ch.bodies else ch.bodies[0]
        body = channels.find_body(ctx.directory, prefer, facts["division"], {reported} if reported else set())
        if body is None:
            raise Invalid(f"kind: 本联盟在{divisions.name(facts['division'])}没有“{ch.label}”的决定机关", "kind")
    request_id = f"{case_id}-j{uuid.uuid4().hex[:10]}"
    audience = _audience(facts["audience"], body.agency, ctx.agency, reported=reported)
    amount_s = f"{amount:.2f}"
    ev = _stage(s, ctx, case_id, ledger.RELIEF_REQUESTED,
                {"request_id": request_id, "kind": ch.id, "kind_label": ch.label, "to": body.agency,
                 "to_name": body.name, "amount_requested": amount_s, "basis": basis}, audience, actor)
    request = {"ref_id": request_id, "case_id": case_id, "from_agency": ctx.agency, "attempt": 0, "kind": RELIEF,
               "channel": ch.id, "channel_label": ch.label, "category": facts["category"],
               "division": facts["division"], "title": facts["title"], "rule": "relief-request",
               "reasons": [f"救助申请：{ch.label}，申请金额 {amount_s} 元"], "audience": audience,
               "reported_agency": reported or "", "relief": {"amount_requested": amount_s, "basis": basis}}
    s.add(ReferralOut(ref_id=request_id, case_id=case_id, attempt=0, kind=RELIEF, target=body.agency,
                      event_id=ev.id, request=request, status="pending", tries=0, next_try_at=utcnow(),
                      flagged=False))
    audit(s, agency=ctx.agency, actor=actor, action="relief.request", object_id=case_id,
          detail=f"{request_id} {ch.id} {amount_s} → {body.agency}")
    return {"request_id": request_id, "case_id": case_id, "kind": ch.id, "kind_label": ch.label, "to": body.agency,
            "to_name": body.name, "amount_requested": amount_s, "status": "requested"}


# --- at the receiving body ------------------------------------------------------------------------------

def receive_referral(s: Session, ctx: LegalContext, req) -> ReferralIn:
    """A referral or relief request arrives. Idempotent per ref_id. Under auto_sign_for it is accepted
    at once when the checks pass, and declined with the reason when they do not."""
    existing = s.get(ReferralIn, req.ref_id)
    if existing is not None:
        return existing
    relief = req.kind == referral_pb2.ReferRequest.RELIEF
    amount = None
    if relief:
        try:
            amount = to_fen(yuan(req.relief.amount_requested))
        except ValueError as e:
            raise Invalid(f"relief.amount_requested: {e}", "relief.amount_requested") from None
    r = ReferralIn(ref_id=req.ref_id, case_id=req.case_id, attempt=req.attempt, kind=RELIEF if relief else CHANNEL,
                   from_agency=req.from_agency, channel=req.channel, channel_label=req.channel_label,
                   category=req.category, division=req.division, title=req.title, rule=req.rule,
                   reasons=list(req.reasons), audience=_audience(req.audience, ctx.agency,
                                                                 reported=req.reported_agency or None),
                   reported_agency=req.reported_agency or None, status="pending", amount_requested_fen=amount,
                   basis=req.relief.basis if relief else None, steps=[], history=[], received_at=utcnow())
    s.add(r)
    if not relief:  # an older referral of the same case to this body is superseded by this one
        for old in s.scalars(select(ReferralIn).where(ReferralIn.case_id == r.case_id, ReferralIn.kind == CHANNEL,
                                                      ReferralIn.status == "pending", ReferralIn.attempt < r.attempt)):
            old.status = "superseded"
    audit(s, agency=ctx.agency, actor=req.from_agency, action="referral.receive", object_id=req.case_id,
          detail=f"{r.kind} {r.channel} {r.ref_id}")
    if ctx.cfg.auto_sign_for:
        problem = check_referral(ctx, r)
        if problem:
            decline(s, ctx, r, "auto", problem)
        else:
            accept(s, ctx, r, "auto")
    return r


def check_referral(ctx: LegalContext, r: ReferralIn) -> str | None:
    """The automatic checks before 接收: this body receives that channel, for that division."""
    ch = ctx.catalogue.channels.get(r.channel)
    if ch is None:
        return f"本机关不受理该法律渠道（{r.channel_label or r.channel}）"
    if ctx.cfg.type not in ch.bodies:
        return f"本机关（{ctx.cfg.name}）不是“{ch.label}”的受理机关"
    if r.reported_agency == ctx.agency:
        return "本机关系被检举对象，依法回避"
    if not divisions.contains(ctx.cfg.division, r.division):
        return f"不属本机关管辖（{divisions.name(r.division)}不在{divisions.name(ctx.cfg.division)}范围内）"
    return None


def next_receipt(s: Session, ctx: LegalContext, word: str) -> str:
    """The next 回执编号 of this body for the word, this year (in Beijing time)."""
    year = ledger.local_date(clock.now()).year
    row = s.get(ReceiptCounter, (word, year), with_for_update=True)
    if row is None:
        row = ReceiptCounter(word=word, year=year, last=0)
        s.add(row)
    row.last += 1
    return receipt_number(ctx.cfg.division, year, word, row.last)


def _answered(r: ReferralIn) -> str:
    return f"该移送已{STATUS_LABELS.get(r.status, r.status)} (already answered)"


def accept(s: Session, ctx: LegalContext, r: ReferralIn, actor: str) -> None:
    """接收 with this body's receipt number; for a channel referral this body becomes the holder."""
    if r.status != "pending":
        raise Conflict(_answered(r))
    ch = ctx.catalogue.channels.get(r.channel)
    if ch is None:
        raise Conflict(f"本机关不受理该法律渠道（{r.channel_label or r.channel}）")
    r.receipt_no, r.status = next_receipt(s, ctx, ch.receipt_word), "accepted"
    if r.kind == CHANNEL:
        _stage(s, ctx, r.case_id, ledger.REFERRAL_ACCEPTED,
               {"attempt": r.attempt, "ref_id": r.ref_id, "receipt_no": r.receipt_no, "channel": r.channel,
                "channel_label": r.channel_label}, r.audience, actor)
    else:
        _stage(s, ctx, r.case_id, ledger.RELIEF_RECEIVED, {"request_id": r.ref_id, "receipt_no": r.receipt_no},
               r.audience, actor)
    audit(s, agency=ctx.agency, actor=actor, action="referral.accept", object_id=r.case_id,
          detail=f"{r.ref_id} {r.receipt_no}")


def decline(s: Session, ctx: LegalContext, r: ReferralIn, actor: str, reason: str) -> None:
    """退回 with a reason: the referring node classifies again (a relief request is refused)."""
    if r.status != "pending":
        raise Conflict(_answered(r))
    r.status, r.answer_reason = "declined", reason
    if r.kind == CHANNEL:
        _stage(s, ctx, r.case_id, ledger.REFERRAL_DECLINED,
               {"attempt": r.attempt, "ref_id": r.ref_id, "channel": r.channel, "reason": reason}, r.audience, actor)
    else:
        _stage(s, ctx, r.case_id, ledger.RELIEF_DECIDED,
               {"request_id": r.ref_id, "approved": False, "amount_granted": None, "reason": reason,
                "stage": "declined"}, r.audience, actor)
    audit(s, agency=ctx.agency, actor=actor, action="referral.decline", object_id=r.case_id, detail=reason)


def report_progress(s: Session, ctx: LegalContext, r: ReferralIn, status: str, note: str, reference: str | None,
                    actor: str) -> None:
    """立案受理 / 作出决定 / 申请人撤回, in that order (withdrawal before the decision)."""
    if r.kind != CHANNEL:
        raise Conflict("救助申请请使用救助决定 (use the relief decision)")
    if r.status not in PROGRESS_FROM[status]:
        raise Conflict(f"当前状态“{STATUS_LABELS.get(r.status, r.status)}”不能变更为“{STATUS_LABELS[status]}” "
                       f"(cannot go from {r.status} to {status})", "status")
    r.status = status
    r.history = [*r.history, {"status": status, "note": note, "reference": reference, "by": actor,
                              "at": clock.now().isoformat()}]
    _stage(s, ctx, r.case_id, PROGRESS_EVENTS[status],
           {"attempt": r.attempt, "ref_id": r.ref_id, "note": note, "reference": reference}, r.audience, actor)
    audit(s, agency=ctx.agency, actor=actor, action=f"referral.{status}", object_id=r.case_id, detail=note)


def record_step(s: Session, ctx: LegalContext, r: ReferralIn, step: str, on: date, outcome: str, hearing: bool,
                actor: str) -> dict:
    """检调对接 "5+1": one step with its date and outcome, in order; a skipped step is refused, named."""
    if ctx.cfg.type != "procuratorate":
        raise Forbidden("检调对接“5+1”仅适用于检察机关办理的事项 (procuratorate only)")
    if r.kind != CHANNEL or r.status not in ("accepted", "filed", "decided"):
        raise Conflict(f"该事项{STATUS_LABELS.get(r.status, r.status)}，不能记录检调对接步骤 (referral not in hand)")
    try:
        steps.check_step(r.steps, step, on, hearing)
    except steps.StepRefused as e:
        raise StepMissing(str(e), e.missing) from None
    except ValueError as e:
        raise Invalid(str(e), "step") from None
    entry = {"step": step, "date": on.isoformat(), "outcome": outcome,
             "hearing": bool(hearing) if step == steps.STEPS[1] else step == steps.HEARING}
    r.steps = [*r.steps, {**entry, "by": actor}]
    _stage(s, ctx, r.case_id, ledger.PROCURATORIAL_STEP, {**entry, "ref_id": r.ref_id}, r.audience, actor)
    return referral_json(r)


def decide_relief(s: Session, ctx: LegalContext, r: ReferralIn, approve: bool, amount: Decimal | None,
                  reason: str | None, actor: str) -> dict:
    """救助决定: approve an amount (≤ the amount requested) or refuse with a reason."""
    if r.kind != RELIEF:
        raise NotFound(f"{r.ref_id} 不是救助申请 (not a relief request)")
    if r.status != "accepted":
        raise Conflict(f"该救助申请{STATUS_LABELS.get(r.status, r.status)}，不能作出决定 (not awaiting a decision)")
    if approve:
        if amount is None:
            raise Invalid("amount_granted: 批准救助须写明金额 (amount required)", "amount_granted")
        if to_fen(amount) > r.amount_requested_fen:
            raise Invalid(f"amount_granted: 批准金额不得超过申请金额 {from_fen(r.amount_requested_fen)} 元",
                          "amount_granted")
        r.status, r.amount_granted_fen = "approved", to_fen(amount)
    else:
        if not reason:
            raise Invalid("reason: 不予救助须说明理由 (reason required)", "reason")
        r.status = "refused"
    r.answer_reason = reason
    _stage(s, ctx, r.case_id, ledger.RELIEF_DECIDED,
           {"request_id": r.ref_id, "approved": approve,
            "amount_granted": from_fen(r.amount_granted_fen) if approve else None, "reason": reason}, r.audience, actor)
    audit(s, agency=ctx.agency, actor=actor, action="relief.decide", object_id=r.case_id,
          detail=f"{r.ref_id} {'approved ' + from_fen(r.amount_granted_fen) if approve else 'refused'}")
    return referral_json(r)


def on_referred(s: Session, ctx: LegalContext, ev: Event) -> None:
    """A newer referral of a case supersedes the one this body has not answered yet (e.g. an override)."""
    attempt = ev.payload.get("attempt", 0)
    for r in s.scalars(select(ReferralIn).where(ReferralIn.case_id == ev.case_id, ReferralIn.kind == CHANNEL,
                                                ReferralIn.status == "pending", ReferralIn.attempt < attempt)):
        r.status = "superseded"


def referral_for_case(s: Session, case_id: str, kind: str = CHANNEL) -> ReferralIn:
    r = s.scalars(select(ReferralIn).where(ReferralIn.case_id == case_id, ReferralIn.kind == kind)
                  .order_by(ReferralIn.attempt.desc(), ReferralIn.received_at.desc())).first()
    if r is None:
        raise NotFound(f"本机关没有案件 {case_id} 的移送 (no referral)")
    return r


def referral_json(r: ReferralIn) -> dict:
    out = {"ref_id": r.ref_id, "case_id": r.case_id, "attempt": r.attempt, "kind": r.kind,
           "from_agency": r.from_agency, "channel": r.channel, "channel_label": r.channel_label,
           "category": r.category, "division": r.division, "title": r.title, "rule": r.rule, "reasons": r.reasons,
           "status": r.status, "status_label": STATUS_LABELS.get(r.status, r.status), "receipt_no": r.receipt_no,
           "answer_reason": r.answer_reason, "history": r.history, "received_at": r.received_at.isoformat()}
    if r.kind == RELIEF:
        out.update(amount_requested=from_fen(r.amount_requested_fen), basis=r.basis,
                   amount_granted=from_fen(r.amount_granted_fen) if r.amount_granted_fen is not None else None)
    else:
        out.update(steps=r.steps, next_steps=steps.next_steps(r.steps) if r.status in ("accepted", "filed", "decided")
                   else [])
    return out


# --- relief totals from the ledger (every node, the cases it shares) ------------------------------------

def on_relief_event(s: Session, ctx: LegalContext, ev: Event) -> None:
    if ctx.agency not in ev.audience and ev.agency != ctx.agency:
        return
    p = ev.payload
    row = s.get(ReliefRow, p["request_id"])
    if ev.type == ledger.RELIEF_REQUESTED:
        if row is None:
            s.add(ReliefRow(request_id=p["request_id"], case_id=ev.case_id, kind=p["kind"], requested_by=ev.agency,
                            to_agency=p["to"], amount_requested_fen=to_fen(yuan(p["amount_requested"])),
                            amount_granted_fen=None, status="requested"))
        return
    if row is None or ev.agency != row.to_agency or row.status in ("approved", "refused"):
        return
    if ev.type == ledger.RELIEF_RECEIVED:
        row.status, row.receipt_no = "received", p["receipt_no"]
    elif ev.type == ledger.RELIEF_DECIDED:
        row.status, row.reason = ("approved" if p["approved"] else "refused"), p.get("reason")
        row.amount_granted_fen = to_fen(yuan(p["amount_granted"])) if p["approved"] else None


def relief_totals(s: Session, directory: Directory) -> dict:
    """Per deciding body: requests, amounts requested and granted, approved / refused / open."""
    q = select(ReliefRow.to_agency, ReliefRow.status, func.count(), func.sum(ReliefRow.amount_requested_fen),
               func.coalesce(func.sum(ReliefRow.amount_granted_fen), 0)).group_by(ReliefRow.to_agency, ReliefRow.status)
    per: dict[str, dict] = {}
    for agency, status, n, requested, granted in s.execute(q):
        t = per.setdefault(agency, {"agency": agency, "name": (directory.get(agency).name if directory.get(agency)
                                                               else agency), "requests": 0, "requested_fen": 0,
                                    "granted_fen": 0, "approved": 0, "refused": 0, "open": 0})
        t["requests"] += n
        t["requested_fen"] += int(requested or 0)
        t["granted_fen"] += int(granted or 0)
        t["approved" if status == "approved" else "refused" if status == "refused" else "open"] += n
    agencies = []
    for t in sorted(per.values(), key=lambda x: x["agency"]):
        agencies.append({**{k: v for k, v in t.items() if not k.endswith("_fen")},
                         "amount_requested": from_fen(t["requested_fen"]),
                         "amount_granted": from_fen(t["granted_fen"])})
    return {"agencies": agencies, "total": {
        "requests": sum(t["requests"] for t in per.values()),
        "approved": sum(t["approved"] for t in per.values()), "refused": sum(t["refused"] for t in per.values()),
        "open": sum(t["open"] for t in per.values()),
        "amount_requested": from_fen(sum(t["requested_fen"] for t in per.values())),
        "amount_granted": from_fen(sum(t["granted_fen"] for t in per.values()))}}
