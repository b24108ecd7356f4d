"""Intake handlers: one function per command or event. Each runs inside the caller's unit of work."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.intake.adapters.orm import (CaseEventRow, CaseRow, CaseVolumeRow, IdempotencyRow, PetitionerRow,
                                          QueryCodeRow, RegistrationRow)
from services.intake.domain import dashboard, identifiers, repeat
from services.intake.domain.petition import PetitionIn
from shared import clock, divisions, ledger, risk
from shared.bus import outbox
from shared.bus.envelope import Event
from shared.categories import classify
from shared.config import Directory
from shared.crypto import FieldCipher, pseudonym
from shared.db import counters, rows
from shared.db.plumbing import audit
from shared.db.prepared import Prepared
from shared.errors import Conflict, Invalid
from shared.web import Principal

IDENTITY_ROLES = {"clerk", "handler", "supervisor", "leader"}


@dataclass
class IntakeContext:
    agency: str
    directory: Directory
    cipher: FieldCipher
    pseudonym_key: str


def _request_hash(p: PetitionIn) -> str:
    return hashlib.sha256(p.model_dump_json().encode()).hexdigest()


def register_petition(s: Session, ctx: IntakeContext, p: PetitionIn, who: Principal,
                      idempotency_key: str | None) -> dict:
    """登记: make the petition durable (case, identity, event in the outbox) or link it to the earlier
    case when it is the same person's same matter (重信重访). Returns the 201 body."""
    if idempotency_key:
        prior = s.get(IdempotencyRow, idempotency_key)
        if prior is not None:
            if prior.request_hash != _request_hash(p):
                raise Conflict("Idempotency-Key 已用于另一请求 (key reused with a different body)", "Idempotency-Key")
            return prior.response
    for field, agency in (("target_agency", p.target_agency), ("reported_agency", p.reported_agency)):
        if agency and ctx.directory.get(agency) is None:
            raise Invalid(f"{field}: 未知机构 unknown agency {agency}", field)

    ids = [x.id_number for x in p.people() if x.id_number]
    alias = pseudonym(ctx.pseudonym_key, ids[0]) if ids else None
    category = p.category or classify(p.title + p.content)
    code = identifiers.new_query_code()
    earlier = _find_repeat(s, alias, category, p) if alias else None
    if earlier is not None and earlier["terminated_at"]:
        response = _decline_repeat(s, ctx, earlier, p, who, code)
    elif earlier is not None:
        response = _link_repeat(s, ctx, earlier, p, who, code)
    else:
        response = _open_case(s, ctx, p, who, alias, category, code)
    if idempotency_key:
        s.add(IdempotencyRow(key=idempotency_key, request_hash=_request_hash(p), response=response))
    return response


def _open_case(s: Session, ctx: IntakeContext, p: PetitionIn, who: Principal, alias: str | None,
               category: str | None, code: str) -> dict:
    case_id = identifiers.new_case_id(p.division)
    audience = sorted(({ctx.agency} | set(ctx.directory.supervising_bureaus(p.division))) - {p.reported_agency})
    flags = ["collective"] if p.collective else []
    payload = {"channel": p.channel, "division": p.division, "category": category, "title": p.title,
               "content": p.content, "persons": p.persons, "collective": p.collective,
               "representatives": len(p.representatives), "anonymous": p.anonymous,
               "target_agency": p.target_agency, "reported_agency": p.reported_agency,
               "petitioner_pseudonym": alias, "query_code_hash": identifiers.query_code_hash(code),
               "flags": flags, "risk": risk.assess(collective=p.collective, repeat_count=0, text=p.content)}
    event = outbox.stage(s, Event(case_id=case_id, type=ledger.REGISTERED, agency=ctx.agency, actor=who.user,
                                  payload=payload, audience=audience))
    project_event(s, ctx.agency, event, None)
    people = ([("petitioner", p.petitioner)] if p.petitioner else []) + [("representative", r) for r in p.representatives]
    if people:
        _PETITIONER_INSERT.run(s, [
            dict(case_id=case_id, role=role, name_enc=ctx.cipher.encrypt(person.name),
                 id_number_enc=ctx.cipher.encrypt(person.id_number), phone_enc=ctx.cipher.encrypt(person.phone),
                 address_enc=ctx.cipher.encrypt(person.address)) for role, person in people])
    audit(s, agency=ctx.agency, actor=who.user, action="case.register", object_id=case_id,
          detail=f"identity stored for {len(p.people())} person(s)")
    return {"case_id": case_id, "query_code": code, "status": "registered", "repeat_of": None}


