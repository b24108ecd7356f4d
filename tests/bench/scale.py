"""The scale part of `make bench`: one node's read model with N cases (1,000,000 by default), then the
dashboard's queries and one case page timed against the real services.

The node is the city 信访局 (510100-xfj), which shares every case of the city's counties. Its intake and
supervision databases are built with the real Alembic migrations and filled by bulk insert (one process
per database, so the two cores share the work): N cases over the last five years, 4–6 ledger events each
(登记, 分办, 交办, 签收, then 受理 and 答复 for most older cases, some of them late), their 查询码 and
repeat-detection rows, the dashboard's columns and volume counters (intake) and the 考核 summary rows
and counters (supervision). The state of each case is the real fold (shared.ledger.apply) of its events — folded once per shape with placeholders, then filled in per case (str.format_map), with the migrations'
secondary indexes dropped during the fill and made again at the end. A million cases take about three
minutes on the 2-core test machine and ≈ 6 GB per database, so the dataset is made once under
var/bench-cache/ and reused; the services then run with their clock (shared/clock.py) set back to the
moment it was made. `next_check` is left empty so the supervision checker has nothing to issue.

Then intake and supervision of that node start (with their own JetStream server, empty) and we time, one
request after the other: the 督办看板 (GET /ui/dashboard, /ui/data/overview and supervision's
/api/v1/assessment for this year, the last 30 days and the last 7), a case page (GET /ui/cases/{id},
/api/v1/cases/{id}, supervision's case view), one registration (POST /api/v1/petitions) and /metrics,
with each process's RSS before and after.
Figures, not assertions. Run alone: `python -m tests.bench.scale --scale 100000`."""
from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import shutil
import sqlite3
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from services.intake.domain import dashboard
from services.supervision.domain import assessment
from shared import clock, divisions, federation, ledger
from shared.db.migrations import upgrade_head
from shared.launcher import REPO, NatsServer, NodeProcesses
from tests.support import valid_id

NODE = ("510100-xfj", "成都市信访局", "petition_bureau", "510100")
NODES = [NODE, ("510104-xfj", "锦江区信访局", "petition_bureau", "510104"),
         ("510104-rsj", "锦江区人力资源和社会保障局", "hrss", "510104")]
YEARS = 5
GENERATOR = 4                   # bump when the generated data changes: cached datasets are made again
CACHE = REPO / "var" / "bench-cache"
BATCH = 20_000
REQUEST_TIMEOUT_S = 150
# category → the suffix of the agency that handles it in each county (holder)
HANDLERS = [("劳动社保", "rsj", 30), ("社会救助", "mzj", 12), ("征地拆迁", "zjj", 15), ("涉法涉诉", "fy", 10),
            ("企业改制", "rsj", 3), ("退役安置", "tyjrj", 3), ("生态环境", "sthjj", 10), ("其他", "xfj", 17)]
CONTENT = "某公司拖欠员工三个月工资，共计一万二千元，多次催要无果，劳动监察投诉后仍未解决，请求有关部门依法处理并督促支付。"
REPLY = ("经调查核实，你反映的问题属实。我单位已责令用人单位于十五日内足额支付拖欠工资，并依法作出处理。"
         "如对本处理意见不服，可自收到本意见书之日起三十日内向上一级行政机关请求复查。")


def counties() -> list[str]:
    return sorted(c for c in divisions.table() if c != NODE[3] and divisions.parent(c) == NODE[3])


# --- one case shape: its events with placeholders, folded once -------------------------------------

