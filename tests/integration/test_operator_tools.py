"""Issue 10: the operator's command on a real node — `lianfang node init`, `status`, `export`, `replay`.

One small federation (county 信访局 + county 人社局, intake/routing/supervision only) serves the module;
the tests run in file order: status and replay stop and restart the bureau's intake, the breach test moves
the federation's clock (LIANFANG_CLOCK_FILE) 20 days on, and the log scan reads what all of them left."""
from __future__ import annotations

import hashlib
import json
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from shared import clock, federation
from shared.config import load_node
from shared.launcher import REPO, NatsServer, NodeProcesses
from tests.support import Http, petition, wait_for

XFJ, RSJ = "510104-xfj", "510104-rsj"
NODES = [(XFJ, "锦江区信访局", "petition_bureau", "510104"), (RSJ, "锦江区人力资源和社会保障局", "hrss", "510104")]
SERVICES = ("intake", "routing", "supervision")
REPLY_TEXT = "经调查核实，该公司确有拖欠工资情形，我局已责令其于十五日内足额支付。如不服本意见，可自收到之日起30日内申请复查。"
READ_MODEL = ("cases", "case_events", "query_codes", "registrations")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


class Fed:
    def __init__(self, root: Path, spec: federation.Federation, nodes: dict[str, NodeProcesses], env: dict):
        self.root, self.spec, self.nodes, self.env = root, spec, nodes, env
        self.clock_file = Path(env["LIANFANG_CLOCK_FILE"])

    def restart_intake(self, agency: str) -> None:
        fresh = NodeProcesses(self.spec.node(agency), self.root / "logs", services=("intake",), env=self.env).start()
        self.nodes[agency].procs["intake"] = fresh.procs["intake"]  # stopped with the rest at teardown
        fresh.wait_ready(120)

    def client(self, agency: str, role: str = "clerk", service: str = "intake") -> Http:
        n = self.spec.node(agency)
        return Http(n.url(service), n.tokens[role])

    def config(self, agency: str) -> str:
        return str(self.spec.node(agency).config_path)

    def view(self, agency: str, case_id: str) -> dict | None:
        st, body = self.client(agency, "handler").get(f"/api/v1/cases/{case_id}")
        return body if st == 200 else None

    def intake_db(self, agency: str) -> Path:
        return self.spec.root / agency / "intake.db"


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    root = tmp_path_factory.mktemp("ops")
    nats = NatsServer(root).start()
    spec = federation.build(root / "fed", nats.url, NODES, auto_sign_for=True)
    nats.secure(spec)
    for n in spec.nodes:  # the nodes run three services; their configs name only those
        text = n.config_path.read_text(encoding="utf-8")
        n.config_path.write_text(re.sub(r"\[services\.(joint_reception|legal_referral)\]\n(.+\n)*\n", "", text),
                                 encoding="utf-8")
        assert set(load_node(n.config_path).services) == set(SERVICES)
    env = {"LIANFANG_CLOCK_FILE": str(root / "clock.json")}  # the last test moves time on
    clock.set_offset(timedelta(0), env["LIANFANG_CLOCK_FILE"])
    nodes = {n.agency: NodeProcesses(n, root / "logs", services=SERVICES, env=env).start() for n in spec.nodes}
    try:
        for n in nodes.values():
            n.wait_ready(180)
        yield Fed(root, spec, nodes, env)
    finally:
        for n in nodes.values():
            n.stop()
        nats.stop()


def new_case(fed: Fed, n: int) -> str:
    st, r = fed.client(XFJ).post("/api/v1/petitions", petition(n))
    assert st == 201, r
    for agency in (XFJ, RSJ):
        wait_for(lambda: (v := fed.view(agency, r["case_id"])) and v["holder"] == RSJ,
                 what=f"{r['case_id']} signed for by the 人社局, seen on {agency}")
    return r["case_id"]


# ----------------------------------------------------------------------------------------------- node init