def _find_repeat(s: Session, alias: str, category: str | None, p: PetitionIn) -> dict | None:
    """The earlier registration this petition repeats (the same person's same matter), as a row of
    _SAME_PERSON: its columns by name."""
    text = p.title + p.content
    for row in _SAME_PERSON.all(s, {"pseudonym": alias, "division": p.division}):
        if (category is None or row["category"] in (None, category)) and \
                repeat.similarity(row["text"], text) >= repeat.SIMILAR_ENOUGH:
            return row
    return None


def _link_repeat(s: Session, ctx: IntakeContext, earlier: dict, p: PetitionIn, who: Principal,
                 code: str) -> dict:
    """Not a second case: an event on the first one, which this desk now shares."""
    audience = sorted(set(earlier["audience"]) | {ctx.agency})
    event = outbox.stage(s, Event(case_id=earlier["case_id"], type=ledger.REPEAT_LINKED, agency=ctx.agency,
                                  actor=who.user, audience=audience,
                                  payload={"channel": p.channel, "title": p.title,
                                           "query_code_hash": identifiers.query_code_hash(code)}))
    project_event(s, ctx.agency, event, None)
    audit(s, agency=ctx.agency, actor=who.user, action="case.repeat_linked", object_id=earlier["case_id"])
    return {"case_id": earlier["case_id"], "query_code": code, "status": "repeat_linked",
            "repeat_of": earlier["case_id"]}


def _decline_repeat(s: Session, ctx: IntakeContext, earlier: dict, p: PetitionIn, who: Principal,
                    code: str) -> dict:
    """The matter completed 三级终结: the repeat is recorded on the case and declined in writing (the
    petitioner's 查询码 shows the reason); it opens nothing and is offered to nobody."""
    audience = sorted(set(earlier["audience"]) | {ctx.agency})
    event = outbox.stage(s, Event(case_id=earlier["case_id"], type=ledger.REPEAT_DECLINED, agency=ctx.agency,
                                  actor=who.user, audience=audience,
                                  payload={"channel": p.channel, "title": p.title, "reason": ledger.TERMINATED_REPEAT_REASON,
                                           "query_code_hash": identifiers.query_code_hash(code)}))
    project_event(s, ctx.agency, event, None)
    audit(s, agency=ctx.agency, actor=who.user, action="case.repeat_declined", object_id=earlier["case_id"])
    return {"case_id": earlier["case_id"], "query_code": code, "status": "repeat_declined",
            "repeat_of": earlier["case_id"], "reason": ledger.TERMINATED_REPEAT_REASON}


@dataclass
class Folded:
    applied: bool  # False: the node has just come to share the case without its history (see project_event)
    unshared: list[str] | None  # the registration's audience when this node holds it but not the case


def project_event(s: Session, agency: str, ev: Event, stream_seq: int | None, backfill: bool = False) -> bool:
    """Fold one ledger event into this node's read model. Idempotent. Returns False when the event is
    for a case this node has just come to share without its history (the caller then replays that
    history with backfill=True: earlier events count as shared although they were not addressed here)."""
    return fold_event(s, agency, ev, stream_seq, backfill).applied


_cases, _registrations = CaseRow.__table__, RegistrationRow.__table__
_CASE_FOLD = Prepared(select(_cases.c.state, _cases.c.registered_day, _cases.c.category, _cases.c.division,
                             _cases.c.holder, _cases.c.collective, _cases.c.repeat)
                      .where(_cases.c.case_id == bindparam("case_id")).with_for_update())
_REGISTRATION = Prepared(select(_registrations.c.audience, _registrations.c.terminated_at).where(
    _registrations.c.case_id == bindparam("case_id")))
_CASE_INSERT, _REGISTRATION_INSERT = Prepared(_cases.insert()), Prepared(_registrations.insert())
_CASE_UPDATE = Prepared(_cases.update().where(_cases.c.case_id == bindparam("the_case")))
_REGISTRATION_UPDATE = Prepared(_registrations.update().where(_registrations.c.case_id == bindparam("the_case")))
_EVENT_INSERT, _QUERY_CODE_INSERT = Prepared(CaseEventRow.__table__.insert()), Prepared(QueryCodeRow.__table__.insert())
_PETITIONER_INSERT = Prepared(PetitionerRow.__table__.insert())
_SAME_PERSON = Prepared(select(_registrations.c.case_id, _registrations.c.category, _registrations.c.text,
                               _registrations.c.audience, _registrations.c.terminated_at)
                        .where(_registrations.c.pseudonym == bindparam("pseudonym"),
                               _registrations.c.division == bindparam("division")))