def _shape(n_events: int) -> tuple[str, list[tuple[str, str, str, str, str]]]:
    """The state JSON (with @...@ placeholders) after the first n_events of a case's life, and the
    event rows (type, agency, actor, time placeholder, payload JSON)."""
    origin, div = "@ORIGIN@", "@DIV@"
    evs = [
        (ledger.REGISTERED, origin, "clerk", "@T0@", {
            "channel": "visit", "division": div, "category": "@CAT@", "title": "@TITLE@", "content": CONTENT,
            "persons": 1, "collective": False, "representatives": 0, "anonymous": False, "target_agency": None,
            "reported_agency": None, "petitioner_pseudonym": "@PSEUDO@", "query_code_hash": "@QCH@", "flags": [],
            "risk": {"level": None, "reasons": []}}),
        # (years of history: a ledger written before 2026-11-29 has the 分办决定 as an event of its own)
        (ledger.ROUTED, origin, "routing", "@T1@", {
            "rule": "default", "reason": "规则 default：按类别由属地主管部门办理；属地 @DIV@", "target": "@HOLDER@",
            "co_handlers": [], "flags": [], "manual": False, "notice": None, "attempt": 1, "category": "@CAT@",
            "lead": "@HOLDER@"}),
        (ledger.OFFERED, origin, "routing", "@T1@", {"to": "@HOLDER@", "lead": "@HOLDER@", "co_handlers": [],
                                                     "attempt": 1}),
        (ledger.SIGNED_FOR, "@HOLDER@", "auto", "@T2@", {"attempt": 1}),
        (ledger.ACCEPTED, "@HOLDER@", "handler", "@T3@", {"notice": "您反映的事项已依法受理，我单位将在60日内办结并书面答复。"}),
        (ledger.REPLIED, "@HOLDER@", "handler", "@T4@", {"title": "信访处理意见书", "text": REPLY, "sha256": "0" * 64}),
    ][:n_events]
    audience = [NODE[0], "@ORIGIN@", "@HOLDER@"]
    state: dict | None = None
    for i, (type_, agency, actor, t, payload) in enumerate(evs):
        state = ledger.apply(state, {"id": f"@E{i}@", "case_id": "@CID@", "type": type_, "agency": agency,
                                     "actor": actor, "time": t, "payload": payload, "audience": audience})
    return _template(json.dumps(state)), [(t, a.strip("@"), ac, tm.strip("@"), _template(json.dumps(p)))
                                          for t, a, ac, tm, p in evs]


def _template(text: str) -> str:
    """A JSON text with @NAME@ placeholders as a str.format template ({NAME}): one C call fills it."""
    return re.sub(r"@([A-Z0-9]+)@", r"{\1}", text.replace("{", "{{").replace("}", "}}"))


def _cases(n: int, seed: int, now: datetime):
    """Yield (i, placeholder values, number of events, registration time, category) for n cases spread
    evenly over the YEARS years up to now."""
    rnd = random.Random(seed)
    cnt = counties()
    weights = [w for _, _, w in HANDLERS]
    span = timedelta(days=365 * YEARS).total_seconds()
    cat_json = {c: json.dumps(c)[1:-1] for c, _, _ in HANDLERS}
    start = now - timedelta(days=365 * YEARS)
    for i in range(n):
        t0 = start + timedelta(seconds=span * (i + rnd.random()) / n)
        age = (now - t0).days
        r = rnd.random()
        if age > 75:
            k = 6 if r < 0.96 else 5 if r < 0.98 else 4
        elif age > 15:
            k = 5 if r < 0.70 else 6 if r < 0.95 else 4
        else:
            k = 4 if r < 0.60 else 5
        div = rnd.choice(cnt)
        cat, suffix, _ = rnd.choices(HANDLERS, weights)[0]
        t3 = t0 + timedelta(days=rnd.uniform(1, 14))
        t4 = t3 + timedelta(days=rnd.uniform(10, 70))  # some replies come late (> 60 days): breached
        if k >= 5 and t3 > now or k == 6 and t4 > now:
            k = 4
        iso = lambda t: t.isoformat(timespec="microseconds")  # noqa: E731
        cid = f"LF{div}{t0:%Y%m%d}{i:08X}"
        yield i, {
            "CID": cid, "ORIGIN": f"{div}-xfj", "HOLDER": f"{div}-{suffix}", "DIV": div,
            "CAT": cat_json[cat], "TITLE": f"{cat_json[cat]}\\u4e8b\\u9879{i}",
            "T0": iso(t0), "T1": iso(t0 + ONE_S), "T2": iso(t0 + ONE_S + ONE_S),
            "T3": iso(t3), "T4": iso(t4), "PSEUDO": f"{rnd.getrandbits(256):064x}",
            "QCH": f"{rnd.getrandbits(256):064x}",
        }, k, t0, cat


