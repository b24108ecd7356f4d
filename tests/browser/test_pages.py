"""Issue 9: the node's own web pages in a real browser (Debian's chromium driven by Playwright) against a
running federation — real node processes, a real nats-server with JetStream, SQLite databases.

One federation (county 信访局, county 人社局 signing by hand, city 信访局) serves the whole journey:
a clerk registers at the county bureau's 登记台 (a validation error first: shown beside the field and
nothing stored, with and without JavaScript), the petition appears in the 人社局's 待办, is signed for,
accepted and replied there, and the petitioner's 查询 page shows the reply; the case page shows the
timeline across agencies; the 督办看板 draws its charts and its figures equal the assessment API's; the
联合接访 screen renders; the 人社局 pages never show a 检举 reporter's identity. Screenshots of every page go
to var/screenshots/. Chromium runs headless with its background traffic off: loopback only."""
from __future__ import annotations

import io
import re
import secrets
import sqlite3
from csv import reader as read_csv
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from shared import federation, ledger
from shared.launcher import FederationProcesses, NatsServer
from services.intake.web.router import api_errors, petition_from_form, zh_message
from tests.support import Http, petition, valid_id, wait_for

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "var" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
BUREAU, HRSS, CITY = "510104-xfj", "510104-rsj", "510100-xfj"
NODES = [(BUREAU, "锦江区信访局", "petition_bureau", "510104"),
         (HRSS, "锦江区人力资源和社会保障局", "hrss", "510104"),
         (CITY, "成都市信访局", "petition_bureau", "510100")]
REPLY_TEXT = "经调查核实，该公司确有拖欠工资情形，我局已责令其于十五日内足额支付。如不服本意见，可自收到之日起30日内申请复查。"
TIMEOUT_MS = 180_000  # the CI machine may be busy: generous, but every wait is on a condition, never a sleep

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
expect = sync_api.expect


# --- pure helpers (no browser) ---------------------------------------------------------------------------

def test_api_messages_are_shown_in_chinese_beside_their_fields():
    body = {"error": {"code": "invalid", "field": "body", "fields": [
        {"field": "body", "message": "petitioner: 非匿名信访须填写信访人 (petitioner required unless anonymous)"},
        {"field": "title", "message": "String should have at least 1 character"},
        {"field": "petitioner.id_number", "message": "身份证号校验位错误 the ID number's check character is wrong"},
        {"field": "persons", "message": "Input should be a valid integer, unable to parse string as an integer"}]}}
    assert api_errors(body) == [{"field": "petitioner", "message": "非匿名信访须填写信访人"},
                                {"field": "title", "message": "不能为空"},
                                {"field": "petitioner.id_number", "message": "身份证号校验位错误"},
                                {"field": "persons", "message": "须为整数"}]
    assert zh_message("缺少必填字段 title (field required)") == "此项为必填"


def test_form_fields_become_the_api_body():
    body, back = petition_from_form([("channel", "visit"), ("title", " 拖欠工资 "), ("content", "某公司"), ("persons", "6"),
                                     ("petitioner.name", "张三"), ("petitioner.phone", ""), ("anonymous", "on"),
                                     ("representatives.0.name", ""), ("representatives.2.name", "李四"),
                                     ("idempotency_key", "k")])
    assert body == {"channel": "visit", "title": "拖欠工资", "content": "某公司", "persons": 6, "anonymous": True,
                    "petitioner": {"name": "张三"}, "representatives": [{"name": "李四"}]}
    assert back["representatives.0.name"] == "representatives.2.name"


# --- the federation and the browser --------------------------------------------------------------------------

class Running:
    def __init__(self, fed, procs, nats):
        self.fed, self.procs, self.nats = fed, procs, nats

    def client(self, agency: str, role: str = "clerk", service: str = "intake") -> Http:
        n = self.fed.node(agency)
        return Http(n.url(service), n.tokens[role])


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    """The conftest's start_federation, module-wide (one federation for the journey) and patient with a busy
    machine: each node may take minutes to come up while other suites run."""
    root = tmp_path_factory.mktemp("browser")
    nats = NatsServer(root).start()
    spec = federation.build(root / "fed", nats.url, NODES, auto_sign_for=True, manual_sign={HRSS})
    nats.secure(spec)  # TLS and one NATS user per node (restarts the server)
    procs = FederationProcesses(spec, root / "logs")
    try:
        for node in procs.nodes.values():
            node.start()
        for node in procs.nodes.values():
            node.wait_ready(timeout=600)
        yield Running(spec, procs, nats)
    finally:
        procs.stop()
        nats.stop()


