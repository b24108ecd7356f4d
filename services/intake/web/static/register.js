/* 登记台 with JavaScript: the same form, posted as JSON to the intake API (POST /api/v1/petitions) through
   the same-origin proxy; the API's 422 messages appear next to their fields. Without JavaScript the
   form posts to /ui/register and the server renders the same messages. */
"use strict";
(() => {
  const form = document.getElementById("register-form");
  if (!form) return;
  const status = document.getElementById("form-status");
  const summary = document.getElementById("error-summary");
  const button = document.getElementById("submit-petition");
  const PERSON_KEYS = ["name", "id_number", "phone", "address"];
  const ANCHORS = {petitioner: "petitioner.name", representatives: "representatives.0.name"};
  const LABELS = {channel: "渠道", division: "所属行政区划", title: "事项标题", content: "主要诉求和事实", category: "类别",
                  persons: "人数", target_agency: "信访人指向的机构", reported_agency: "被检举控告的机构",
                  anonymous: "匿名信访", petitioner: "信访人", representatives: "集体访代表", name: "姓名",
                  id_number: "居民身份证号", phone: "联系电话", address: "住址"};
  /** 'petitioner.id_number' → '信访人居民身份证号', 'representatives.1.name' → '代表2姓名' (as router.field_label) */
  function fieldLabel(field) {
    const parts = field.split(".");
    if (parts[0] === "representatives" && parts.length === 3 && /^\d+$/.test(parts[1])) {
      return `代表${parseInt(parts[1], 10) + 1}${LABELS[parts[2]] || parts[2]}`;
    }
    return parts.map(p => LABELS[p] || p).join("");
  }
  const fid = name => "f-" + name.replace(/\./g, "-");
  const eid = name => "err-" + name.replace(/\./g, "-");

  /** The API body from the form (mirrors router.petition_from_form) and the map back to form names. */
  function petitionFromForm() {
    const flat = {};
    for (const [k, v] of new FormData(form).entries()) if (k !== "idempotency_key") flat[k] = k === "content" ? v : String(v).trim();
    const body = {};
    for (const key of ["channel", "division", "title", "content", "category", "target_agency", "reported_agency"]) {
      if ((flat[key] || "").trim()) body[key] = flat[key];
    }
    const persons = (flat.persons || "").trim();
    if (persons) body.persons = /^\d+$/.test(persons) ? parseInt(persons, 10) : persons;
    if (flat.anonymous) body.anonymous = true;
    const petitioner = {};
    PERSON_KEYS.forEach(k => { if (flat[`petitioner.${k}`]) petitioner[k] = flat[`petitioner.${k}`]; });
    if (Object.keys(petitioner).length) body.petitioner = petitioner;
    const back = {}, reps = [];
    for (let i = 0; i < 10; i++) {
      const row = {};
      PERSON_KEYS.forEach(k => { if (flat[`representatives.${i}.${k}`]) row[k] = flat[`representatives.${i}.${k}`]; });
      if (Object.keys(row).length) {
        PERSON_KEYS.forEach(k => { back[`representatives.${reps.length}.${k}`] = `representatives.${i}.${k}`; });
        back[`representatives.${reps.length}`] = `representatives.${i}.name`;
        reps.push(row);
      }
    }
    if (reps.length) body.representatives = reps;
    return {body, back};
  }

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach(p => { p.textContent = ""; p.hidden = true; });
    form.querySelectorAll(".has-error").forEach(f => f.classList.remove("has-error"));
    form.querySelectorAll("[aria-invalid]").forEach(i => i.removeAttribute("aria-invalid"));
    summary.hidden = true;
    LF.clear(summary.querySelector("ul"));
  }

  function showErrors(errors) {
    const list = summary.querySelector("ul");
    const shown = new Set();
    for (const e of errors) {
      const line = document.getElementById(eid(e.field));
      const input = document.getElementById(fid(e.field));
      const anchor = input || document.getElementById(fid(ANCHORS[e.field] || e.field));
      const text = e.field === "body" ? e.message : `${fieldLabel(e.field)}：${e.message}`;
      list.appendChild(LF.el("li", {}, anchor ? LF.el("a", {href: "#" + anchor.id}, text) : text));
      if (line && !shown.has(e.field)) {
        shown.add(e.field);
        line.textContent = e.message;
        line.hidden = false;
        const wrap = line.closest(".field");
        if (wrap) wrap.classList.add("has-error");
        if (input) input.setAttribute("aria-invalid", "true");
        if (e.field.startsWith("representatives")) { const d = line.closest("details"); if (d) d.open = true; }
      }
    }
    summary.hidden = false;
    summary.focus();
  }

  function showResult(out, title, cfg) {
    const slip = LF.el("div", {class: "slip", id: "slip", "aria-label": "查询码回执"},
      LF.el("h3", {}, "信访事项查询回执"),
      LF.el("dl", {},
        LF.el("dt", {}, "受理机构"), LF.el("dd", {}, cfg.node ? cfg.node.name : ""),
        LF.el("dt", {}, "登记时间"), LF.el("dd", {}, LF.fmtTime(new Date().toISOString())),
        LF.el("dt", {}, "事项"), LF.el("dd", {}, title),
        LF.el("dt", {}, "查询码"), LF.el("dd", {class: "query-code", "data-query-code": true}, out.query_code)),
      LF.el("p", {}, `请妥善保管本回执。凭查询码可在 ${location.origin}/ui/query 查询办理进度和答复意见；查询码不要告诉他人。`));
    const section = LF.el("section", {class: "result card", id: "result", "aria-labelledby": "result-heading", tabindex: "-1"},
      LF.el("h2", {id: "result-heading"}, "登记成功"),
      LF.el("p", {role: "status"}, "信访事项已登记，案件编号 ",
        LF.el("a", {href: `/ui/cases/${encodeURIComponent(out.case_id)}`, "data-case-link": true}, out.case_id),
        out.repeat_of ? ["（重复信访，已并入原案件 ", LF.el("a", {href: `/ui/cases/${encodeURIComponent(out.repeat_of)}`}, out.repeat_of), "）"] : null,
        "。"),
      slip,
      LF.el("p", {class: "actions"},
        LF.el("button", {type: "button", class: "btn", "data-print": true, on: {click: () => window.print()}}, "打印查询码回执"),
        LF.el("a", {class: "btn", href: "/ui/register"}, "继续登记")));
    form.replaceWith(section);
    summary.hidden = true;
    const intro = document.querySelector("main > p");
    if (intro) intro.hidden = true;
    document.title = "登记成功 · " + document.title.split(" · ").slice(1).join(" · ");
    section.focus();
  }

  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    clearErrors();
    const {body, back} = petitionFromForm();
    button.disabled = true;
    LF.announce(status, "正在提交…");
    const [cfg, r] = await Promise.all([LF.config(), LF.api("intake", "api/v1/petitions",
      {method: "POST", body, headers: {"Idempotency-Key": form.elements.idempotency_key.value}})]);
    button.disabled = false;
    if (r.status === 201) {
      showResult(r.data, body.title || "", cfg);
      return;
    }
    LF.announce(status, r.status === 422 ? "提交未成功，请按提示修改。" : "提交未成功：" + LF.errorText(r), "error");
    const errors = LF.apiErrors(r.data).map(e => ({field: back[e.field] || e.field, message: e.message}));
    showErrors(errors);
  });
})();
