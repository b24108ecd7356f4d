"""Issue 4, the data side of security: who may see a case, the tamper-evident audit trail (HTTP and the
`lianfang audit verify` command), petitioner identity never at rest or in transit in clear, a bounded
schema-driven fuzz run of the intake API, and the 查询码 rate limit. Real processes, real nats-server,
real databases: nothing is mocked."""
from __future__ import annotations

import base64
import http.client
import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from pathlib import Path

import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from shared import federation
from shared.categories import CATEGORIES
from shared.config import SERVICE_NAMES
from shared.crypto import token_hash
from shared.db.migrations import upgrade_head
from shared.db.plumbing import audit, verify_audit
from shared.db.session import Database
from tests.support import Http, petition, valid_id, wait_for

REPO = Path(__file__).resolve().parents[2]
BUREAU, HRSS, MZJ, CITY = "510104-xfj", "510104-rsj", "510104-mzj", "510100-xfj"
NODES = [(BUREAU, "锦江区信访局", "petition_bureau", "510104"),
         (HRSS, "锦江区人力资源和社会保障局", "hrss", "510104"),
         (MZJ, "锦江区民政局", "civil_affairs", "510104"),
         (CITY, "成都市信访局", "petition_bureau", "510100")]
CASE_ID = re.compile(r"LF\d{14}[A-Z2-9]{8}")


def _holder(fed, agency, case_id, role="handler"):
    st_, body = fed.client(agency, role).get(f"/api/v1/cases/{case_id}")
    return body["holder"] if st_ == 200 else None


def _audit(fed, agency, role="auditor", query=""):
    return fed.client(agency, role).get(f"/api/v1/audit{query}")


# ------------------------------------------------------------------------------ who sees what; audit API

# Distinctive identity: none of these strings occurs in any title or content below.
PETITIONER = {"name": "欧阳翠花", "id_number": valid_id(777), "phone": "13987654321", "address": "红星路三段十六号附九号"}
REPRESENTATIVES = [{"name": "司马长风", "id_number": valid_id(778)}, {"name": "上官飞燕", "id_number": valid_id(779),
                                                                    "phone": "13712345670"}]


def _secrets() -> dict[str, bytes]:
    """Every identity value as the bytes that would betray it: UTF-8, and JSON's \\u escapes."""
    out = {}
    for person in [PETITIONER, *REPRESENTATIVES]:
        for field, value in person.items():
            out[f"{field}={value}"] = value.encode()
            escaped = json.dumps(value).strip('"')
            if escaped != value:
                out[f"{field}={value} (json-escaped)"] = escaped.encode()
                out[f"{field}={value} (json-escaped, upper)"] = re.sub(
                    r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), escaped).encode()
    return out


def _files_containing(root: Path, needles: dict[str, bytes]) -> list[str]:
    hits = []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        data = f.read_bytes()
        hits += [f"{label} in {f.relative_to(root)}" for label, needle in needles.items() if needle in data]
    return hits