# --- the browser ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is missing: `make browser` installs it")
    SHOTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Desk:
    """One user's browser session on one node's pages."""

    def __init__(self, browser, fed, agency: str, role: str | None, js: bool = True):
        self.fed, self.agency, self.role = fed, agency, role
        self.base = fed.fed.node(agency).url("intake")
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                           timezone_id="Asia/Shanghai", java_script_enabled=js)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        if role:
            self.login()

    def login(self) -> None:
        self.page.goto(self.base + "/ui/login?next=/ui/work")
        self.page.get_by_label("访问令牌").fill(self.fed.fed.node(self.agency).tokens[self.role])
        self.page.get_by_role("button", name="登录").click()
        self.page.wait_for_url("**/ui/work")

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def text(self) -> str:
        return self.page.locator("body").inner_text()

    def close(self) -> None:
        assert not self.errors, f"JavaScript errors on {self.agency}'s pages: {self.errors}"
        self.context.close()


def _registered_here(fed, agency: str) -> int:
    """Registrations made at this node: each stores its petitioner's (encrypted) identity in the same
    transaction as the case and its event, and nothing else writes that table."""
    with sqlite3.connect(fed.fed.root / agency / "intake.db") as db:
        return db.execute("SELECT count(*) FROM petitioners").fetchone()[0]


def _contrast(page, selector: str) -> float:
    """WCAG contrast ratio of an element's text against the first opaque background behind it."""
    return page.evaluate("""sel => {
      const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(v => { v = v / 255;
        return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
      const opaque = c => { const m = c.match(/[\\d.]+/g); return m && (m.length < 4 || +m[3] > 0.99); };
      const el = document.querySelector(sel);
      let bg = null;
      for (let n = el; n && !bg; n = n.parentElement) { const c = getComputedStyle(n).backgroundColor; if (opaque(c)) bg = c; }
      const a = lum(getComputedStyle(el).color), b = lum(bg || "rgb(255,255,255)");
      return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    }""", selector)