def test_node_init_round_trips(tmp_path):
    out = tmp_path / "etc" / "510104-mzj.toml"
    args = ["node", "init", "--agency", "510104-mzj", "--name", "锦江区民政局", "--type", "civil_affairs",
            "--division", "510104", "--out", str(out), "--directory", str(tmp_path / "federation.toml"),
            "--data-dir", str(tmp_path / "data"), "--bus-url", "tls://nats.example.internal:4222",
            "--tls-dir", str(tmp_path / "tls"), "--http-port", "9100", "--grpc-port", "59100"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    cfg = load_node(out)
    assert (cfg.agency, cfg.name, cfg.type, cfg.division, cfg.level) == \
           ("510104-mzj", "锦江区民政局", "civil_affairs", "510104", "county")
    assert cfg.auto_sign_for is False and cfg.bus.user == "510104-mzj" and len(cfg.bus.password) >= 24
    assert cfg.bus.url == "tls://nats.example.internal:4222" and cfg.tls.cert == tmp_path / "tls" / "510104-mzj.crt"
    assert cfg.services["intake"].http == "127.0.0.1:9100" and cfg.services["routing"].grpc == "127.0.0.1:59101"
    assert cfg.services["intake"].database == f"sqlite:///{tmp_path / 'data' / 'intake.db'}"
    first = out.read_bytes()

    # never overwrites; a second node gets other keys, and shares the pseudonym key when told to
    again = cli(*args)
    assert again.returncode == 2 and "拒绝覆盖" in again.stderr and out.read_bytes() == first
    other = tmp_path / "rsj.toml"
    r = cli("node", "init", "--agency", "510104-rsj", "--name", "锦江区人社局", "--type", "hrss", "--division", "510104",
            "--out", str(other), "--directory", str(tmp_path / "federation.toml"),
            "--pseudonym-key", cfg.secrets.pseudonym_key)
    assert r.returncode == 0, r.stderr
    cfg2 = load_node(other)
    assert cfg2.secrets.pseudonym_key == cfg.secrets.pseudonym_key and cfg2.secrets.field_key != cfg.secrets.field_key
    assert cfg2.bus.password != cfg.bus.password and cfg2.tls is None

    # an invalid node is refused and leaves no file behind
    for bad in (["--agency", "Bad Agency", "--division", "510104"], ["--agency", "510104-x", "--division", "999999"]):
        path = tmp_path / "bad.toml"
        r = cli("node", "init", "--name", "x", "--type", "hrss", "--out", str(path), "--directory", "d.toml", *bad)
        assert r.returncode == 2 and not path.exists(), r.stderr


def test_certs_wraps_the_dev_ca(tmp_path):
    r = cli("certs", "--out", str(tmp_path / "tls"), "--agency", "510104-mzj")
    assert r.returncode == 0, r.stderr
    from cryptography import x509

    from shared.certs import agency_of
    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "510104-mzj.crt").read_bytes())
    assert agency_of(cert) == "510104-mzj"
    assert stat.S_IMODE((tmp_path / "tls" / "510104-mzj.key").stat().st_mode) == 0o600
    assert {p.name for p in (tmp_path / "tls").glob("*.crt")} == {"ca.crt", "510104-mzj.crt", "nats-server.crt"}


# ------------------------------------------------------------------------------------------------- status

def _status(fed: Fed, agency: str) -> tuple[int, dict]:
    r = cli("status", "--config", fed.config(agency), "--json")
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def _metrics(fed: Fed, agency: str) -> str:
    with urllib.request.urlopen(fed.spec.node(agency).url("intake") + "/metrics", timeout=5) as r:
        return r.read().decode()


