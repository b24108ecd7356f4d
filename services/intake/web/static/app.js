/* 联访 pages: shared helpers. No framework; every text goes into the DOM as text (never as HTML). */
"use strict";

const LF = (() => {
  const TOKEN_KEY = "lf_token";
  let configPromise = null;

  /** el("p", {class: "x", dataset: {a: 1}, on: {click: fn}}, "text", child, [children]) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "dataset") Object.entries(v).forEach(([dk, dv]) => { if (dv !== null && dv !== undefined) node.dataset[dk] = dv; });
      else if (k === "on") Object.entries(v).forEach(([ev, fn]) => node.addEventListener(ev, fn));
      else if (v === true) node.setAttribute(k, "");
      else node.setAttribute(k, v);
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function token() { try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; } }

  /** A call to one of this node's services through the same-origin proxy: {ok, status, data}. */
  async function api(service, path, opts = {}) {
    const headers = {"Accept": "application/json", ...(opts.headers || {})};
    const t = token();
    if (t) headers["Authorization"] = "Bearer " + t;
    let body;
    if (opts.body !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(opts.body); }
    const url = service === "ui" ? path : `/ui/api/${service}/${path}`;
    let r;
    try {
      r = await fetch(url, {method: opts.method || "GET", headers, body, credentials: "same-origin"});
    } catch (e) {
      return {ok: false, status: 0, data: {error: {message: "网络连接失败，请检查网络后重试"}}};
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    if (r.status === 401 && !opts.noRedirect) {
      location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
    }
    return {ok: r.ok, status: r.status, data};
  }

  function config() {
    if (!configPromise) configPromise = api("ui", "/ui/config.json").then(r => r.data || {});
    return configPromise;
  }

  const _dt = new Intl.DateTimeFormat("zh-CN", {timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false});
  /** ISO instant → Beijing time "2026-11-22 09:03" (naive ISO strings are UTC). */
  function fmtTime(iso) {
    if (!iso) return "";
    const s = /[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z";
    const d = new Date(s);
    if (isNaN(d)) return iso;
    const p = Object.fromEntries(_dt.formatToParts(d).map(x => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day} ${p.hour === "24" ? "00" : p.hour}:${p.minute}`;
  }

  // --- API messages in Chinese (mirrors services/intake/web/router.py zh_message) ---
  const CJK = /[\u3400-\u9fff]/;
  const FIELD_PREFIX = /^([A-Za-z_][\w.]*): ([\s\S]+)$/;
  const PYDANTIC = [
    [/^String should have at least 1 character/, () => "不能为空"],
    [/^String should have at least (\d+) characters?/, m => `至少需要${m[1]}个字符`],
    [/^String should have at most (\d+) characters?/, m => `不能超过${m[1]}个字符`],
    [/^Input should be a valid integer/, () => "须为整数"],
    [/^Input should be a valid boolean/, () => "须为是或否"],
    [/^Input should be greater than or equal to (\S+)/, m => `不能小于${m[1]}`],
    [/^Input should be less than or equal to (\S+)/, m => `不能大于${m[1]}`],
    [/^Input should be a valid date/, () => "日期格式应为 YYYY-MM-DD"],
    [/^Input should be /, () => "取值无效"],
    [/^Extra inputs are not permitted/, () => "不接受的字段"],
    [/^Field required/, () => "此项为必填"],
  ];

  function zh(msg) {
    msg = (msg || "").trim();
    const fp = msg.match(FIELD_PREFIX);
    if (fp) msg = fp[2];
    if (msg.startsWith("缺少必填字段")) return "此项为必填";
    const c = msg.search(CJK);
    if (c >= 0) {
      const rest = msg.slice(c);
      const tail = rest.search(/\s+\(?[A-Za-z]/);
      return (tail >= 0 ? msg.slice(0, c + tail) : msg).replace(/[\s：:;；，,]+$/, "");
    }
    for (const [re, render] of PYDANTIC) { const m = msg.match(re); if (m) return render(m); }
    return msg;
  }

  /** [{field, message}] from an API error body (model-level errors get their field back from the message). */
  function apiErrors(body) {
    const err = body && typeof body === "object" ? body.error : null;
    if (!err) return [{field: "body", message: "请求失败，请稍后再试"}];
    const raw = err.fields && err.fields.length ? err.fields : [{field: err.field || "body", message: err.message || ""}];
    return raw.map(f => {
      let field = f.field || "body";
      const m = (f.message || "").match(FIELD_PREFIX);
      if ((field === "body" || field === "__root__") && m) field = m[1];
      return {field, message: zh(f.message)};
    });
  }

  function errorText(r) {
    return apiErrors(r.data).map(e => e.message).join("；");
  }

  // --- statutory clocks ---
  function clockClass(c) {
    if (c.state === "running" && c.days_left !== null && c.days_left !== undefined && c.days_left <= 3) return "clock-due-soon";
    return "clock-" + c.state;
  }

  function clockChip(c) {
    let text = `${c.label}：${c.state_label || c.state}，截止 ${c.due_date || (c.due || "").slice(0, 10)}`;
    if (c.state !== "met" && c.days_left !== null && c.days_left !== undefined) text += `，剩 ${c.days_left} 日`;
    if (c.days_late) text += `，超期 ${c.days_late} 日`;
    return el("span", {class: "clock " + clockClass(c), dataset: {clock: c.name, state: c.state}}, text);
  }

  function announce(node, text, kind) {
    if (!node) return;
    node.textContent = text;
    node.className = "status" + (kind ? " " + kind : "");
  }

  function agencyName(cfg, agency) {
    if (!agency) return "";
    return (cfg.agencies && cfg.agencies[agency]) || agency;
  }

  /** "锦江区人社局（节点 510104-rsj）" */
  function agencyLabel(cfg, agency, name) {
    if (!agency) return "—";
    return `${name || agencyName(cfg, agency)}（节点 ${agency}）`;
  }

  function table(caption, headers, rows, attrs) {
    return el("table", {class: "data", ...(attrs || {})},
      el("caption", {class: caption.visible ? "" : "sr-only"}, caption.text || caption),
      el("thead", {}, el("tr", {}, headers.map(h => el("th", {scope: "col"}, h)))),
      el("tbody", {}, rows));
  }

  /** Run fn now and then every `ms` (slower while the tab is hidden); returns a function that runs it now. */
  function poll(fn, ms) {
    let timer = null, running = false;
    const tick = async () => {
      clearTimeout(timer);
      if (running) return;
      running = true;
      try { await fn(); } catch (e) { console.error(e); } finally {
        running = false;
        timer = setTimeout(tick, document.hidden ? ms * 5 : ms);
      }
    };
    tick();
    return tick;
  }

  return {el, append, clear, api, config, fmtTime, zh, apiErrors, errorText, clockChip, clockClass, announce,
          agencyName, agencyLabel, table, poll, TOKEN_KEY};
})();

document.querySelectorAll("form[data-logout]").forEach(f => f.addEventListener("submit", () => {
  try { sessionStorage.removeItem(LF.TOKEN_KEY); } catch (e) { /* storage disabled */ }
}));
document.querySelectorAll("[data-print]").forEach(b => b.addEventListener("click", () => window.print()));