def test_access_audit_api_and_identity_never_in_clear(start_federation, tmp_path):
    fed = start_federation(NODES)
    clerk = fed.client(BUREAU)
    st_, one = clerk.post("/api/v1/petitions", petition(1, petitioner=PETITIONER, category="劳动社保"))
    assert st_ == 201, one
    st_, many = clerk.post("/api/v1/petitions", petition(2, persons=8, petitioner=None, representatives=REPRESENTATIVES,
                                                         category="劳动社保"))
    assert st_ == 201, many
    case_id = one["case_id"]
    for cid in (case_id, many["case_id"]):
        wait_for(lambda: _holder(fed, HRSS, cid) == HRSS, timeout=60, what=f"{cid} signed for by 人社局")

    # 民政局 does not share a 人社局 case: not even its existence is revealed, identity or not.
    for role in ("handler", "admin", "auditor"):
        for query in ("", "?identity=true"):
            st_, err = fed.client(MZJ, role).get(f"/api/v1/cases/{case_id}{query}")
            assert st_ == 404, (role, query, err)
    # The city bureau supervises the case: it sees it, but it does not handle it, so no identity.
    st_, seen = fed.client(CITY, "supervisor").get(f"/api/v1/cases/{case_id}?identity=true")
    assert st_ == 200 and seen["holder"] == HRSS and seen["petitioners"] is None
    # Without ?identity=true nobody gets identity, not even the handler.
    st_, plain = fed.client(HRSS, "handler").get(f"/api/v1/cases/{case_id}")
    assert st_ == 200 and plain["petitioners"] is None
    # An auditor reads the trail, not the petitioner.
    st_, audited = fed.client(HRSS, "auditor").get(f"/api/v1/cases/{case_id}?identity=true")
    assert st_ == 200 and audited["petitioners"] is None
    # The 人社局 handler signed for it: the authorised view carries identity (fetched from the receiving node).
    st_, full = fed.client(HRSS, "handler").get(f"/api/v1/cases/{case_id}?identity=true")
    assert st_ == 200, full
    assert full["petitioners"][0]["name"] == PETITIONER["name"]
    assert full["petitioners"][0]["id_number"] == PETITIONER["id_number"]
    st_, full_b = fed.client(BUREAU, "handler").get(f"/api/v1/cases/{case_id}?identity=true")
    assert st_ == 200 and full_b["petitioners"][0]["phone"] == PETITIONER["phone"]

    # --- the audit trail over HTTP: auditors and admins read it, nobody changes it
    st_, trail = _audit(fed, BUREAU)
    assert st_ == 200, trail
    assert trail["verification"]["ok"] is True and trail["verification"]["problems"] == []
    actions = {(e["action"], e["object_id"]) for e in trail["entries"]}
    assert ("case.register", case_id) in actions
    assert ("identity.disclose", case_id) in actions          # handed to 人社局 over gRPC
    assert ("identity.read", case_id) in actions              # read at the desk by the bureau's handler
    assert ("case.read", case_id) in actions                  # reads of case data are on record too
    disclosed = next(e for e in trail["entries"] if e["action"] == "identity.disclose" and e["object_id"] == case_id)
    assert disclosed["actor"] == f"{HRSS}/demo-handler"
    st_, rsj_trail = _audit(fed, HRSS, query=f"?object_id={case_id}")
    assert st_ == 200 and rsj_trail["verification"]["ok"]
    assert {(e["action"], e["actor"]) for e in rsj_trail["entries"]} >= {("identity.read", "demo-handler"),
                                                                         ("case.read", "demo-handler"),
                                                                         ("case.read", "demo-auditor")}
    # The handler read the case many times (polling above): on record once per window, not once per poll.
    assert [e["actor"] for e in rsj_trail["entries"] if e["action"] == "case.read"].count("demo-handler") == 1
    assert _audit(fed, BUREAU, role="admin")[0] == 200
    for role in ("clerk", "handler", "supervisor", "leader"):
        st_, err = _audit(fed, BUREAU, role=role)
        assert st_ == 403 and err["error"]["code"] == "forbidden", role
    assert Http(fed.fed.node(BUREAU).url()).get("/api/v1/audit")[0] == 401
    auditor = fed.client(BUREAU, "auditor")
    first = trail["entries"][-1]["seq"]
    for method in ("PUT", "POST", "DELETE", "PATCH"):
        st_, _ = auditor.call(method, "/api/v1/audit", {"seq": first, "detail": "篡改"})
        assert st_ == 405, method
        for path in (f"/api/v1/audit/{first}", "/api/v1/audit/entries"):
            st_, _ = auditor.call(method, path, {"detail": "篡改"})
            assert st_ in (404, 405), (method, path, st_)
    st_, after = _audit(fed, BUREAU, query="?limit=500")
    by_seq = {e["seq"]: e for e in after["entries"]}
    assert all(by_seq[e["seq"]] == e for e in trail["entries"]), "an audit entry changed"
    assert after["verification"]["ok"] and after["total"] > trail["total"]  # the reads themselves were recorded
    assert any(e["action"] == "audit.read" and e["actor"] == "demo-auditor" for e in after["entries"])
    st_, err = _audit(fed, BUREAU, query="?limit=0")
    assert st_ == 422 and err["error"]["field"] == "query.limit"

    # --- identity never in clear at rest: stop everything so every buffer is on disk, then read every byte
    fed.procs.stop()
    fed.nats.stop()
    store = fed.nats.root / f"jetstream-{fed.nats.name}"
    logs = tmp_path / "logs"
    dbs = [p for p in (tmp_path / "fed").rglob("*") if p.name.endswith((".db", ".db-wal"))]
    assert any(store.rglob("*.blk")), "no JetStream message blocks on disk"
    assert {p.name for p in logs.glob("*.log")} >= {f"{n[0]}-{svc}.log" for n in NODES for svc in SERVICE_NAMES}
    assert {p.parent.name for p in dbs} == {n[0] for n in NODES}
    # Positive control: the scan does see clear text in each place (so a miss below means something).
    assert _files_containing(store, {"case": case_id.encode()}), "case id not found in the JetStream store"
    assert _files_containing(tmp_path / "fed" / BUREAU, {"case": case_id.encode()})
    assert _files_containing(logs, {"started": b"started"})
    assert _files_containing(tmp_path, _secrets()) == []