def test_status_shows_the_stream_and_consumer_lag(fed):
    new_case(fed, 1)
    code, report = _status(fed, XFJ)
    assert code == 0 and report["ok"], report
    assert {s["service"]: s["up"] for s in report["services"]} == {s: True for s in SERVICES}
    stream = report["bus"]["stream"]
    assert stream["name"] == "LF_LEDGER" and stream["messages"] >= 3 and stream["last_seq"] >= stream["messages"]
    names = {c["name"]: c for c in report["bus"]["consumers"]}
    assert f"projection-{XFJ}" in names and f"routing-{XFJ}" in names
    assert not any(RSJ in n for n in names)  # only this node's consumers (unless --all-consumers)
    wait_for(lambda: all(c["lag"] == 0 for c in _status(fed, XFJ)[1]["bus"]["consumers"]),
             what="every consumer caught up")
    # routing reacts only to its own node's registrations and to returns: the server sends it nothing else
    # (the 人社局's projection gets the case's events; its routing consumer none of them)
    wait_for(lambda: all(c["lag"] == 0 for c in _status(fed, RSJ)[1]["bus"]["consumers"]),
             what="the 人社局's consumers caught up")
    rsj = {c["name"]: c for c in _status(fed, RSJ)[1]["bus"]["consumers"]}
    assert rsj[f"routing-{RSJ}"]["subjects"] == [f"lf.ev.{RSJ}.registered.*", "lf.ev.*.returned.*"]
    assert rsj[f"routing-{RSJ}"]["delivered_seq"] == 0 and rsj[f"projection-{RSJ}"]["delivered_seq"] >= 3
    # /metrics: the projector's lag (ledger last seq − last applied) and the breached-deadline count
    wait_for(lambda: f'lianfang_consumer_lag_events{{consumer="projection-{XFJ}"}} 0' in _metrics(fed, XFJ),
             what="lag gauge at 0")
    assert "lianfang_breached_deadlines 0" in _metrics(fed, XFJ)

    text = cli("status", "--config", fed.config(XFJ))
    assert text.returncode == 0 and "LF_LEDGER" in text.stdout and f"projection-{XFJ}" in text.stdout
    assert "积压 lag" in text.stdout and "运行 up" in text.stdout

    # the bureau's intake stops; the 人社局 registers a case the bureau shares: its projection falls behind
    intake = fed.nodes[XFJ].procs["intake"]
    intake.terminate()
    intake.wait(20)
    try:
        st, r = fed.client(RSJ).post("/api/v1/petitions", petition(2))
        assert st == 201, r
        def behind():
            code, rep = _status(fed, XFJ)
            lag = {c["name"]: c["lag"] for c in rep["bus"]["consumers"]}[f"projection-{XFJ}"]
            return code == 1 and not rep["ok"] and lag >= 1 and rep
        rep = wait_for(behind, what="projection lag shown while intake is down")
        assert {s["service"]: s["up"] for s in rep["services"]}["intake"] is False
        text = cli("status", "--config", fed.config(XFJ))
        assert text.returncode == 1 and "停止 DOWN" in text.stdout
    finally:
        fed.restart_intake(XFJ)
    wait_for(lambda: fed.view(XFJ, r["case_id"]), what="the bureau catches up after the restart")
    wait_for(lambda: all(c["lag"] == 0 for c in _status(fed, XFJ)[1]["bus"]["consumers"]), what="lag back to 0")


# ------------------------------------------------------------------------------------------------- export