ONE_S = timedelta(seconds=1)
STATUS = {4: "in_handling", 5: "accepted", 6: "replied"}


def _sql_time(iso: str) -> str:
    """How SQLAlchemy's DateTime stores a UTC time in SQLite ("2026-11-28 11:45:00.756592")."""
    return iso[:26].replace("T", " ")


def _summaries(k: int, v: dict) -> tuple[dict, dict, str]:
    """The intake dashboard columns, the supervision summary and the latest event's time of a case with
    k events (what dashboard.summary / assessment.summary give for its state, worked out from the times
    alone: fill() checks a sample against the real functions)."""
    day = lambda key: ledger.local_date(v[key])  # noqa: E731
    acc_due = day("T0") + timedelta(days=ledger.ACCEPTANCE_NOTICE_DAYS)
    hand_due = day("T3") + timedelta(days=ledger.HANDLING_DAYS) if k >= 5 else None
    acc_late = (day("T3") - acc_due).days if k >= 5 else None
    hand_late = (day("T4") - hand_due).days if k == 6 else None
    result = lambda late: None if late is None else "met" if late <= 0 else "breached"  # noqa: E731
    iso = lambda d: d and d.isoformat()  # noqa: E731
    intake = {"registered_day": day("T0").isoformat(), "collective": False, "repeat": False, "orders": 0,
              "open_due": iso(acc_due if k == 4 else hand_due if k == 5 else None),
              "late_days": max(acc_late or 0, hand_late or 0, 0)}
    sv = {"registered_day": day("T0").isoformat(), "acceptance_notice_due": acc_due.isoformat(),
          "acceptance_notice_result": result(acc_late), "handling_due": iso(hand_due), "handling_result": result(hand_late),
          "review_decision_due": None, "review_decision_result": None, "re_review_decision_due": None,
          "re_review_decision_result": None, "replied": k == 6, "rated": False, "satisfied": False,
          "review_requested": False, "repeat": False, "skipped_level": False, "orders": 0, "listed": 0}
    sv["running_due"] = assessment.running_due(sv)
    return intake, sv, v[{4: "T2", 5: "T3", 6: "T4"}[k]]


SV_SUMMARY = list(_summaries(6, {"T0": "2030-01-01T00:00:00+00:00", "T2": "", "T3": "2030-01-02T00:00:00+00:00",
                                 "T4": "2030-02-01T00:00:00+00:00"})[1])