def fold_event(s: Session, agency: str, ev: Event, stream_seq: int | None, backfill: bool = False) -> Folded:
    """project_event, also telling the consumer whether the case is one this node only keeps the
    registration of (shared.sharing.NotShared then passes over its further events)."""
    # Prepared statements, not ORM objects: per event the ORM's identity map and flush cost more than the
    # SQL (the fold is the only writer of cases and registrations; readers that keep objects refresh them).
    db = s.connection()
    case = _CASE_FOLD.first(db, {"case_id": ev.case_id})
    # event rows exist only for cases this node holds, so only then can the event be a replay
    if case is not None and rows.row_exists(db, CaseEventRow.__table__, event_id=ev.id):
        return Folded(True, None)
    reg = _REGISTRATION.first(db, {"case_id": ev.case_id})
    audience = list(reg["audience"]) if reg is not None else None
    if ev.type == ledger.REGISTERED and reg is None:
        p, audience = ev.payload, list(ev.audience)
        _REGISTRATION_INSERT.run(db, dict(
            case_id=ev.case_id, pseudonym=p.get("petitioner_pseudonym"), category=p.get("category"),
            division=p["division"], text=p["title"] + p["content"], audience=audience))
    elif ev.type != ledger.REGISTERED and reg is not None:
        changed = {}
        if not set(ev.audience) <= set(audience):
            changed["audience"] = audience = sorted(set(audience) | set(ev.audience))
        if ev.type == ledger.RE_REVIEW_DECIDED and not reg["terminated_at"]:
            changed["terminated_at"] = ev.time  # every desk declines repeats of it from now on (三级终结)
        if changed:
            _REGISTRATION_UPDATE.run(db, {**changed, "the_case": ev.case_id})
    if case is None and agency not in ev.audience and not backfill:
        return Folded(True, audience)  # not shared with this node
    if case is None and ev.type != ledger.REGISTERED:
        return Folded(False, None)
    state = ledger.apply(case["state"] if case else None, ev.as_dict())
    values = dict(state=state, status=state["status"], category=state.get("category"), division=state["division"],
                  holder=state["holder"], **dashboard.summary(state))
    if case is None:
        _CASE_INSERT.run(db, dict(case_id=ev.case_id, registered_at=datetime.fromisoformat(ev.time), **values))
    else:
        _CASE_UPDATE.run(db, {**values, "the_case": ev.case_id})
    before, after = (_volume_key(case) if case else None), _volume_key(values)
    if after != before:
        _count_volume(db, before, -1)
        _count_volume(db, after, +1)
    _EVENT_INSERT.run(db, dict(
        event_id=ev.id, case_id=ev.case_id, stream_seq=stream_seq, type=ev.type, agency=ev.agency, actor=ev.actor,
        time=ev.time, payload=ev.payload))
    if (code_hash := ev.payload.get("query_code_hash")) and \
            not rows.row_exists(db, QueryCodeRow.__table__, code_hash=code_hash):
        _QUERY_CODE_INSERT.run(db, dict(code_hash=code_hash, case_id=ev.case_id))
    return Folded(True, None)


def _volume_key(case) -> tuple | None:
    """Of a cases row (mapping)."""
    return dashboard.volume_key(case["registered_day"], case["category"], case["division"], case["holder"],
                                case["collective"], case["repeat"])


def _count_volume(db: Connection, key: tuple | None, sign: int) -> None:
    """Add (sign=+1) or take away (-1) a case's contribution to its day's and its month's volume counters."""
    if key is None:
        return
    day, category, division, holder, collective, repeat = key
    counters.add(db, CaseVolumeRow.__tablename__, {"category": category, "division": division, "holder": holder},
                 {"cases": sign, "collective": sign * collective, "repeat": sign * repeat}, [day, day[:7]])


def count_breached_deadlines(s: Session) -> int:
    """Breached statutory deadlines on the cases this node shares: one 责任追究 record per breached clock."""
    return s.scalar(select(func.count()).select_from(CaseEventRow).where(CaseEventRow.type == ledger.ACCOUNTABILITY))


_PRIVATE_PAYLOAD = {"petitioner_pseudonym", "query_code_hash"}
EVENT_LABELS = {ledger.REGISTERED: "登记", ledger.ROUTED: "分办决定", ledger.OFFERED: "交办",
                ledger.SIGNED_FOR: "签收", ledger.RETURNED: "退回", ledger.MANUAL_REVIEW: "转人工分办",
                ledger.REPEAT_LINKED: "重复信访", ledger.REPEAT_DECLINED: "重复信访不予受理（已三级终结）",
                **ledger.EVENT_LABELS}