def test_export_case_file_has_timeline_reply_and_manifest(fed, tmp_path):
    case_id = new_case(fed, 3)
    sv = fed.client(RSJ, "handler", "supervision")
    st, r = sv.post(f"/api/v1/supervision/cases/{case_id}/accept", {})
    assert st == 200, r
    st, r = sv.post(f"/api/v1/supervision/cases/{case_id}/reply", {"title": "信访事项处理意见书", "text": REPLY_TEXT})
    assert st == 200, r
    view = wait_for(lambda: (v := fed.view(XFJ, case_id)) and v["status"] == "replied" and v,
                    what="the reply folded on the bureau")

    out = tmp_path / "case-file"
    r = cli("export", "--config", fed.config(XFJ), "--case", case_id, "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "一案一卷" in html and case_id in html and REPLY_TEXT in html and "信访事项处理意见书" in html
    for heading in ("案件概况", "承办单位", "办理时限", "办理过程", "信访处理意见书"):
        assert heading in html
    # the timeline across agencies: every event of the case, in order, with the agency that recorded it
    rows = html.split("<h2>四、办理过程</h2>")[1].split("<h2>")[0]
    positions = [rows.index(f'id="ev-{e["id"]}"') for e in view["events"]]
    assert positions == sorted(positions) and len(positions) >= 5
    assert "锦江区信访局" in rows and "锦江区人力资源和社会保障局" in rows
    for label in ("登记", "交办", "签收", "受理", "答复"):
        assert label in rows
    offered = next(e for e in view["events"] if e["type"] == "case.offered")
    offered_row = rows.split(f'id="ev-{offered["id"]}"')[1].split("</tr>")[0]
    assert "交办至：锦江区人力资源和社会保障局" in offered_row and "分办规则：" in offered_row, offered_row  # with its 分办决定
    assert "测试人3" not in html and "测试人3" not in (out / "case.json").read_text(encoding="utf-8")  # no identity

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["case_id"] == case_id and manifest["documents"] == 1
    assert {f["path"] for f in manifest["files"]} == {"index.html", "case.json"}
    for f in manifest["files"]:
        assert hashlib.sha256((out / f["path"]).read_bytes()).hexdigest() == f["sha256"]

    # the disclosure is on the audit trail, and the chain still verifies
    shown = cli("audit", "show", "--config", fed.config(XFJ), "--service", "intake", "--limit", "5")
    assert shown.returncode == 0 and f"case.export  {case_id}" in shown.stdout, shown.stdout
    assert cli("audit", "verify", "--config", fed.config(XFJ), "--service", "intake").returncode == 0

    # a second export into the same folder is refused; an unknown case is an error, not an empty file
    again = cli("export", "--config", fed.config(XFJ), "--case", case_id, "--out", str(out))
    assert again.returncode == 2 and "非空" in again.stderr
    missing = cli("export", "--config", fed.config(XFJ), "--case", "LF51010420990101XXXXXXXX",
                  "--out", str(tmp_path / "none"))
    assert missing.returncode == 2 and not (tmp_path / "none" / "index.html").exists()


# ------------------------------------------------------------------------------------------------- replay

def _rows(db: Path) -> dict[str, list]:
    """The read model's rows, without the local row counter (pos) and the ledger seq of the node's own
    events (recorded at staging, before the ledger gave them one)."""
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        out = {}
        for table in READ_MODEL:
            rows = [{k: r[k] for k in r.keys() if k not in ("pos", "stream_seq")}
                    for r in c.execute(f"SELECT * FROM {table}")]
            out[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
        return out


def test_replay_rebuilds_the_read_model(fed):
    new_case(fed, 4)
    wait_for(lambda: all(c["lag"] == 0 for c in _status(fed, XFJ)[1]["bus"]["consumers"]), what="caught up")
    with sqlite3.connect(fed.intake_db(XFJ)) as c:  # every case the bureau shares (this module's four)
        ids = [r[0] for r in c.execute("SELECT case_id FROM cases")]
    before_views = {c: fed.view(XFJ, c) for c in ids}
    assert all(before_views.values())

    refused = cli("replay", "--config", fed.config(XFJ))
    assert refused.returncode == 2 and "仍在运行" in refused.stderr  # the service still answers

    fed.nodes[XFJ].procs["intake"].terminate()
    fed.nodes[XFJ].procs["intake"].wait(20)
    db = fed.intake_db(XFJ)
    before = _rows(db)
    assert len(before["cases"]) >= 4 and len(before["case_events"]) >= 4 * 3
    with sqlite3.connect(db) as c:
        for table in READ_MODEL:
            c.execute(f"DELETE FROM {table}")
        identities = c.execute("SELECT count(*) FROM petitioners").fetchone()[0]
    assert all(not rows for rows in _rows(db).values())

    r = cli("replay", "--config", fed.config(XFJ), "--every", "5", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "已重放 replayed 5 /" in r.stdout and "重放完成 replay done" in r.stdout
    assert f"{len(before['cases'])} cases" in r.stdout
    after = _rows(db)
    for table in READ_MODEL:
        assert after[table] == before[table], table
    with sqlite3.connect(db) as c:  # the node's own records are untouched
        assert c.execute("SELECT count(*) FROM petitioners").fetchone()[0] == identities
        assert c.execute("SELECT action FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()[0] == "readmodel.replay"

    # the database file itself lost: replay makes it anew (identities and the old audit chain are gone)
    for f in db.parent.glob("intake.db*"):
        f.unlink()
    r = cli("replay", "--config", fed.config(XFJ), timeout=120)
    assert r.returncode == 0, r.stderr
    assert _rows(db) == before

    fed.restart_intake(XFJ)
    for case_id, view in before_views.items():
        assert fed.view(XFJ, case_id) == view, case_id
    assert cli("audit", "verify", "--config", fed.config(XFJ), "--service", "intake").returncode == 0


# ------------------------------------------------------------------------------------ breached deadlines

def _gauge(fed: Fed, agency: str, name: str) -> float | None:
    line = next((x for x in _metrics(fed, agency).splitlines() if x.startswith(name + " ")), None)
    return float(line.split()[1]) if line else None


def test_breached_deadlines_show_in_metrics(fed):
    """Nobody accepts the case within 15 days: the bureau's supervision records the breach (责任追究),
    and the bureau's intake counts it on /metrics."""
    case_id = new_case(fed, 5)
    assert _gauge(fed, XFJ, "lianfang_breached_deadlines") == 0
    clock.set_offset(timedelta(days=20), fed.clock_file)
    wait_for(lambda: (v := fed.view(XFJ, case_id)) and any(e["type"] == "case.accountability" for e in v["events"]),
             timeout=40, what="责任追究 record for the late acceptance on the bureau")
    assert _gauge(fed, XFJ, "lianfang_breached_deadlines") >= 1


# --------------------------------------------------------------------------------------------------- logs

def test_service_logs_are_json_lines_without_identity(fed):
    """Every line the services wrote is one JSON object naming service and agency; no petitioner's name
    or ID number of this module's petitions appears in any of them."""
    logs = sorted((fed.root / "logs").glob("*.log"))
    assert {p.name for p in logs} >= {f"{a}-{s}.log" for a in (XFJ, RSJ) for s in SERVICES}
    needles = [v for n in range(1, 6) for v in (petition(n)["petitioner"]["name"], petition(n)["petitioner"]["id_number"])]
    started = 0
    for path in logs:
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            assert entry["agency"] in (XFJ, RSJ) and entry["service"] in SERVICES and entry["level"], line
            started += entry["message"].endswith(" started")
            assert not any(needle in line for needle in needles), f"petitioner identity in {path.name}: {line}"
    assert started >= len(logs)  # every process logged its start (the scan did read the logs)


def test_node_start_runs_the_nodes_services_until_stopped(nats, tmp_path):
    """`lianfang node start` runs what the config lists (here one service) and stops it on SIGTERM."""
    import signal as _signal
    spec = federation.build(tmp_path / "fed", nats.url, NODES[:1])
    nats.secure(spec)
    node = spec.node(XFJ)
    assert cli("node", "start", "--config", str(node.config_path), "--service", "weather").returncode == 2
    proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "node", "start", "--config", str(node.config_path),
                             "--service", "intake"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def healthy():
            try:
                with urllib.request.urlopen(f"{node.url('intake')}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_for(healthy, timeout=60, what="intake started by lianfang node start")
        proc.send_signal(_signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode()
        assert proc.returncode == 0 and "已停止" in out, out
        assert not healthy()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_failed_test_reports_where_each_service_waits(start_federation):
    """tests/conftest.py adds FederationProcesses.stacks() to a failed test's report: each process's own
    asyncio tasks (kill -USR1), or that it did not answer — its event loop is blocked — with its threads'
    stacks read by py-spy."""
    fed = start_federation([NODES[0]], services=("intake", "routing"))
    text = fed.procs.stacks()
    assert f"{XFJ}/intake:\ntask " in text and "services/intake/entrypoints/consumer.py" in text, text
    assert "sqlite-group-commit" not in text  # threads are left out: py-spy shows those
    routing = fed.procs.nodes[XFJ].procs["routing"]
    routing.send_signal(signal.SIGSTOP)  # as good as an event loop that is blocked
    try:
        text = fed.procs.stacks(wait=1)
    finally:
        routing.send_signal(signal.SIGCONT)
    assert f"{XFJ}/routing: no answer to SIGUSR1" in text, text
    # … and where it stands, read from outside (py-spy): its main thread, in the routing service
    routing_part = text.split(f"{XFJ}/routing:")[1].split(f"{XFJ}/")[0]
    assert '"MainThread"' in routing_part and "services.routing" in routing_part, routing_part
    assert "services/intake/entrypoints/consumer.py" in text