# ------------------------------------------------------------------------ tamper evidence: the CLI verifies

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def _entry_seqs(db: Path) -> list[int]:
    with sqlite3.connect(db) as c:
        return [r[0] for r in c.execute("SELECT seq FROM audit_log ORDER BY seq")]


def test_edited_or_deleted_audit_entry_fails_verification(start_federation):
    fed = start_federation(NODES[:1])
    for n in range(4):
        st_, r = fed.client(BUREAU).post("/api/v1/petitions", petition(10 + n))
        assert st_ == 201, r
    config = str(fed.fed.node(BUREAU).config_path)
    db = fed.fed.root / BUREAU / "intake.db"
    assert len(_entry_seqs(db)) >= 4

    ok = _cli("audit", "verify", "--config", config)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{BUREAU}/intake: OK" in ok.stdout and f"{BUREAU}/routing: OK" in ok.stdout

    with sqlite3.connect(db) as c:  # an insider edits one entry in the database file
        original = c.execute("SELECT detail FROM audit_log WHERE seq = 2").fetchone()[0]
        c.execute("UPDATE audit_log SET detail = '已删除信访人记录' WHERE seq = 2")
    bad = _cli("audit", "verify", "--config", config, "--service", "intake")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "entry 2: content does not match its hash (modified)" in bad.stdout
    assert "FAILED" in bad.stderr
    st_, trail = _audit(fed, BUREAU)  # the auditor's HTTP view says the same
    assert st_ == 200 and trail["verification"]["ok"] is False
    assert any("entry 2" in p for p in trail["verification"]["problems"])
    shown = _cli("audit", "show", "--config", config, "--service", "intake", "--limit", "3")
    assert shown.returncode == 0 and shown.stdout.count("\n#") == 3

    with sqlite3.connect(db) as c:
        c.execute("UPDATE audit_log SET detail = ? WHERE seq = 2", (original,))
    assert _cli("audit", "verify", "--config", config).returncode == 0

    with sqlite3.connect(db) as c:  # … or deletes one
        c.execute("DELETE FROM audit_log WHERE seq = 3")
    bad = _cli("audit", "verify", "--config", config)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "entry 3..3 missing (deleted)" in bad.stdout and "entry 4: link to the previous entry broken" in bad.stdout


