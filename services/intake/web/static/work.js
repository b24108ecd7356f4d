/* 待办: the routing queue (签收/退回), the cases this agency holds with their clocks (受理/不予受理/答复/延期),
   supervision orders received (and, at a petition bureau, issued). Lists refresh every few seconds. */
"use strict";
(() => {
  const {el, api, clear, fmtTime, clockChip, announce} = LF;
  const status = document.getElementById("work-status");
  const stamp = document.getElementById("refreshed");
  const sections = {offers: document.getElementById("offers"), held: document.getElementById("held"),
                    orders: document.getElementById("orders"), issued: document.getElementById("issued")};
  const last = {};
  let cfg = {};

  const caseLink = (id, title) => el("a", {href: `/ui/cases/${encodeURIComponent(id)}`}, title || id);

  /** A small action form: fields [{name, label, type, required, min, max, rows}] → POST service/path as JSON. */
  function actionForm({action, caseId, title, service, path, submit, fields, summary, danger}) {
    const formId = `${action}-${caseId}`;
    const form = el("form", {class: "action-form", dataset: {action, caseId}, novalidate: true});
    for (const f of fields || []) {
      const id = `${formId}-${f.name}`;
      const input = f.rows
        ? el("textarea", {id, name: f.name, rows: f.rows, "aria-describedby": `${id}-err`, "aria-required": f.required ? "true" : null})
        : el("input", {id, name: f.name, type: f.type || "text", min: f.min, max: f.max, autocomplete: "off",
                       "aria-describedby": `${id}-err`, "aria-required": f.required ? "true" : null});
      if (f.value !== undefined) input.value = f.value;
      form.appendChild(el("div", {class: "field", dataset: {field: f.name}},
        el("label", {for: id}, f.label, f.required ? el("span", {class: "req"}, "（必填）") : null),
        el("p", {class: "field-error", id: `${id}-err`, hidden: true}),
        input));
    }
    const formError = el("p", {class: "field-error", hidden: true, role: "alert"});
    form.appendChild(formError);
    form.appendChild(el("button", {type: "submit", class: "btn" + (danger ? " danger" : " primary")}, submit));
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      form.querySelectorAll(".field-error").forEach(p => { p.hidden = true; p.textContent = ""; });
      const body = {};
      for (const f of fields || []) {
        const v = form.elements[f.name].value.trim();
        if (v === "" && !f.required) continue;
        body[f.name] = f.type === "number" && /^\d+$/.test(v) ? parseInt(v, 10) : v;
      }
      const btn = form.querySelector("button[type=submit]");
      btn.disabled = true;
      const r = await api(service, path, {method: "POST", body});
      btn.disabled = false;
      if (r.ok) {
        announce(status, `${submit}成功：${title}`, "ok");
        form.reset();
        const d = form.closest("details");
        if (d) d.open = false;
        refresh(true);
        return;
      }
      let placed = false;
      for (const e of LF.apiErrors(r.data)) {
        const line = document.getElementById(`${formId}-${e.field}-err`);
        if (line) { line.textContent = e.message; line.hidden = false; placed = true; }
      }
      if (!placed) { formError.textContent = LF.errorText(r); formError.hidden = false; }
      announce(status, `${submit}未成功：${LF.errorText(r)}`, "error");
    });
    if (!summary) return form;
    return el("details", {class: "action"}, el("summary", {}, summary), form);
  }

  function renderOffers(data) {
    const offers = data.offers || [];
    if (!offers.length) return el("p", {class: "empty"}, "没有待签收的事项。");
    return LF.table("待签收事项", ["事项", "类别", "交办机构", "分办理由", "收到时间", "操作"], offers.map(o =>
      el("tr", {dataset: {caseId: o.case_id}},
        el("td", {}, caseLink(o.case_id, o.title), o.skipped_level ? el("span", {class: "tag warn"}, "越级") : null,
           o.attempt > 1 ? el("span", {class: "tag"}, `第${o.attempt}次交办`) : null),
        el("td", {}, o.category || "—"),
        el("td", {}, LF.agencyLabel(cfg, o.from_agency)),
        el("td", {class: "reason"}, o.reason || o.rule || ""),
        el("td", {}, fmtTime(o.received_at)),
        el("td", {class: "ops"},
          actionForm({action: "sign", caseId: o.case_id, title: o.title, service: "routing",
                      path: `api/v1/offers/${encodeURIComponent(o.case_id)}/sign`, submit: "签收"}),
          actionForm({action: "return", caseId: o.case_id, title: o.title, service: "routing", danger: true,
                      path: `api/v1/offers/${encodeURIComponent(o.case_id)}/return`, submit: "退回", summary: "退回…",
                      fields: [{name: "reason", label: "退回理由", rows: 2, required: true}]})))));
  }

  function caseActions(c) {
    const id = encodeURIComponent(c.case_id);
    const base = `api/v1/supervision/cases/${id}`;
    const common = {caseId: c.case_id, title: c.title, service: "supervision"};
    if (c.status === "in_handling") {
      return [
        actionForm({...common, action: "accept", path: `${base}/accept`, submit: "受理", summary: "受理…",
                    fields: [{name: "notice", label: "受理告知书（不填则用标准文本）", rows: 2}]}),
        actionForm({...common, action: "decline", path: `${base}/decline`, submit: "不予受理", summary: "不予受理…",
                    danger: true, fields: [{name: "reason", label: "不予受理的理由", rows: 2, required: true}]})];
    }
    if (c.status === "accepted") {
      const handling = (c.clocks || []).find(k => k.name === "handling");
      const out = [actionForm({...common, action: "reply", path: `${base}/reply`, submit: "答复", summary: "答复…",
                               fields: [{name: "title", label: "文书标题（默认“信访处理意见书”）"},
                                        {name: "text", label: "信访处理意见书正文（不得含身份证号、手机号）", rows: 5,
                                         required: true}]})];
      if (!handling || (handling.state !== "extended" && !/延期/.test(handling.label || ""))) {
        out.push(actionForm({...common, action: "extend", path: `${base}/extend`, submit: "延期", summary: "延期…",
                             fields: [{name: "days", label: "延期天数（1至30日）", type: "number", min: 1, max: 30, required: true},
                                      {name: "approver", label: "批准人", required: true},
                                      {name: "reason", label: "延期理由", rows: 2, required: true}]}));
      }
      return out;
    }
    return [el("span", {class: "muted"}, "—")];
  }

  function renderHeld(data) {
    const cases = data.cases || [];
    if (!cases.length) return el("p", {class: "empty"}, "本机构目前没有承办中的事项。");
    return LF.table("本机构承办的事项", ["事项", "状态", "时限", "操作"], cases.map(c =>
      el("tr", {dataset: {caseId: c.case_id, status: c.status}},
        el("td", {}, caseLink(c.case_id, c.title), c.leader ? el("div", {class: "muted"}, `包案领导：${c.leader.name || c.leader}`) : null),
        el("td", {}, c.status_label || c.status),
        el("td", {class: "clocks"}, (c.clocks || []).filter(k => k.responsible !== null || k.state !== "met")
          .map(k => el("div", {}, clockChip(k)))),
        el("td", {class: "ops"}, caseActions(c)))));
  }

  function renderOrders(data, issued) {
    const orders = data.orders || [];
    if (!orders.length) return el("p", {class: "empty"}, issued ? "本机构没有发出督办单。" : "没有收到督办单。");
    return LF.table(issued ? "发出的督办单" : "收到的督办单",
      ["事项", "督办级别", "时限", "截止日期", "超期", issued ? "承办机构" : "督办机构", "状态", "下达时间"], orders.map(o =>
      el("tr", {class: o.status === "open" ? "row-alert" : "", dataset: {caseId: o.case_id, orderId: o.id}},
        el("td", {}, caseLink(o.case_id, o.title)),
        el("td", {}, el("span", {class: "tag" + (o.level === "挂牌督办" ? " danger" : " warn")}, o.level || "督办")),
        el("td", {}, o.clock_label),
        el("td", {}, o.due_date),
        el("td", {}, `${o.days_late_now ?? o.days_late ?? 0} 日`),
        el("td", {}, issued ? LF.agencyLabel(cfg, o.addressed_to, o.addressed_to_name) : LF.agencyLabel(cfg, o.supervisor, o.supervisor_name)),
        el("td", {}, o.status_label || o.status),
        el("td", {}, fmtTime(o.issued_at)))));
  }

  function busy(section) {
    const active = document.activeElement;
    if (section.contains(active) && active.matches("input, textarea, select")) return true;
    return [...section.querySelectorAll("input:not([type=hidden]), textarea")].some(i => i.value.trim() !== "")
      || [...section.querySelectorAll("details")].some(d => d.open);
  }

  function show(key, r, render, force) {
    const section = sections[key];
    if (!section) return;
    const text = JSON.stringify(r.data);
    if (!force && last[key] === text) return;
    if (!force && busy(section)) return;
    last[key] = text;
    clear(section);
    section.appendChild(r.ok ? render(r.data) : el("p", {class: "alert"}, `无法加载：${LF.errorText(r)}`));
    section.dataset.loading = "0";
    section.dataset.count = r.ok ? String((r.data.offers || r.data.cases || r.data.orders || []).length) : "error";
  }

  async function load(force) {
    cfg = await LF.config();
    const jobs = [
      api("routing", "api/v1/offers?status=pending").then(r => show("offers", r, renderOffers, force)),
      api("supervision", "api/v1/supervision/cases?scope=held").then(r => show("held", r, renderHeld, force)),
      api("supervision", "api/v1/supervision/orders?scope=mine").then(r => show("orders", r, d => renderOrders(d, false), force)),
    ];
    if (sections.issued) {
      jobs.push(api("supervision", "api/v1/supervision/orders?scope=issued").then(r => show("issued", r, d => renderOrders(d, true), force)));
    }
    await Promise.all(jobs);
    stamp.textContent = "更新于 " + fmtTime(new Date().toISOString());
  }

  let forceNext = false;
  const tick = LF.poll(() => { const f = forceNext; forceNext = false; return load(f); }, 3000);
  function refresh(force) { forceNext = forceNext || !!force; tick(); }
  document.getElementById("refresh").addEventListener("click", () => refresh(true));
  document.getElementById("find-case").addEventListener("submit", ev => {
    ev.preventDefault();
    const id = document.getElementById("f-case-id").value.trim();
    if (id) location.href = "/ui/cases/" + encodeURIComponent(id);
  });
})();
