/* 案件: the shared case view of this node's intake (identity only when the API returns it), with the
   supervision view (orders, documents) when this node's supervision service shares the case. */
"use strict";
(() => {
  const {el, api, fmtTime, clockChip, announce} = LF;
  const root = document.getElementById("case");
  const status = document.getElementById("case-status");
  const caseId = root.dataset.caseId;
  const CHANNELS = {letter: "来信", visit: "来访", phone: "电话", online: "网上", fax: "传真", email: "邮件", forwarded: "转来"};
  const FLAGS = {collective: "集体访", repeat: "重复信访", skipped_level: "越级访", offer_unanswered: "交办未获答复"};
  const AGENCY_KEYS = new Set(["to", "target", "lead", "bureau", "addressed_to", "supervisor", "body", "referred_to", "agency"]);
  const PAYLOAD_LABELS = {
    target: "分办至", to: "交办/移送至", lead: "牵头机构", co_handlers: "配合机构", reason: "理由", rule: "分办规则",
    notice: "告知", title: "标题", days: "延期天数", approver: "批准人", rating: "评价", source: "来源", leader: "包案领导",
    level: "级别", clock: "时限", due_date: "截止日期", days_late: "超期天数", receipt_no: "回执编号",
    channel_label: "法律渠道", body_name: "受理机关", summary: "调处意见", conclusion: "听证结论", agenda: "议题",
    outcome: "结论", number: "号码", window_name: "窗口", topic: "事项", bureau: "转交", note: "说明",
    amount_requested: "申请金额", amount_granted: "批准金额", step: "步骤", subject: "听证事项", action: "承诺事项",
    due: "完成期限", attempt: "交办次数", kind_label: "救助类别", addressed_to: "督办对象"};
  let cfg = {};

  const name = a => LF.agencyName(cfg, a);
  const label = (a, n) => LF.agencyLabel(cfg, a, n);
  const section = (id, title, ...body) => el("section", {class: "card", id, "aria-labelledby": id + "-h"},
    el("h2", {id: id + "-h"}, title), ...body);
  const facts = pairs => el("dl", {class: "facts"}, pairs.filter(p => p && p[1] !== null && p[1] !== undefined && p[1] !== "")
    .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));

  function payloadText(key, v) {
    if (Array.isArray(v)) return v.map(x => (AGENCY_KEYS.has(key) || key === "co_handlers") ? name(x) : (typeof x === "object" ? JSON.stringify(x) : x)).join("、");
    if (AGENCY_KEYS.has(key)) return name(v);
    if (key === "clock") return v;
    if (typeof v === "object") return null;
    if (typeof v === "boolean") return v ? "是" : "否";
    return String(v);
  }

  function eventDetail(ev) {
    const p = ev.payload || {};
    const parts = [];
    for (const [k, lab] of Object.entries(PAYLOAD_LABELS)) {
      if (ev.type === "case.registered" || p[k] === null || p[k] === undefined || p[k] === "") continue;
      if (k === "title" && ev.type !== "case.replied") continue;
      const t = payloadText(k, p[k]);
      if (t) parts.push(`${lab}：${t}`);
    }
    const out = [parts.length ? el("div", {class: "detail"}, parts.join("；")) : null];
    if (p.text && typeof p.text === "string") {
      out.push(el("details", {}, el("summary", {}, "查看全文"), el("div", {class: "doc-text"}, p.text)));
    }
    return out;
  }

  function timeline(events) {
    return el("ol", {class: "timeline", id: "timeline"}, events.map(ev =>
      el("li", {dataset: {type: ev.type, agency: ev.agency}},
        el("time", {datetime: ev.time}, fmtTime(ev.time)), " ",
        el("strong", {}, ev.label || ev.type), " ",
        el("span", {class: "who"}, `${ev.agency_name || ev.agency}（节点 ${ev.agency}）· ${ev.actor}`),
        eventDetail(ev))));
  }

  function deadlines(list) {
    if (!list || !list.length) return el("p", {class: "empty"}, "尚无法定时限。");
    return LF.table("法定时限", ["时限", "起算", "截止", "状态", "责任机构"], list.map(c =>
      el("tr", {dataset: {clock: c.name, state: c.state}},
        el("td", {}, c.label), el("td", {}, fmtTime(c.start)), el("td", {}, c.due_date),
        el("td", {}, clockChip(c)), el("td", {}, c.responsible ? label(c.responsible) : "信访人"))));
  }

  function identity(people) {
    return LF.table("信访人身份信息", ["身份", "姓名", "居民身份证号", "联系电话", "住址"], people.map(p =>
      el("tr", {}, el("td", {}, p.role === "representative" ? "代表" : "信访人"), el("td", {}, p.name || ""),
        el("td", {class: "mono"}, p.id_number || "—"), el("td", {}, p.phone || "—"), el("td", {}, p.address || "—"))));
  }

  function supervisionPart(sv) {
    const rows = [...(sv.orders || []).map(o => ["督办单", o]), ...(sv.reminders || []).map(o => ["催办", o]),
                  ...(sv.accountability || []).map(o => ["责任追究", o])];
    const parts = [];
    if (sv.leader) parts.push(facts([["包案领导", `${sv.leader.name || sv.leader.leader || ""}${sv.leader.title ? "（" + sv.leader.title + "）" : ""}`]]));
    parts.push(rows.length ? LF.table("督查督办", ["类别", "级别", "时限", "截止", "对象", "督办机构", "状态", "时间"], rows.map(([k, o]) =>
      el("tr", {}, el("td", {}, k), el("td", {}, o.level || "—"), el("td", {}, o.clock_label), el("td", {}, o.due_date),
        el("td", {}, label(o.addressed_to, o.addressed_to_name)), el("td", {}, label(o.supervisor, o.supervisor_name)),
        el("td", {}, o.status_label || "—"), el("td", {}, fmtTime(o.issued_at)))))
      : el("p", {class: "empty"}, "没有催办、督办或责任追究记录。"));
    if ((sv.documents || []).length) {
      parts.push(LF.table("文书", ["文书", "机构", "时间"], sv.documents.map(d =>
        el("tr", {}, el("td", {}, d.title || d.kind), el("td", {}, label(d.agency, d.agency_name)), el("td", {}, fmtTime(d.issued_at))))));
    }
    if ((sv.ratings || []).length) {
      parts.push(facts([["满意度", sv.ratings.map(r => `${r.rating}（${r.source === "follow_up" ? "回访" : "信访人评价"}）`).join("、")]]));
    }
    return parts;
  }

  function legalPart(v) {
    const lg = v.legal;
    const out = [];
    if (lg) {
      const c = lg.classification || {};
      out.push(facts([
        ["分流状态", {classifying: "分类中", referred: "已移送待接收", declined: "被退回待重新分流", accepted: "已接收",
                     filed: "已立案受理", decided: "已作出决定", withdrawn: "申请人已撤回"}[lg.status] || lg.status],
        ["法律渠道", c.channel_label], ["受理机关", c.body_name || (c.body ? name(c.body) : null)],
        ["分类理由", (c.reasons || []).join("；") || c.override_reason],
        ["移送至", lg.referred_to ? label(lg.referred_to) : null], ["接收机关", lg.body ? label(lg.body) : null],
        ["回执编号", lg.receipt_no], ["接收时间", lg.accepted_at ? fmtTime(lg.accepted_at) : null]]));
      if ((lg.declines || []).length) {
        out.push(LF.table("退回记录", ["机构", "渠道", "理由", "时间"], lg.declines.map(d =>
          el("tr", {}, el("td", {}, label(d.by)), el("td", {}, d.channel_label || d.channel || ""), el("td", {}, d.reason),
            el("td", {}, fmtTime(d.at))))));
      }
      if ((lg.steps || []).length) {
        out.push(LF.table("检调对接", ["步骤", "日期", "结果"], lg.steps.map(s =>
          el("tr", {}, el("td", {}, s.step), el("td", {}, s.date), el("td", {}, s.outcome)))));
      }
      if (lg.notice) out.push(el("details", {}, el("summary", {}, `书面告知（${fmtTime(lg.notice.at)}）`), el("div", {class: "doc-text"}, lg.notice.text || "")));
    }
    if ((v.relief || []).length) {
      out.push(LF.table("救助", ["类别", "受理机关", "申请金额", "回执", "状态", "批准金额"], v.relief.map(r =>
        el("tr", {}, el("td", {}, r.kind_label || r.kind), el("td", {}, label(r.to)), el("td", {}, String(r.amount_requested)),
          el("td", {}, r.receipt_no || "—"), el("td", {}, {requested: "已申请", received: "已接收", approved: "已批准", refused: "不予救助"}[r.status] || r.status),
          el("td", {}, r.amount_granted === null || r.amount_granted === undefined ? "—" : String(r.amount_granted))))));
    }
    return out;
  }

  function jointPart(v) {
    const out = [];
    const r = v.reception;
    if (r) out.push(facts([["接待窗口", r.window_name || r.window], ["号码", r.number], ["事项", r.topic],
                           ["取号时间", fmtTime(r.issued_at)], ["接待完毕", r.served_at ? fmtTime(r.served_at) : "等候中"]]));
    for (const s of v.joint_sessions || []) {
      out.push(el("div", {class: "session", dataset: {sessionId: s.session_id, status: s.status}},
        el("h3", {}, `联合调处：${s.agenda || ""}`),
        facts([["时间", fmtTime(s.scheduled_at)], ["地点", s.place], ["召集", label(s.centre)],
               ["状态", {inviting: "邀请中", ready: "待调处", concluded: "已调处"}[s.status] || s.status],
               ["参加机构", (s.answers || []).map(a => `${name(a.agency)}：${{accepted: "接受", declined: "拒绝", pending: "未答复"}[a.answer] || a.answer}${a.reason ? "（" + a.reason + "）" : ""}`).join("；")],
               ["调处结果", s.outcome ? s.outcome.summary : null]])));
    }
    if ((v.commitments || []).length) {
      out.push(LF.table("调处承诺", ["机构", "承诺事项", "期限", "状态"], v.commitments.map(c =>
        el("tr", {}, el("td", {}, label(c.agency, c.agency_name)), el("td", {}, c.action), el("td", {}, c.due_date),
          el("td", {}, el("span", {class: "clock clock-" + c.state}, c.state_label + (c.days_late ? `，超期 ${c.days_late} 日` : "")))))));
    }
    for (const h of v.hearings || []) {
      out.push(el("div", {class: "hearing"}, el("h3", {}, `听证：${h.subject || ""}`),
        facts([["时间", fmtTime(h.scheduled_at)], ["地点", h.place], ["状态", h.status === "held" ? "已举行" : "已安排"],
               ["结论", h.conclusion]])));
    }
    if (v.notice) {
      out.push(el("div", {}, el("h3", {}, "一次性告知"), el("ul", {}, (v.notice.items || []).map(i => el("li", {}, i))),
        v.notice.note ? el("p", {}, v.notice.note) : null));
    }
    return out;
  }

  function render(v, sv) {
    const registered = (v.events || []).find(e => e.type === "case.registered");
    const decisions = (v.events || []).filter(e => ["case.replied", "case.review_decided", "case.re_review_decided", "case.declined"].includes(e.type));
    document.getElementById("case-title").textContent = v.title;
    document.title = `${v.title} · 案件 · ` + document.title.split(" · ").slice(-2).join(" · ");
    root.dataset.status = v.status;
    root.dataset.holder = v.holder;
    const parts = [
      section("overview", "概况", facts([
        ["案件编号", el("span", {class: "mono"}, v.case_id)], ["状态", v.status_label || v.status], ["类别", v.category || "未分类"],
        ["行政区划", `${v.division_name}（${v.division}）`], ["渠道", CHANNELS[v.channel] || v.channel],
        ["登记时间", fmtTime(v.registered_at)], ["登记机构", label(v.origin)],
        ["人数", v.persons ? `${v.persons} 人${v.collective ? "（集体访）" : ""}` : null],
        ["重复信访", v.repeat_count ? `${v.repeat_count} 次` : null], ["退回次数", v.returns ? `${v.returns} 次` : null],
        ["标记", (v.flags || []).map(f => FLAGS[f] || f).join("、")]]),
        registered && registered.payload.content ? el("div", {}, el("h3", {}, "主要诉求和事实"), el("div", {class: "doc-text"}, registered.payload.content)) : null),
      section("handling", "承办", facts([
        ["承办机构", el("span", {"data-holder": v.holder}, label(v.holder, v.holder_name))],
        ["牵头机构", v.lead ? label(v.lead) : null], ["配合机构", (v.co_handlers || []).map(a => label(a)).join("、")],
        ["待签收机构", v.offered_to ? label(v.offered_to) : null],
        ["包案领导", v.leader ? `${v.leader.name || v.leader.leader || ""}${v.leader.title ? "（" + v.leader.title + "）" : ""}` : null],
        ["分办理由", v.routing ? v.routing.reason : null]])),
      section("risk", "风险等级", el("p", {}, el("span", {class: "risk risk-" + (v.risk_level || "none"), "data-risk": v.risk_level || ""}, v.risk_level || "未评定")),
        (v.risk_reasons || []).length ? el("ul", {}, v.risk_reasons.map(r => el("li", {}, r))) : el("p", {class: "muted"}, "无风险信号。")),
      section("deadlines", "法定时限", deadlines(v.deadlines)),
    ];
    if (Array.isArray(v.petitioners) && v.petitioners.length) {
      parts.push(section("identity", "信访人（身份信息，查阅已记录）", identity(v.petitioners)));
    }
    if (decisions.length) {
      parts.push(section("decisions", "答复与决定", decisions.map(d => el("div", {class: "decision"},
        el("h3", {}, `${d.payload.title || d.label}`), el("p", {class: "meta"}, `${label(d.agency, d.agency_name)} · ${fmtTime(d.time)}`),
        el("div", {class: "doc-text"}, d.payload.text || d.payload.reason || "")))));
    }
    if (sv) parts.push(section("supervision", "督查督办", supervisionPart(sv)));
    const legal = legalPart(v);
    if (legal.length) parts.push(section("legal", "诉访分离（移送与回执）", legal));
    const joint = jointPart(v);
    if (joint.length) parts.push(section("joint", "联合接访", joint));
    parts.push(section("events", "办理经过（跨机构时间线）", timeline(v.events || [])));
    LF.clear(root);
    LF.append(root, parts);
    root.dataset.loaded = "1";
  }

  async function load() {
    cfg = await LF.config();
    const [r, s] = await Promise.all([
      api("intake", `api/v1/cases/${encodeURIComponent(caseId)}?identity=true`),
      api("supervision", `api/v1/supervision/cases/${encodeURIComponent(caseId)}`)]);
    if (!r.ok) {
      announce(status, r.status === 404 ? "案件不存在或未与本机构共享。" : "无法加载案件：" + LF.errorText(r), "error");
      root.dataset.loaded = "error";
      return;
    }
    render(r.data, s.ok ? s.data : null);
    announce(status, "", "");
  }
  load();
})();
