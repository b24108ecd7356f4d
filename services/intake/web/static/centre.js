/* 联合接访: the hall's screen at the node that hosts a centre (windows, queue with waiting times, today's
   sessions and hearings, duty roster, leader reception days, gaps); elsewhere the agency's own windows.
   ?screen=1 is the big-screen mode for the hall (no navigation, large type, refreshes itself). */
"use strict";
(() => {
  const {el, api, fmtTime, announce} = LF;
  const root = document.getElementById("centre");
  const status = document.getElementById("centre-status");
  const screen = root.dataset.screen === "1";
  const now = document.getElementById("now");
  let cfg = {};

  const section = (id, title, ...body) => el("section", {class: "card", id, "aria-labelledby": id + "-h"},
    el("h2", {id: id + "-h"}, title), ...body);
  const hhmm = iso => fmtTime(iso).slice(11);
  const SESSION_STATUS = {inviting: "邀请中", ready: "待调处", concluded: "已调处", open: "进行中"};
  const ANSWERS = {accepted: "接受", declined: "拒绝", pending: "未答复", null: "未答复"};

  function ticket(t, longWait) {
    const long = t.waited_minutes >= longWait;
    return el("li", {class: "ticket" + (long ? " long-wait" : ""), dataset: {ticket: t.number}},
      el("span", {class: "num"}, t.number), " ", el("span", {class: "topic"}, t.topic), " ",
      el("span", {class: "wait"}, `已等候 ${t.waited_minutes} 分钟`), t.ahead !== null && t.ahead !== undefined ? el("span", {class: "muted"}, `，前面 ${t.ahead} 人`) : null,
      t.collective ? el("span", {class: "tag warn"}, "集体访") : null, long ? el("span", {class: "tag danger"}, "等候过久") : null);
  }

  function windows(queue) {
    const longWait = queue.long_wait_minutes || 30;
    return el("div", {class: "windows"}, (queue.windows || []).map(w =>
      el("article", {class: "window" + (w.staffed ? "" : " unstaffed"), dataset: {window: w.window_id}, "aria-labelledby": `w-${w.window_id}`},
        el("h3", {id: `w-${w.window_id}`}, w.name),
        el("p", {class: "muted"}, w.agency_name, w.staffed ? null : el("span", {class: "tag danger"}, "机构未入驻")),
        el("p", {class: "called"}, "正在接待：", (w.called || []).length ? w.called.map(t => t.number).join("、") : "—"),
        el("p", {}, `等候 ${(w.waiting || []).length} 人 · 今日已接待 ${w.served_today} 人 · 平均等候 ${w.avg_wait_minutes} 分钟`
          + (w.longest_wait_minutes ? ` · 最长 ${w.longest_wait_minutes} 分钟` : "")),
        (w.waiting || []).length ? el("ol", {class: "queue", "aria-label": `${w.name}排队`}, w.waiting.map(t => ticket(t, longWait))) : null)));
  }

  function sessions(list) {
    if (!list.length) return el("p", {class: "empty"}, "今日没有联合调处。");
    return LF.table("今日联合调处", ["时间", "事项", "议题", "地点", "参加机构", "状态"], list.map(s =>
      el("tr", {dataset: {sessionId: s.session_id}},
        el("td", {}, hhmm(s.scheduled_at)), el("td", {}, el("a", {href: `/ui/cases/${encodeURIComponent(s.case_id)}`}, s.title || s.case_id)),
        el("td", {}, s.agenda), el("td", {}, s.place || "—"),
        el("td", {}, (s.invitations || []).map(i => `${i.agency_name}（${ANSWERS[i.answer] || i.answer || "未答复"}）`).join("、")),
        el("td", {}, s.outcome ? "已调处" : (SESSION_STATUS[s.status] || s.status)))));
  }

  function hearings(list) {
    if (!list.length) return el("p", {class: "empty"}, "今日没有听证。");
    return LF.table("今日听证", ["时间", "听证事项", "地点", "状态"], list.map(h =>
      el("tr", {}, el("td", {}, hhmm(h.scheduled_at)),
        el("td", {}, el("a", {href: `/ui/cases/${encodeURIComponent(h.case_id)}`}, h.subject)),
        el("td", {}, h.place || "—"), el("td", {}, h.status === "held" ? "已举行" : "已安排"))));
  }

  function roster(list) {
    if (!list.length) return el("p", {class: "empty"}, "近期没有排班记录。");
    return LF.table("值班安排", ["日期", "值班人员", "带班领导", "敏感时期", "状态"], list.map(d =>
      el("tr", {class: d.ok ? "" : "row-alert"}, el("td", {}, d.date), el("td", {}, (d.people || []).join("、") || "未排班"),
        el("td", {}, d.lead || "—"), el("td", {}, d.sensitive ? `${d.period}（须双人值班）` : "—"),
        el("td", {}, d.ok ? "已落实" : "缺位"))));
  }

  function leaderDays(list) {
    if (!list.length) return el("p", {class: "empty"}, "近期没有领导接访日。");
    return LF.table("领导接访日", ["日期", "接访领导", "接访事项", "已包案件"], list.map(d =>
      el("tr", {class: d.leader ? "" : "row-alert", dataset: {date: d.date}}, el("td", {}, d.date),
        el("td", {}, d.leader ? `${d.leader}${d.title ? "（" + d.title + "）" : ""}` : "待安排"),
        el("td", {}, (d.topics || []).join("、")), el("td", {}, String((d.cases || []).length)))));
  }

  function gaps(list) {
    if (!list.length) return el("p", {class: "empty"}, "没有缺位。");
    return el("ul", {class: "gaps"}, list.map(g => el("li", {}, LF.zh(g.message))));
  }

  function renderScreen(d) {
    document.getElementById("centre-title").textContent = d.centre.name;
    const q = d.queue || {};
    return [
      el("p", {class: "muted"}, `${d.centre.place || ""} · ${d.centre.date} · 等候合计 ${q.waiting_total || 0} 人`),
      section("windows", "窗口与排队", windows(q)),
      el("div", {class: "grid2"},
        section("sessions", "今日联合调处", sessions(d.sessions || [])),
        section("hearings", "今日听证", hearings(d.hearings || []))),
      el("div", {class: "grid2"},
        section("roster", "值班安排（未来7日）", roster(d.roster || [])),
        section("leader-days", "领导接访日", leaderDays(d.leader_days || []))),
      section("gaps", "缺位提醒", gaps(d.gaps || [])),
    ];
  }

  function renderWindowView(d) {
    document.getElementById("centre-title").textContent = "联合接访（本机构窗口）";
    const out = [el("p", {}, "本节点不设联合接访中心。以下是本机构在所属联合接访中心的窗口、调处和听证。")];
    for (const c of d.centres || []) {
      out.push(section(`c-${c.centre}`, `${c.centre_name}（${c.date}）`,
        windows({windows: (c.windows || []).map(w => ({...w, staffed: true, agency_name: cfg.node ? cfg.node.name : ""})), long_wait_minutes: 30}),
        el("h3", {}, "联合调处"), (c.sessions || []).length ? LF.table("联合调处", ["时间", "事项", "议题", "地点", "本机构答复"], c.sessions.map(s =>
          el("tr", {}, el("td", {}, fmtTime(s.scheduled_at)), el("td", {}, el("a", {href: `/ui/cases/${encodeURIComponent(s.case_id)}`}, s.title || s.case_id)),
            el("td", {}, s.agenda), el("td", {}, s.place || "—"), el("td", {}, ANSWERS[s.answer] || s.answer || "未答复")))) : el("p", {class: "empty"}, "没有联合调处。"),
        el("h3", {}, "听证"), hearings(c.hearings || []),
        el("h3", {}, "领导接访日"), leaderDays(c.leader_days || [])));
    }
    if ((d.unreachable || []).length) out.push(el("p", {class: "alert"}, `暂时无法连接：${d.unreachable.join("、")}`));
    if (!(d.centres || []).length) out.push(el("p", {class: "empty"}, "本机构在联合接访中心没有窗口。"));
    return out;
  }

  let lastText = null;
  async function load() {
    cfg = await LF.config();
    let r = await api("joint_reception", "api/v1/centre/screen");
    let view = renderScreen;
    if (r.status === 404) { r = await api("joint_reception", "api/v1/window"); view = renderWindowView; }
    if (!r.ok) { announce(status, "无法加载：" + LF.errorText(r), "error"); root.dataset.loaded = "error"; return; }
    const text = JSON.stringify(r.data);
    if (text !== lastText) {
      lastText = text;
      LF.clear(root);
      LF.append(root, view(r.data));
    }
    root.dataset.loaded = "1";
    announce(status, screen ? "" : "更新于 " + fmtTime(new Date().toISOString()), "");
  }

  const tickClock = () => { now.textContent = fmtTime(new Date().toISOString()); };
  tickClock();
  setInterval(tickClock, 15000);
  LF.poll(load, screen ? 10000 : 20000);
})();