def _check_accessible(page) -> None:
    """Labels, language, skip link and contrast (WCAG AA: 4.5:1 for text)."""
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(i => !(i.labels && i.labels.length) && !i.getAttribute('aria-label')).map(i => i.name || i.id)""")
    assert unlabelled == [], f"form controls without a label: {unlabelled}"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for sel in ("main h1", "main p", "button.btn.primary", "header.top nav a"):
        if page.locator(sel).count():
            assert _contrast(page, sel) >= 4.5, f"{sel}: contrast {_contrast(page, sel):.2f} < 4.5"


def _assessment(fed, params: dict) -> dict:
    status, report = fed.client(BUREAU, "supervisor", "supervision").get("/api/v1/assessment?" + urlencode(params))
    assert status == 200, report
    return report


def _check_dashboard_equals_api(desk: Desk, report: dict) -> None:
    page = desk.page
    expect(page.locator("body")).to_have_attribute("data-dashboard", "ready")
    for chart in ("chart-trend", "chart-category", "chart-division", "chart-agency", "chart-rates"):
        assert page.locator(f"#{chart}").get_attribute("data-points") is not None, chart
        assert page.locator(f"#{chart} canvas").count() >= 1, f"{chart} drew nothing"
    assert int(page.locator("#chart-category").get_attribute("data-points")) > 0
    assert int(page.locator("#chart-trend").get_attribute("data-points")) == report["total"]["cases"] > 0
    total = report["total"]
    kpi = lambda key: page.locator(f".kpi[data-metric='{key}']").get_attribute("data-value")  # noqa: E731
    assert int(kpi("cases")) == total["cases"]
    assert int(kpi("overdue_total")) == total["overdue"]["total"]
    assert int(kpi("supervision_orders")) == total["supervision_orders"]
    assert int(kpi("listed_supervision")) == total["listed_supervision"]
    assert int(kpi("skipped_level_visits")) == total["skipped_level_visits"]
    assert int(kpi("repeat_cases")) == total["repeat_rate"]["numerator"]
    rows = [("total", "", total)] + [("agency", a["agency"], a) for a in report["by_agency"]] \
        + [("division", d["division"], d) for d in report["by_division"]]
    table = page.locator("#assessment-table")
    assert table.locator("tbody tr").count() == len(rows)
    for scope, code, m in rows:
        row = table.locator(f"tr[data-scope='{scope}'][data-code='{code}']")
        cell = lambda key: row.locator(f"td[data-key='{key}']")  # noqa: E731
        assert int(cell("cases").get_attribute("data-value")) == m["cases"]
        for key in ("timely_acceptance", "on_time_completion", "evaluation_participation", "satisfaction",
                    "first_time_resolution", "repeat_rate"):
            r = m[key]
            assert cell(key).get_attribute("data-value") == ("" if r["rate"] is None else str(r["rate"])) or \
                float(cell(key).get_attribute("data-value")) == r["rate"], (scope, code, key)
            assert int(cell(key).get_attribute("data-numerator")) == r["numerator"]
            assert int(cell(key).get_attribute("data-denominator")) == r["denominator"]
        assert int(cell("overdue_total").get_attribute("data-value")) == m["overdue"]["total"]
        assert int(cell("supervision_orders").get_attribute("data-value")) == m["supervision_orders"]
        assert int(cell("listed_supervision").get_attribute("data-value")) == m["listed_supervision"]
        assert int(cell("skipped_level_visits").get_attribute("data-value")) == m["skipped_level_visits"]


@pytest.mark.timeout(1800)
def test_pages_end_to_end(fed, browser):
    n = secrets.randbelow(800) + 100  # a person of their own: no repeat of another run's petition
    clerk = Desk(browser, fed, BUREAU, "clerk")
    page = clerk.page

    # 登记台: accessible, and a validation error is shown beside its field with nothing stored
    clerk.goto("/ui/register")
    _check_accessible(page)
    stored = _registered_here(fed, BUREAU)
    page.get_by_label("渠道").select_option("letter")
    page.get_by_label("主要诉求和事实").fill("某建材公司拖欠员工三个月工资，多次催要无果。")
    page.get_by_label("姓名", exact=True).first.fill("赵六")
    page.get_by_label("居民身份证号", exact=True).first.fill(valid_id(n)[:-1] + ("0" if valid_id(n)[-1] != "0" else "1"))
    page.get_by_role("button", name="提交登记").focus()
    page.keyboard.press("Enter")  # keyboard only
    title_error = page.locator("[data-field='title'] .field-error")
    expect(title_error).to_be_visible()
    expect(title_error).to_have_text(re.compile("必填"))
    expect(page.locator("[data-field='petitioner.id_number'] .field-error")).to_have_text(re.compile("身份证号校验位错误"))
    expect(page.get_by_label("事项标题")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-summary")).to_be_visible()
    clerk.shot("register-validation")
    assert _registered_here(fed, BUREAU) == stored

    # … then the petition, registered through the API by the page: case link and a printable 查询码 slip
    page.get_by_label("事项标题").fill("拖欠工资三个月")
    page.get_by_label("类别").select_option("劳动社保")
    page.get_by_label("居民身份证号", exact=True).first.fill(valid_id(n))
    page.get_by_label("联系电话", exact=True).first.fill("13800138007")
    page.get_by_role("button", name="提交登记").click()
    slip = page.locator("#slip")
    expect(slip).to_be_visible()
    code = page.locator("[data-query-code]").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", code)
    case_id = page.locator("[data-case-link]").inner_text().strip()
    clerk.shot("register-done")
    assert _registered_here(fed, BUREAU) == stored + 1  # durable before the desk was answered

    # the same form without JavaScript: server-side validation, errors beside the fields, nothing stored
    plain = Desk(browser, fed, BUREAU, "clerk", js=False)
    plain.goto("/ui/register")
    plain.page.get_by_label("事项标题").fill("噪音扰民")
    plain.page.get_by_label("主要诉求和事实").fill("小区旁工地夜间施工噪音严重。")
    plain.page.get_by_label("姓名", exact=True).first.fill("钱七")
    plain.page.get_by_label("联系电话", exact=True).first.fill("12345")
    plain.page.get_by_role("button", name="提交登记").click()
    expect(plain.page.locator("[data-field='petitioner.phone'] .field-error")).to_have_text(re.compile("电话号码格式不正确"))
    expect(plain.page.get_by_label("事项标题")).to_have_value("噪音扰民")  # what was typed is kept
    plain.shot("register-validation-nojs")
    assert _registered_here(fed, BUREAU) == stored + 1
    plain.close()

    # a 检举控告 against the 人社局, registered at the bureau: its reporter must never show on 人社局 pages
    reporter, reporter_id = "检举人孙八", valid_id(n + 1)
    status, report_case = fed.client(BUREAU).post("/api/v1/petitions", petition(
        8, title="检举人社局工作人员受贿", content="检举锦江区人社局某科长收受贿赂、违规办理社保待遇。",
        category="检举控告", reported_agency=HRSS, petitioner={"name": reporter, "id_number": reporter_id,
                                                                 "phone": "13900139008"}))
    assert status == 201, report_case

    # 人社局 待办: the offer waits to be signed for (manual_sign), then 签收 → 受理 → 答复
    hr = Desk(browser, fed, HRSS, "handler")
    work = hr.page
    offer = work.locator(f"#offers tr[data-case-id='{case_id}']")
    expect(offer).to_be_visible()
    expect(offer).to_contain_text("拖欠工资三个月")
    hr.shot("work-offer")
    offer.get_by_role("button", name="签收").click()
    expect(work.locator("#work-status")).to_contain_text("签收成功")
    held = work.locator(f"#held tr[data-case-id='{case_id}']")
    expect(held).to_have_attribute("data-status", "in_handling")
    expect(held.locator(".clock[data-clock='acceptance_notice']")).to_have_class(re.compile("clock-running"))
    held.get_by_text("受理…", exact=True).click()
    held.get_by_role("button", name="受理", exact=True).click()
    expect(held).to_have_attribute("data-status", "accepted")
    held.get_by_text("答复…", exact=True).click()
    held.get_by_label(re.compile("信访处理意见书正文")).fill(REPLY_TEXT)
    hr.shot("work-reply")
    held.get_by_role("button", name="答复", exact=True).click()
    expect(held).to_have_attribute("data-status", "replied")
    expect(held.locator(".clock[data-clock='handling']")).to_have_class(re.compile("clock-met"))
    hr.shot("work")

    # 联合接访: a walk-in queues at the 人社 window; a joint session on the case, the 人社局 takes part, outcome
    centre = fed.client(BUREAU, "clerk", "joint_reception")
    status, walk_in = centre.post("/api/v1/centre/tickets", {"topic": "工资拖欠", "petition": {
        "title": "工地欠薪", "content": "某工地拖欠农民工工资两个月。", "petitioner": {"name": "周九"}}})
    assert status == 201, walk_in
    ticket = walk_in["ticket"]["number"]

    def open_session():
        st, body = centre.post("/api/v1/centre/sessions", {"case_id": case_id, "agencies": [HRSS],
                                                           "agenda": "欠薪清偿与劳动监察衔接"})
        assert st in (201, 404), body
        return body if st == 201 else None
    session_id = wait_for(open_session, timeout=120, what="the centre has the case")["session_id"]
    hr_jr = fed.client(HRSS, "handler", "joint_reception")
    wait_for(lambda: hr_jr.post(f"/api/v1/invitations/{session_id}/accept")[0] == 200, timeout=120,
             what="the 人社局 accepts the invitation")
    due = (datetime.now(ledger.CST).date().replace(day=1) + timedelta(days=40)).isoformat()
    wait_for(lambda: centre.post(f"/api/v1/centre/sessions/{session_id}/outcome", {
        "summary": "人社局督促用人单位十五日内支付拖欠工资。", "commitments": [
            {"agency": HRSS, "action": "督促支付拖欠工资并报告结果", "due": due}],
        "notice": {"items": ["劳动合同或工资条", "居民身份证复印件"]}})[0] == 200, timeout=120,
        what="the outcome recorded once the answer reached the centre")

    # the case page at the 人社局: holder, timeline across agencies and nodes, clocks, risk, joint session
    hr.goto(f"/ui/cases/{case_id}")
    expect(work.locator("#case")).to_have_attribute("data-loaded", "1")
    expect(work.locator("#case")).to_have_attribute("data-holder", HRSS)
    timeline = work.locator("#timeline")
    expect(timeline.locator("li[data-type='case.registered']")).to_contain_text("节点 510104-xfj")
    expect(timeline.locator("li[data-type='case.signed_for']")).to_contain_text("节点 510104-rsj")
    expect(timeline.locator("li[data-type='case.replied']")).to_be_visible()
    expect(work.locator("#deadlines .clock[data-clock='handling']")).to_have_attribute("data-state", "met")
    expect(work.locator("#risk [data-risk]")).to_be_visible()
    wait_for(lambda: fed.client(HRSS, "handler").get(f"/api/v1/cases/{case_id}")[1].get("commitments"), timeout=120,
             what="the outcome at the 人社局's node")
    hr.goto(f"/ui/cases/{case_id}")
    expect(work.locator(f"#joint [data-session-id='{session_id}']")).to_have_attribute("data-status", "concluded")
    expect(work.locator("#joint")).to_contain_text("督促支付拖欠工资并报告结果")
    hr.shot("case-hrss")

    # the petitioner's 查询 page, without JavaScript: progress and the reply, nothing internal
    wait_for(lambda: any(e["type"] == ledger.REPLIED for e in fed.client(BUREAU).get(f"/api/v1/cases/{case_id}")[1]
                         .get("events", [])), timeout=120, what="the reply at the bureau's node")
    petitioner = Desk(browser, fed, BUREAU, None, js=False)
    petitioner.goto("/ui/query")
    petitioner.page.get_by_label("查询码").fill(code.lower().replace("-", ""))
    petitioner.page.get_by_role("button", name="查询").click()
    expect(petitioner.page.locator("[data-reply-text]")).to_have_text(REPLY_TEXT)
    expect(petitioner.page.locator("[data-status]")).to_have_text("已答复")
    seen = petitioner.text()
    for internal in ("demo-", "labour", "规则", valid_id(n), "13800138007", "分办决定"):
        assert internal not in seen, f"the petitioner's page shows internal data: {internal!r}"
    petitioner.shot("query")
    petitioner.close()

    # the case page at the receiving bureau: identity shown because the API returns it to the receiving node
    clerk.goto(f"/ui/cases/{case_id}")
    expect(page.locator("#case")).to_have_attribute("data-loaded", "1")
    expect(page.locator("#identity")).to_contain_text("赵六")
    expect(page.locator("#decisions")).to_contain_text(REPLY_TEXT[:20])
    clerk.shot("case")

    # 人社局 pages never show the 检举 reporter: not on the case page, not in 待办, not anywhere it looks
    hr.goto(f"/ui/cases/{report_case['case_id']}")
    expect(work.locator("#case")).to_have_attribute("data-loaded", re.compile("1|error"))
    hr.shot("case-report-at-hrss")
    for path in (f"/ui/cases/{report_case['case_id']}", "/ui/work", "/ui/dashboard", "/ui/centre"):
        hr.goto(path)
        if path == "/ui/work":
            expect(work.locator("#held")).to_have_attribute("data-loading", "0")
        elif path == "/ui/dashboard":
            expect(work.locator("body")).to_have_attribute("data-dashboard", re.compile("ready|error"))
        elif path == "/ui/centre":
            expect(work.locator("#centre")).to_have_attribute("data-loaded", re.compile("1|error"))
        else:
            expect(work.locator("#case")).to_have_attribute("data-loaded", re.compile("1|error"))
        seen = hr.text() + work.content()
        for secret in (reporter, reporter_id, "13900139008"):
            assert secret not in seen, f"{path} at the 人社局 shows the reporter's identity ({secret})"
    status, _ = fed.client(HRSS, "handler").get(f"/ui/api/intake/api/v1/cases/{report_case['case_id']}?identity=true")
    assert status == 404  # the reported body does not share the case at all

    # 督办看板 at the county bureau: charts drawn, figures equal to the assessment API's
    today = ledger.local_date(datetime.now(ledger.CST))
    params = {"from": today.replace(month=1, day=1).isoformat(), "to": today.isoformat()}
    wait_for(lambda: case_id in _assessment(fed, {**params, "cases": "true"})["cases"], timeout=120, what="the case in the assessment")
    lead = Desk(browser, fed, BUREAU, "leader")
    lead.goto("/ui/dashboard?" + urlencode(params))
    _check_dashboard_equals_api(lead, _assessment(fed, params))
    _check_accessible(lead.page)
    lead.shot("dashboard")
    lead.page.get_by_label("分组").select_option("holder_name")  # volume over time by agency instead of category
    expect(lead.page.locator("#chart-trend")).to_have_attribute("data-points", str(_assessment(fed, params)["total"]["cases"]))
    lead.goto("/ui/dashboard?" + urlencode({**params, "division": "510104"}))
    _check_dashboard_equals_api(lead, _assessment(fed, {**params, "division": "510104"}))
    csv_href = lead.page.locator("#csv-link").get_attribute("href")
    assert "format=csv" in csv_href and "division=510104" in csv_href
    csv = lead.context.request.get(lead.base + csv_href)
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    total_row = csv.text().lstrip("\ufeff").splitlines()[1].split(",")
    assert total_row[0] == "合计" and int(total_row[3]) == _assessment(fed, {**params, "division": "510104"})["total"]["cases"]
    cases_csv = lead.context.request.get(lead.base + lead.page.locator("#cases-csv-link").get_attribute("href"))
    assert cases_csv.status == 200 and cases_csv.headers["content-type"].startswith("text/csv")
    listed = list(read_csv(io.StringIO(cases_csv.text().lstrip("\ufeff"))))  # streamed: one row per case
    assert listed[0][:3] == ["案件编号", "事项", "类别"] and case_id in {r[0] for r in listed[1:]}
    assert len(listed) - 1 == int(total_row[3])

    # 联合接访 at the bureau that hosts the centre, and its big screen; the 人社局's window view
    lead.goto("/ui/centre")
    expect(lead.page.locator("#centre")).to_have_attribute("data-loaded", "1")
    waiting = lead.page.locator(f"#windows .window[data-window='rsj'] .ticket[data-ticket='{ticket}']")
    expect(waiting).to_contain_text("已等候")
    expect(lead.page.locator(f"#sessions tr[data-session-id='{session_id}']")).to_contain_text("已调处")
    expect(lead.page.locator("#leader-days")).to_be_visible()
    lead.shot("centre")
    lead.goto("/ui/centre?screen=1")
    expect(lead.page.locator("#centre")).to_have_attribute("data-loaded", "1")
    expect(lead.page.locator("body")).to_have_class(re.compile("screen-mode"))
    assert lead.page.locator("header.top").count() == 0
    lead.shot("centre-screen")
    hr.goto("/ui/centre")
    expect(work.locator("#centre")).to_have_attribute("data-loaded", "1")
    expect(work.locator("#centre")).to_contain_text("人社窗口")
    hr.shot("centre-hrss")

    # the 查询 and login pages as a petitioner sees them (screenshots of every page)
    guest = Desk(browser, fed, BUREAU, None)
    guest.goto("/ui/query")
    _check_accessible(guest.page)
    guest.shot("query-form")
    guest.goto("/ui/login")
    guest.shot("login")
    for desk in (guest, lead, hr, clerk):
        desk.close()


def test_proxy_refuses_what_is_not_a_service_api(fed):
    """The same-origin proxy only reaches this node's services' /api/v1/ and needs a token."""
    c = fed.client(BUREAU)
    assert c.get("/ui/api/routing/metrics")[0] == 404
    assert c.get("/ui/api/nowhere/api/v1/x")[0] == 404
    assert c.get("/ui/api/routing/api/v1/offers")[0] == 200
    anonymous = Http(fed.fed.node(BUREAU).url("intake"))
    assert anonymous.get("/ui/api/routing/api/v1/offers")[0] == 401
    assert anonymous.get("/ui/data/overview")[0] == 401
    # a form post carried by the cookie from another origin is refused
    status, _ = anonymous.post("/ui/api/routing/api/v1/offers/x/sign", {}, headers={
        "Cookie": f"lf_ui_token={fed.fed.node(BUREAU).tokens['clerk']}", "Origin": "http://evil.example"})
    assert status == 403