def _agency_name(directory: Directory, agency: str | None) -> str | None:
    entry = directory.get(agency) if agency else None
    return entry.name if entry else agency


def case_view(s: Session, directory: Directory, case: CaseRow, now: datetime) -> dict:
    st = case.state
    events = s.scalars(select(CaseEventRow).where(CaseEventRow.case_id == case.case_id).order_by(CaseEventRow.pos))
    return {
        "case_id": case.case_id, "status": st["status"], "status_label": ledger.STATUS_LABELS.get(st["status"]),
        "category": st.get("category"), "division": st["division"], "division_name": divisions.name(st["division"]),
        "title": st["title"], "channel": st["channel"], "origin": st["origin"],
        "holder": st["holder"], "holder_name": _agency_name(directory, st["holder"]),
        "lead": st.get("lead"), "co_handlers": st.get("co_handlers", []), "offered_to": st.get("offered_to"),
        "deadlines": ledger.deadlines(st, clock.now()), "leader": st.get("leader"),
        "risk_level": st["risk"]["level"], "risk_reasons": st["risk"]["reasons"],
        "flags": st.get("flags", []), "persons": st.get("persons"), "collective": st.get("collective", False),
        "repeat_count": st.get("repeat_count", 0), "returns": st.get("returns", 0), "routing": st.get("routing"),
        "registered_at": st["registered_at"],
        **ledger.joint_reception_view(st, clock.now()),  # 联合接访: reception, sessions, commitments, notice, hearings
        **ledger.legal_view(st),  # 诉访分离: classification, referral and receipt, 书面告知, 5+1 steps, relief
        "events": [{"id": e.event_id, "type": e.type, "label": EVENT_LABELS.get(e.type, e.type), "agency": e.agency,
                    "agency_name": _agency_name(directory, e.agency), "actor": e.actor, "time": e.time,
                    "payload": {k: v for k, v in e.payload.items() if k not in _PRIVATE_PAYLOAD}} for e in events],
    }


def query_view(view: dict) -> dict:
    """The petitioner's own progress (查询码): status and steps, no internal notes, no staff names."""
    return {"case_id": view["case_id"], "status": view["status"], "status_label": view["status_label"],
            "title": view["title"], "registered_at": view["registered_at"], "holder_name": view["holder_name"],
            "deadlines": [{k: d[k] for k in ("label", "due", "state")} for d in view["deadlines"]],
            "progress": [{"time": e["time"], "step": e["label"], "agency_name": e["agency_name"]}
                         for e in view["events"] if e["type"] not in ledger.INTERNAL_TYPES],
            "reply": next(({"step": e["label"], "time": e["time"], "agency_name": e["agency_name"],
                            "title": e["payload"].get("title"), "text": e["payload"].get("text")}
                           for e in reversed(view["events"]) if e["type"] in ledger.DECISION_TYPES), None),
            "notice": view.get("notice"),  # 一次性告知: everything the petitioner must bring
            "legal_notice": (view.get("legal") or {}).get("notice"),  # 书面告知 (导入法律程序)
            "repeat_declined": next((e["payload"].get("reason") for e in reversed(view["events"])
                                     if e["type"] == ledger.REPEAT_DECLINED), None)}  # 不再受理 with its reason


def may_see_identity(agency: str, state: dict, caller_agency: str, role: str) -> bool:
    """Identity goes to the bodies handling the case, never to the body reported on (检举控告)."""
    if role not in IDENTITY_ROLES or caller_agency == state.get("reported_agency"):
        return False
    handlers = {state.get("origin"), state.get("holder"), state.get("lead"), *state.get("co_handlers", [])}
    return caller_agency in handlers


def identity(s: Session, cipher: FieldCipher, case_id: str) -> list[dict]:
    rows = s.scalars(select(PetitionerRow).where(PetitionerRow.case_id == case_id).order_by(PetitionerRow.id))
    return [{"role": r.role, "name": cipher.decrypt(r.name_enc), "id_number": cipher.decrypt(r.id_number_enc),
             "phone": cipher.decrypt(r.phone_enc), "address": cipher.decrypt(r.address_enc)} for r in rows]


def disclose_identity(s: Session, cipher: FieldCipher, agency: str, actor: str, case_id: str, action: str,
                      detail: str = "") -> list[dict]:
    """The petitioners' identity, with the access on the audit trail in the same transaction: nobody
    reads it without the record being durable first (callers check may_see_identity before)."""
    people = identity(s, cipher, case_id)
    audit(s, agency=agency, actor=actor, action=action, object_id=case_id, detail=detail)
    return people


def stable_json(d: dict) -> str:
    return json.dumps(d, ensure_ascii=False, sort_keys=True)