def test_cli_usage_errors_and_tools(tmp_path):
    missing = _cli("audit", "verify", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "not found" in missing.stderr
    key = _cli("keygen")
    assert key.returncode == 0 and len(base64.b64decode(key.stdout.strip())) == 32
    fed = federation.build(tmp_path / "fed", "nats://127.0.0.1:9", NODES[:1])
    config = str(fed.nodes[0].config_path)
    assert _cli("audit", "verify", "--config", config).returncode == 2  # no database yet: not created by verify
    assert not (tmp_path / "fed" / BUREAU / "intake.db").exists()
    migrated = _cli("migrate", "--config", config)
    assert migrated.returncode == 0, migrated.stderr
    assert all(f"[{i}/{len(SERVICE_NAMES)}]" in migrated.stdout for i in range(1, len(SERVICE_NAMES) + 1))
    assert _cli("audit", "verify", "--config", config).returncode == 0
    tok = _cli("token", "--config", config, "--name", "王审计", "--role", "auditor")
    assert tok.returncode == 0, tok.stderr
    token = next(line for line in tok.stdout.splitlines() if line.startswith("lf_"))
    block = tok.stdout[tok.stdout.index("[[users]]"):]
    user = tomllib.loads(block)["users"][0]
    assert user == {"name": "王审计", "role": "auditor", "token_sha256": token_hash(token)}
    assert _cli("token", "--config", config, "--name", "x", "--role", "king").returncode == 2


def test_concurrent_audit_appends_keep_one_chain(tmp_path, backend, request):
    """Two threads appending to the trail at once must not both link to the same previous entry."""
    url = f"sqlite:///{tmp_path / 'chain.db'}" if backend == "sqlite" else \
        request.getfixturevalue("pg").create_db(f"chain_{uuid.uuid4().hex[:10]}")
    upgrade_head(REPO / "services" / "intake", url)
    db = Database(url)
    errors = []

    def reader_then_auditor(i: int) -> None:
        try:
            for j in range(15):
                def work(s):
                    s.execute(sa.text("SELECT count(*) FROM cases"))  # read first, as views do
                    audit(s, agency="a", actor=f"t{i}", action="case.read", object_id=str(j))
                db.run(work)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader_then_auditor, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as s:
        assert verify_audit(s) == []
    db.dispose()


# ------------------------------------------------------------------------------ fuzzing the intake API

FUZZ_BUDGET_S = 75.0
FUZZ_PER_OPERATION = 10
FUZZ_TARGETED = 90

_text = st.text(max_size=120)
_person = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=60), st.sampled_from(["张三", "李四", " ", ""]))},
    optional={"id_number": st.one_of(st.sampled_from([valid_id(n) for n in range(900, 904)] + ["51010419900101123X",
                                                                                                  "abc", ""]),
                                     st.text(max_size=20), st.none()),
              "phone": st.one_of(st.sampled_from(["13800138000", "028-85551234", "12345"]), st.text(max_size=16)),
              "address": st.text(max_size=210)})
_WILD = {"channel": st.sampled_from(["letter", "visit", "phone", "online", "fax", "email", "forwarded", "pigeon", ""]),
         "division": st.sampled_from(["510104", "510100", "510000", "999999", "51010", "510104 ", "５１０１０４"]),
         "title": st.one_of(st.sampled_from(["拖欠工资", "低保申请", "征地补偿", " "]), _text),
         "content": st.one_of(st.sampled_from(["申请低保被拒，要求复查。", "扬言去北京上访", "\n"]), st.text(max_size=400)),
         "category": st.one_of(st.none(), st.sampled_from([*CATEGORIES, "不存在"])),
         "persons": st.one_of(st.integers(-2, 12), st.integers(min_value=-2**70, max_value=2**70)),
         "representatives": st.lists(_person, max_size=7),
         "petitioner": st.one_of(st.none(), _person),
         "anonymous": st.booleans(),
         "target_agency": st.sampled_from([None, HRSS, BUREAU, "nope", ""]),
         "reported_agency": st.sampled_from([None, HRSS, BUREAU, "nope"]),
         "unexpected": st.integers()}


