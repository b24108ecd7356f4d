"""审计 Audit trail over HTTP, for auditors: read the hash-chained log and its verification result.

Read-only by design: there is no route that changes or deletes an entry (PUT/POST/DELETE on the
collection answer 405, anything under it 404). Every read of the log is itself recorded."""

import asyncio
import threading
import time
from datetime import timezone

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from shared.db.plumbing import AuditRow, audit, verify_audit
from shared.errors import Forbidden
from shared.web import caller

AUDIT_ROLES = {"auditor", "admin"}
MAX_LIMIT = 500
READ_WINDOW_S = 300.0


class ReadTrail:
    """Which reads of case data go into the audit trail: the first read of a case by a user, then again
    once per window. Who read what stays on record while a client polling a case view does not turn
    every poll into a write (and an fsync) on the chain."""

    def __init__(self, window_s: float = READ_WINDOW_S, max_keys: int = 50_000):
        self.window_s, self.max_keys = window_s, max_keys
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def due(self, user: str, object_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get((user, object_id))
            if last is not None and now - last < self.window_s:
                return False
            if len(self._last) >= self.max_keys:
                self._last = {k: t for k, t in self._last.items() if now - t < self.window_s}
            self._last[(user, object_id)] = now
            return True

    def forget(self, user: str, object_id: str) -> None:
        """The read was not recorded after all (the write failed): record the next one."""
        with self._lock:
            self._last.pop((user, object_id), None)


def _entry(r: AuditRow) -> dict:
    at = r.at if r.at.tzinfo else r.at.replace(tzinfo=timezone.utc)  # SQLite returns naive UTC
    return {"seq": r.seq, "at": at.isoformat(), "agency": r.agency, "actor": r.actor, "action": r.action,
            "object_id": r.object_id, "detail": r.detail, "prev_hash": r.prev_hash, "hash": r.hash}


def build_audit_router(rt) -> APIRouter:
    router = APIRouter()

    User = caller(rt.cfg)

    @router.get("/api/v1/audit", summary="审计日志 audit trail and its verification (auditor, admin)",
                responses={401: {"description": "未登录或令牌无效"}, 403: {"description": "仅审计员、管理员可查看"}})
    async def read_audit(who: User,
                         limit: int = Query(100, ge=1, le=MAX_LIMIT, description="最多返回条数 entries per page"),
                         before: int | None = Query(None, ge=1, le=2**62,
                                                    description="只返回序号小于此值的条目 entries with seq < before"),
                         object_id: str | None = Query(None, max_length=80, description="只看某对象 e.g. a case id"),
                         verify: bool = Query(True, description="校验整条哈希链 verify the whole chain")):
        if who.role not in AUDIT_ROLES:
            raise Forbidden("仅审计员、管理员可查看审计日志 (auditor or admin only)")

        def read() -> dict:
            with rt.db.read() as s:
                q = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
                if before is not None:
                    q = q.where(AuditRow.seq < before)
                if object_id is not None:
                    q = q.where(AuditRow.object_id == object_id)
                entries = [_entry(r) for r in s.scalars(q)]
                total = s.scalar(select(func.count()).select_from(AuditRow))
                problems = verify_audit(s) if verify else None
            return {"agency": rt.agency, "service": rt.service, "total": total, "entries": entries,
                    "verification": None if problems is None else {"ok": not problems, "problems": problems,
                                                                   "entries_checked": total}}

        body = await asyncio.to_thread(read)
        # Who looked at the trail is itself part of the trail (after reading: the answer shows the log as found).
        await rt.db.run_async(lambda s: audit(s, agency=rt.agency, actor=who.user, action="audit.read",
                                                           object_id=object_id or "audit_log",
                                                           detail=f"limit={limit} before={before} verify={verify}"))
        return body

    return router