def fill(kind: str, db: Path, n: int, seed: int, now_iso: str) -> dict:
    """Bulk-insert n cases into an already migrated intake or supervision database."""
    t_start = time.monotonic()
    now = datetime.fromisoformat(now_iso)
    shapes = {k: _shape(k) for k in (4, 5, 6)}
    con = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-400000", "temp_store=MEMORY"):
        con.execute(f"PRAGMA {pragma}")
    tables = (("cases", "case_events", "query_codes", "registrations") if kind == "intake"
              else ("sv_cases", "sv_events", "sv_case_summaries"))
    # the migrations' secondary indexes, dropped while filling and made again at the end (sorting once
    # is much faster than inserting a million random keys into a B-tree)
    indexes = con.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                          f"AND tbl_name IN ({','.join('?' * len(tables))})", tables).fetchall()
    con.execute("BEGIN")
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    cases, events, extra, summaries, seq = [], [], [], [], 0
    volumes: Counter = Counter()  # intake's case_volumes: (period, category, division, holder) → cases
    counts: dict[tuple, list[int]] = {}  # supervision's sv_assessment_counts: (period, holder, division) → tally

    def flush():
        if kind == "intake":
            con.executemany("INSERT INTO cases (case_id, status, category, division, holder, registered_at, state, "
                            "registered_day, collective, repeat, orders, open_due, late_days) "
                            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", cases)
            con.executemany("INSERT INTO case_events (event_id, case_id, stream_seq, type, agency, actor, time, "
                            "payload) VALUES (?,?,?,?,?,?,?,?)", events)
            con.executemany("INSERT INTO query_codes (code_hash, case_id) VALUES (?,?)", sorted(x[:2] for x in extra))
            con.executemany("INSERT INTO registrations (case_id, pseudonym, category, division, text, audience) "
                            "VALUES (?,?,?,?,?,?)", [x[2:] for x in extra])
        else:
            con.executemany("INSERT INTO sv_cases (case_id, status, division, holder, supervisor, leader, "
                            "registered_at, next_check, state) VALUES (?,?,?,?,?,?,?,?,?)", cases)
            con.executemany("INSERT INTO sv_events (event_id, case_id, stream_seq, type, agency, actor, time, "
                            "audience, payload) VALUES (?,?,?,?,?,?,?,?,?)", events)
            con.executemany(f"INSERT INTO sv_case_summaries (case_id, holder, division, last_event_at, "
                            f"{', '.join(SV_SUMMARY)}) VALUES ({','.join('?' * (4 + len(SV_SUMMARY)))})", summaries)
        cases.clear(), events.clear(), extra.clear(), summaries.clear()

    for i, v, k, t0, cat in _cases(n, seed, now):
        state_t, evs = shapes[k]
        cid, div, holder = v["CID"], v["DIV"], v["HOLDER"]
        audience = json.dumps(sorted({NODE[0], v["ORIGIN"], holder}))
        tail = v["QCH"][:18]
        for j in range(k):
            v[f"E{j}"] = f"{i:012x}{j:02x}{tail}"
        for j, (type_, agency, actor, tm, payload) in enumerate(evs):
            seq += 1
            payload = payload.format_map(v)
            events.append((v[f"E{j}"], cid, seq, type_, v[agency], actor, v[tm], payload) if kind == "intake" else
                          (v[f"E{j}"], cid, seq, type_, v[agency], actor, v[tm], audience, payload))
        state = state_t.format_map(v)
        intake_cols, sv_cols, last = _summaries(k, v)
        if i % 997 == 0:  # the shortcut gives what the projection would keep
            real = json.loads(state)
            assert (intake_cols, sv_cols) == (dashboard.summary(real), assessment.summary(real)), (cid, k)
        if kind == "intake":
            cases.append((cid, STATUS[k], cat, div, holder, _sql_time(v["T0"]), state, *intake_cols.values()))
            day = intake_cols["registered_day"]
            volumes[(day, cat, div, holder)] += 1
            volumes[(day[:7], cat, div, holder)] += 1
            extra.append((v["QCH"], cid, cid, v["PSEUDO"], cat, div, f"{cat}事项{i}{CONTENT}", audience))
        else:
            cases.append((cid, STATUS[k], div, holder, v["ORIGIN"], None, _sql_time(v["T0"]), None, state))
            summaries.append((cid, holder, div, _sql_time(last), *[sv_cols[c] for c in SV_SUMMARY]))
            tally = assessment.settled_tally(sv_cols)
            for period in (sv_cols["registered_day"], sv_cols["registered_day"][:7]):
                total = counts.setdefault((period, holder, div), [0] * len(assessment.COUNTERS))
                for j, name in enumerate(assessment.COUNTERS):
                    total[j] += tally[name]
        if len(cases) >= BATCH:
            flush()
    flush()
    if kind == "supervision":
        con.executemany(f"INSERT INTO sv_assessment_counts (period, holder, division, {', '.join(assessment.COUNTERS)}) "
                        f"VALUES ({','.join('?' * (3 + len(assessment.COUNTERS)))})",
                        [(*key, *values) for key, values in sorted(counts.items())])
    if kind == "intake":
        con.executemany("INSERT INTO case_volumes (period, category, division, holder, cases, collective, repeat) "
                        "VALUES (?,?,?,?,?,0,0)", [(*key, n) for key, n in sorted(volumes.items())])
    for _, sql in indexes:
        con.execute(sql)
    con.execute("COMMIT")
    con.close()
    return {"seconds": round(time.monotonic() - t_start, 1), "mb": round(db.stat().st_size / 2**20)}


def _fill_job(args) -> dict:
    return fill(*args)


def dataset(cache: Path, n: int, seed: int = 8) -> tuple[Path, dict]:
    """The folder holding intake.db and supervision.db with n cases: made once, then reused (it keeps
    the time it was made; the services are run with their clock set back to it). Migrations added since
    are applied by the services themselves when they start, as on a real node."""
    folder = cache / f"cases-{n}"
    meta_file = folder / "dataset.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("generator") == GENERATOR and meta.get("seed") == seed:
            return folder, {**meta, "reused": True}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for svc in ("intake", "supervision"):
        upgrade_head(REPO / "services" / svc, f"sqlite:///{folder / (svc + '.db')}")
    now = clock.now().isoformat()
    t0 = time.monotonic()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        out = pool.map(_fill_job, [(svc, folder / f"{svc}.db", n, seed, now) for svc in ("intake", "supervision")])
    meta = {"cases": n, "seed": seed, "generator": GENERATOR, "now": now, "seconds": round(time.monotonic() - t0, 1),
            **dict(zip(("intake", "supervision"), out))}
    meta_file.write_text(json.dumps(meta, indent=2))  # last: a half-made dataset is never reused
    return folder, {**meta, "reused": False}


# --- measuring ----------------------------------------------------------------------------------

def rss_mb(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(val.split()[0]) / 1024, 1)
    return {"rss_mb": fields.get("VmRSS"), "peak_rss_mb": fields.get("VmHWM")}


def timed(http: httpx.Client, url: str, token: str, timeout: float, body: dict | None = None) -> dict:
    """One request (a POST when there is a body): its time, status, size and the cases it lists."""
    t0 = time.monotonic()
    try:
        r = http.request("POST" if body else "GET", url, json=body, timeout=timeout,
                         headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as e:
        return {"ms": round((time.monotonic() - t0) * 1000, 1), "error": type(e).__name__}
    out = {"ms": round((time.monotonic() - t0) * 1000, 1), "status": r.status_code, "kb": round(len(r.content) / 1024, 1)}
    if r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        if isinstance(body, dict) and isinstance(body.get("cases"), list):
            out["cases"] = len(body["cases"])
        elif isinstance(body, dict) and isinstance(body.get("total"), dict):
            out["cases"] = body["total"].get("cases")
        elif isinstance(body, dict) and isinstance(body.get("total"), int):  # /ui/data/overview
            out["cases"] = body["total"]
    return out


def measure(root: Path, data: Path, made_at: datetime, budget_s: float) -> dict:
    """Start the node's intake and supervision on the dataset (clock set back to when it was made) and
    time the requests, one after the other, small ones first, until budget_s is spent."""
    nats = NatsServer(root)
    fed = federation.build(root / "fed", nats.url, NODES, database_url=lambda agency, svc: (
        f"sqlite:///{data / (svc + '.db')}" if agency == NODE[0] and svc in ("intake", "supervision")
        else f"sqlite:///{root / 'fed' / agency / (svc + '.db')}"))
    nats.secure(fed).start()
    spec = fed.node(NODE[0])
    clock_file = root / "clock.json"
    clock.set_offset(made_at - clock.now(), clock_file)
    node = NodeProcesses(spec, root / "logs", services=("intake", "supervision"),
                         env={"LIANFANG_SUPERVISION_INTERVAL_S": "3600", clock.ENV_VAR: str(clock_file)})
    end = time.monotonic() + budget_s
    try:
        t0 = time.monotonic()
        node.start()
        node.wait_ready(timeout=120)
        out: dict = {"start_s": round(time.monotonic() - t0, 1)}
        pids = {svc: p.pid for svc, p in node.procs.items()}
        out["rss_at_start"] = {svc: rss_mb(pid) for svc, pid in pids.items()}
        intake, sv = spec.url("intake"), spec.url("supervision")
        token = spec.tokens["supervisor"]
        with sqlite3.connect(data / "intake.db") as con:
            case_id = con.execute("SELECT case_id FROM cases WHERE status = 'replied' ORDER BY registered_at DESC "
                                  "LIMIT 1 OFFSET 5000").fetchone()[0]
        today = ledger.local_date(made_at)
        ranges = {"this_year": (today.replace(month=1, day=1), today), "30_days": (today - timedelta(days=30), today),
                  "7_days": (today - timedelta(days=7), today)}
        n = random.randrange(10**6)  # a new petitioner: a registration, not a repeat
        register = {"channel": "visit", "division": counties()[0], "category": "劳动社保", "title": f"拖欠工资{n}",
                    "content": CONTENT, "persons": 1, "petitioner": {"name": f"测试人{n}", "id_number": valid_id(n)}}
        requests = [("case_page", f"{intake}/ui/cases/{case_id}", token, None),
                    ("case_api", f"{intake}/api/v1/cases/{case_id}", token, None),
                    ("case_supervision", f"{sv}/api/v1/supervision/cases/{case_id}", token, None),
                    ("register_petition", f"{intake}/api/v1/petitions", spec.tokens["clerk"], register),
                    ("dashboard_page", f"{intake}/ui/dashboard", token, None),
                    ("intake_metrics", f"{intake}/metrics", token, None)]
        for name, (a, b) in reversed(ranges.items()):  # the small ranges first: they always fit the budget
            requests.append((f"overview_{name}", f"{intake}/ui/data/overview?from={a}&to={b}", token, None))
            requests.append((f"assessment_{name}", f"{sv}/api/v1/assessment?from={a}&to={b}", token, None))
        timings = {}
        with httpx.Client() as http:
            for name, url, auth, body in requests:
                left = end - time.monotonic()
                if left < 5:
                    timings[name] = {"skipped": "time budget spent"}
                    continue
                timings[name] = timed(http, url, auth, timeout=min(REQUEST_TIMEOUT_S, left), body=body)
                print(f"  scale: {name}: {timings[name]}", flush=True)
        out["requests_ms"] = timings
        out["case_id"] = case_id
        out["rss_at_end"] = {svc: rss_mb(pid) for svc, pid in pids.items()}
        return out
    finally:
        node.stop()
        nats.stop()


def run(root: Path, cache: Path, n: int, budget_s: float = 120) -> dict:
    """Make (or reuse) the dataset under `cache`, then measure under `root`. The figures for result.json."""
    t0 = time.monotonic()
    print(f"  scale: a read model of {n} cases under {cache} (made once, then reused)", flush=True)
    data, meta = dataset(cache, n)
    print(f"  scale: {'reused' if meta['reused'] else 'made in ' + str(meta['seconds']) + ' s'}: "
          f"intake.db {meta['intake']['mb']} MB, supervision.db {meta['supervision']['mb']} MB", flush=True)
    out = {"cases": n, "node": NODE[0], "years": YEARS, "dataset": meta}
    out.update(measure(root, data, datetime.fromisoformat(meta["now"]), budget_s))
    out["wall_s"] = round(time.monotonic() - t0, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.scale", description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=1_000_000, help="cases in the node's read model")
    ap.add_argument("--cache", type=Path, default=CACHE, help="where datasets are kept between runs")
    ap.add_argument("--budget", type=float, default=120, help="seconds for the timed requests")
    a = ap.parse_args()
    root = REPO / "var" / "bench-scale-run"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(json.dumps(run(root, a.cache, a.scale, a.budget), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