@st.composite
def _petitions(draw):
    """A valid petition with zero to three fields replaced by wild values: most get past validation."""
    body = petition(draw(st.integers(0, 5)))
    for field in draw(st.lists(st.sampled_from(sorted(_WILD)), max_size=3, unique=True)):
        value = draw(_WILD[field])
        if value is None and draw(st.booleans()):
            body.pop(field, None)
        else:
            body[field] = value
    return body


def _count_rows(db: Path, sql: str) -> list:
    with sqlite3.connect(db) as c:
        return [r[0] for r in c.execute(sql)]


def test_fuzz_intake_api_no_server_errors_and_rejections_store_nothing(start_federation):
    fed = start_federation(NODES[:1])
    node = fed.fed.node(BUREAU)
    base, headers = node.url(), {"Authorization": f"Bearer {node.tokens['clerk']}"}
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", timeout=30)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {(o.method.upper(), o.path) for o in operations} >= {("POST", "/api/v1/petitions"),
                                                                ("GET", "/api/v1/cases/{case_id}"),
                                                                ("GET", "/api/v1/query/{query_code}"),
                                                                ("GET", "/api/v1/audit")}
    started = time.monotonic()
    failures: list[str] = []
    accepted: set[str] = set()   # case ids named by successful POSTs
    statuses: dict[str, list[int]] = {}

    def over_budget() -> bool:
        return time.monotonic() - started > FUZZ_BUDGET_S

    def record(label: str, method: str, status: int, text: str) -> None:
        statuses.setdefault(label, []).append(status)
        if method == "POST" and 200 <= status < 300:
            accepted.update(CASE_ID.findall(text))

    fuzz = settings(max_examples=FUZZ_PER_OPERATION, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    for op in operations:
        examples = schema.get_strategies_from_examples(op)
        strategy = st.one_of(op.as_strategy(), *examples)

        @fuzz
        @given(case=strategy)
        def run(case):
            if over_budget():
                return
            response = case.call(base_url=base, headers=headers, timeout=30)
            record(op.label, op.method.upper(), response.status_code, response.text)
            try:
                case.validate_response(response, checks=[not_a_server_error], headers=headers)
            except Exception as e:  # collected, so one run reports every failure without shrinking for minutes
                failures.append(f"{op.label} → {response.status_code}: {response.text[:300]}\n"
                                f"  {case.as_curl_command(headers=headers)}\n  {type(e).__name__}: {str(e)[:300]}")
        run()

    # Schema-shaped random input rarely gets past validation: push nearly valid petitions through too.
    clerk = fed.client(BUREAU)

    @settings(max_examples=FUZZ_TARGETED, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(body=_petitions(), key=st.one_of(st.none(), st.sampled_from(["k1", "k2"]), st.text(max_size=30)))
    def register(body, key):
        if over_budget():
            return
        extra = {"Idempotency-Key": key} if key is not None and key.isascii() and key.isprintable() else {}
        status, answer = clerk.post("/api/v1/petitions", body, headers=extra)
        record("POST /api/v1/petitions (targeted)", "POST", status, json.dumps(answer))
        if status >= 500:
            failures.append(f"POST /api/v1/petitions {json.dumps(body, ensure_ascii=False)[:400]} headers={extra}"
                            f" → {status}: {str(answer)[:300]}")
    register()
    for case_id in sorted(accepted):  # the case view of every accepted petition, with and without identity
        for query in ("", "?identity=true"):
            status, answer = clerk.get(f"/api/v1/cases/{case_id}{query}")
            record("GET /api/v1/cases/{case_id} (accepted)", "GET", status, "")
            if status != 200:
                failures.append(f"GET /api/v1/cases/{case_id}{query} → {status}: {str(answer)[:300]}")

    elapsed = time.monotonic() - started
    summary = {k: {s: v.count(s) for s in sorted(set(v))} for k, v in statuses.items()}
    print(f"fuzz run: {elapsed:.1f}s, {len(accepted)} case(s) accepted; statuses per operation: {summary}")
    assert failures == [], "\n".join(failures)
    assert sum(map(len, statuses.values())) >= 40, summary  # the budget stops new requests, not a slow machine
    assert accepted, f"no petition was ever accepted: {summary}"

    # Whatever was refused stored nothing: every stored case, identity, outbox event and idempotency record
    # belongs to a request that was answered with success.
    db = fed.fed.root / BUREAU / "intake.db"

    def settled():
        cases = set(_count_rows(db, "SELECT case_id FROM cases"))
        return cases if cases >= accepted else None
    cases = wait_for(settled, timeout=20, what="accepted cases in the read model")
    assert cases == accepted, (sorted(cases - accepted), sorted(accepted - cases))
    assert set(_count_rows(db, "SELECT DISTINCT case_id FROM petitioners")) <= accepted
    subjects = _count_rows(db, "SELECT subject FROM outbox")
    assert {s.rsplit(".", 1)[1] for s in subjects} <= accepted
    for response in _count_rows(db, "SELECT response FROM idempotency_keys"):
        assert json.loads(response)["case_id"] in accepted


# ------------------------------------------------------------------------------------- 查询码 rate limit

def test_query_code_guessing_is_rate_limited(start_federation):
    fed = start_federation(NODES[:1])
    st_, r = fed.client(BUREAU).post("/api/v1/petitions", petition(30))
    assert st_ == 201
    anonymous = Http(fed.fed.node(BUREAU).url())
    answers, t0 = [], time.monotonic()
    while 429 not in answers and len(answers) < 40:
        answers.append(anonymous.get(f"/api/v1/query/ABCD-EFGH-{len(answers):04d}")[0])
    refilled = (time.monotonic() - t0) * 30 / 60  # tokens regained while guessing
    assert answers[-1] == 429, answers                 # the guesser is throttled …
    assert set(answers[:-1]) == {404}, answers
    assert 10 <= len(answers) - 1 <= 10 + refilled + 1, (answers, refilled)  # … after the burst of 10
    st_, err = anonymous.get("/api/v1/query/ABCD-EFGH-JKMN")
    assert st_ in (404, 429) and (st_ == 404 or err["error"]["code"] == "rate_limited")
    # Another client address has its own bucket: the petitioner's own query still works.
    host, port = fed.fed.node(BUREAU).http["intake"].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=("127.0.0.2", 0))
    conn.request("GET", f"/api/v1/query/{r['query_code']}")
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["case_id"] == r["case_id"]
    conn.close()


def test_control_characters_never_cause_server_errors(start_federation, backend):
    """NUL and other control characters are valid JSON but not storable text on PostgreSQL."""
    fed = start_federation(NODES[:1], backend=backend)
    clerk = fed.client(BUREAU)
    for n, change in enumerate([{"title": "拖欠\x00工资"}, {"content": "拖欠工资\x00三个月"},
                                {"petitioner": {"name": "张\x00三"}}, {"title": "拖欠\x07工资\x1b"},
                                {"petitioner": {"name": "张三", "address": "春熙路\x00"}}]):
        st_, r = clerk.post("/api/v1/petitions", petition(40 + n, **change))
        assert st_ in (201, 422), (change, st_, r)
        if st_ == 201:
            assert clerk.get(f"/api/v1/cases/{r['case_id']}")[0] == 200
    for path in ("/api/v1/cases/LF%00", "/api/v1/query/AB%00", "/api/v1/audit?object_id=LF%00"):
        st_, r = fed.client(BUREAU, "auditor").get(path)
        assert st_ < 500, (path, st_, r)
    st_, r = clerk.call("POST", "/api/v1/petitions", raw=json.dumps(petition(50, title="a\x00b")).encode())
    assert st_ == 422, r
    # The operator's check reads either backend (read-only) and finds the trail intact.
    ok = _cli("audit", "verify", "--config", str(fed.fed.node(BUREAU).config_path))
    assert ok.returncode == 0 and f"{BUREAU}/intake: OK" in ok.stdout, ok.stdout + ok.stderr
