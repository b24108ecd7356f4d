"""`lianfang export`: one case's file (一案一卷) as a self-contained HTML bundle.

Read from the node's intake read model through the same `case_view` the API serves (so no petitioner
identity: it never enters the view), written as

    DIR/index.html     案件概况, 承办单位, 办理时限, 办理过程 (every agency's events), 信访处理意见书 full text
    DIR/case.json      the case view itself, machine-readable
    DIR/manifest.json  sha256 and size of each file above, who exported it and when

Exporting discloses case data, so it is recorded in the node's audit trail (action case.export) in the
same transaction that reads the case."""
from __future__ import annotations

import getpass
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, select_autoescape

from shared import ledger
from shared.config import NodeConfig, load_directory
from shared.db.base import utcnow
from shared.db.plumbing import audit
from shared.db.session import Database
from shared.ops.common import OpsError

FORMATS = ("html",)
BUNDLE = ("index.html", "case.json", "manifest.json")

_TEMPLATE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>一案一卷 {{ v.case_id }} {{ v.title }}</title>
<style>
 body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;max-width:60em;margin:2em auto;
      line-height:1.6;color:#222}
 table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}
 th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}
 th{background:#f3f3f3;white-space:nowrap}.doc{border:1px solid #888;padding:1em 1.5em;margin:1em 0;background:#fcfcf8}
 .doc pre{white-space:pre-wrap;font-family:inherit;font-size:1.05em}.muted{color:#666;font-size:.9em}
 .breached{color:#b00;font-weight:bold}
</style></head>
<body>
<h1>信访案卷（一案一卷）</h1>
<p class="muted">案件编号 {{ v.case_id }} · 导出单位 {{ exporter_name }}（{{ exporter }}）· 导出时间 {{ exported_at }} · 导出人 {{ actor }}</p>

<h2>一、案件概况</h2>
<table>
<tr><th>案件编号</th><td>{{ v.case_id }}</td></tr>
<tr><th>标题</th><td>{{ v.title }}</td></tr>
<tr><th>状态</th><td>{{ v.status_label or v.status }}（{{ v.status }}）</td></tr>
<tr><th>类别</th><td>{{ v.category or "未分类" }}</td></tr>
<tr><th>属地</th><td>{{ v.division_name }}（{{ v.division }}）</td></tr>
<tr><th>信访形式</th><td>{{ v.channel }}</td></tr>
<tr><th>登记时间</th><td>{{ v.registered_at | t }}</td></tr>
<tr><th>人数</th><td>{{ v.persons }}{% if v.collective %}（集体访）{% endif %}</td></tr>
<tr><th>风险等级</th><td>{{ v.risk_level }}{% if v.risk_reasons %}：{{ v.risk_reasons | join("；") }}{% endif %}</td></tr>
<tr><th>标记</th><td>{{ v.flags | join("、") or "无" }}</td></tr>
<tr><th>重复信访次数</th><td>{{ v.repeat_count }}</td></tr>
<tr><th>退回次数</th><td>{{ v.returns }}</td></tr>
{% if v.routing %}<tr><th>分办依据</th><td>{{ v.routing.rule }}{% if v.routing.reason %}：{{ v.routing.reason }}{% endif %}</td></tr>{% endif %}
</table>

<h2>二、承办单位</h2>
<table>
<tr><th>受理登记单位</th><td>{{ name(v.origin) }}</td></tr>
<tr><th>责任单位（签收）</th><td>{{ v.holder_name }}（{{ v.holder }}）</td></tr>
<tr><th>牵头单位</th><td>{{ name(v.lead) if v.lead else "—" }}</td></tr>
<tr><th>协办单位</th><td>{% for a in v.co_handlers %}{{ name(a) }}{% if not loop.last %}、{% endif %}{% else %}—{% endfor %}</td></tr>
{% if v.offered_to %}<tr><th>待签收单位</th><td>{{ name(v.offered_to) }}</td></tr>{% endif %}
{% if v.leader %}<tr><th>领导包案</th><td>{{ v.leader.name if v.leader is mapping else v.leader }}</td></tr>{% endif %}
</table>

<h2>三、办理时限</h2>
{% if v.deadlines %}<table>
<tr><th>时限</th><th>起算</th><th>届满</th><th>状态</th><th>完成时间</th><th>责任单位</th></tr>
{% for d in v.deadlines %}<tr><td>{{ d.label }}</td><td>{{ d.start | t }}</td><td>{{ d.due_date }}</td>
<td{% if d.state == "breached" %} class="breached"{% endif %}>{{ d.state_label }}{% if d.days_late %}（逾期{{ d.days_late }}日）{% endif %}</td>
<td>{{ d.done_at | t }}</td><td>{{ name(d.responsible) if d.responsible else "信访人" }}</td></tr>
{% endfor %}</table>{% else %}<p>尚无时限。</p>{% endif %}

<h2>四、办理过程</h2>
<table>
<tr><th>#</th><th>时间（北京时间）</th><th>事项</th><th>单位</th><th>经办</th><th>内容</th></tr>
{% for e in v.events %}<tr id="ev-{{ e.id }}"><td>{{ loop.index }}</td><td>{{ e.time | t }}</td><td>{{ e.label }}</td>
<td>{{ e.agency_name }}</td><td>{{ e.actor }}</td><td>{{ summary(e) }}</td></tr>
{% endfor %}</table>

<h2>五、信访处理意见书</h2>
{% for e in decisions %}<div class="doc">
<h3>{{ e.payload.title or e.label }}</h3>
<p class="muted">{{ e.label }} · {{ e.agency_name }} · {{ e.time | t }} · 文书编号 {{ e.id }}</p>
<pre>{{ e.payload.text }}</pre>
</div>
{% else %}<p>尚未出具信访处理意见书。</p>{% endfor %}
<p class="muted">本卷由 lianfang export 生成；各文件的 SHA-256 见 manifest.json。</p>
</body></html>
"""

# payload fields worth a line in the timeline, with their zh-CN names (agency ids are shown by name)
_SUMMARY_KEYS = {"to": "交办至", "target": "责任单位", "rule": "分办规则", "reason": "理由", "note": "说明",
                 "notice": "告知", "days": "天数", "approver": "批准人", "rating": "评价", "decision": "决定",
                 "result": "结果", "summary": "摘要", "attempt": "次数"}
_AGENCY_KEYS = {"to", "target"}


def _summary(e: dict, name) -> str:
    p = e.get("payload") or {}
    if e["type"] == ledger.REGISTERED:
        return f"{p.get('title', '')}：{p.get('content', '')}"
    if e["type"] in ledger.DECISION_TYPES:
        return f"《{p.get('title') or e['label']}》（全文见第五部分）"
    # the 分办决定 travels with the 交办 (or 转人工, 诉访分离) it led to: its rule, reasons and notice count too
    p = {**{k: v for k, v in (p.get("routing") or {}).items() if k in ("rule", "reason", "notice")}, **p}
    parts = []
    for k, label in _SUMMARY_KEYS.items():
        v = p.get(k)
        if v in (None, "", [], {}) or (k == "attempt" and v == 1):
            continue
        v = name(v) if k in _AGENCY_KEYS else v
        parts.append(f"{label}：{v if isinstance(v, (str, int, float)) else json.dumps(v, ensure_ascii=False)}")
    return "；".join(parts)


def _local_time(value: str | None) -> str:
    """An ISO timestamp as Beijing time, to the second (dates stay as they are)."""
    if not value or "T" not in value:
        return value or "—"
    try:
        return datetime.fromisoformat(value).astimezone(ledger.CST).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_case(cfg: NodeConfig, case_id: str, out: Path, fmt: str = "html", actor: str | None = None) -> dict:
    """Write the bundle and return its manifest. The audit entry commits with the read."""
    if fmt not in FORMATS:
        raise OpsError(f"不支持的格式 unsupported format {fmt!r} (only {', '.join(FORMATS)})")
    if "intake" not in cfg.services:
        raise OpsError(f"节点 {cfg.agency} 未运行 intake，无案件读模型 node runs no intake (no case read model)")
    if out.exists() and any(out.iterdir()):
        raise OpsError(f"目录非空，拒绝覆盖 {out} is not empty; choose a new folder")
    from services.intake import handlers
    from services.intake.adapters.orm import CaseRow

    directory = load_directory(cfg.directory)
    actor = actor or f"operator:{getpass.getuser()}"
    db = Database(cfg.services["intake"].database)
    try:
        with db.unit_of_work() as s:
            case = s.get(CaseRow, case_id)
            if case is None:
                raise OpsError(f"本节点没有该案件 case {case_id} is not in {cfg.agency}'s read model "
                               "(not shared with this node, or not yet projected)")
            view = handlers.case_view(s, directory, case, utcnow())
            exported_at = datetime.now(timezone.utc).astimezone(ledger.CST).isoformat(timespec="seconds")
            decisions = [e for e in view["events"] if e["type"] in ledger.DECISION_TYPES]
            env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
            name = lambda a: (directory.get(a).name if a and directory.get(a) else a) or "—"  # noqa: E731
            env.globals.update(name=name, summary=lambda e: _summary(e, name))
            env.filters["t"] = _local_time
            html = env.from_string(_TEMPLATE).render(v=view, decisions=decisions, exporter=cfg.agency,
                                                     exporter_name=cfg.name, exported_at=exported_at, actor=actor)
            files = {"index.html": html, "case.json": json.dumps(view, ensure_ascii=False, indent=2, default=str)}
            _write(out, files)
            manifest = {"case_id": case_id, "format": fmt, "agency": cfg.agency, "exported_at": exported_at,
                        "exported_by": actor, "events": len(view["events"]), "documents": len(decisions),
                        "files": [{"path": f, "sha256": _sha256(out / f), "bytes": (out / f).stat().st_size}
                                  for f in files]}
            (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
            index_sha = manifest["files"][0]["sha256"]
            audit(s, agency=cfg.agency, actor=actor, action="case.export", object_id=case_id,
                  detail=f"一案一卷 html: {len(view['events'])} events, {len(decisions)} documents, "
                         f"index.html sha256 {index_sha[:16]}")
    except BaseException:
        for f in BUNDLE:
            (out / f).unlink(missing_ok=True)  # no bundle without its audit entry
        raise
    finally:
        db.dispose()
    return manifest


def _write(out: Path, files: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for fname, text in files.items():
        (out / fname).write_text(text, encoding="utf-8")
