/* 督办看板: figures from the supervision assessment API (GET /api/v1/assessment, the same numbers as its
   JSON and CSV), volumes and the most overdue cases from this node's case read model (/ui/data/overview:
   aggregates computed by the server, never one row per case; /ui/data/overview.csv lists the cases),
   charts with Apache ECharts (static/echarts.min.js, no CDN).
   When everything is drawn, <body data-dashboard="ready"> and each chart has data-points. */
"use strict";
(() => {
  const {el, api, announce} = LF;
  const status = document.getElementById("dash-status");
  const form = document.getElementById("filters");
  const RATES = [["timely_acceptance", "及时受理率"], ["on_time_completion", "按期办结率"],
                 ["evaluation_participation", "参评率"], ["satisfaction", "满意率"],
                 ["first_time_resolution", "一次办结率"], ["repeat_rate", "重复信访率"]];
  const charts = [];

  const pct = r => r === null || r === undefined ? "—" : (r * 100).toFixed(1) + "%";

  function params(cfg) {
    const q = new URLSearchParams(location.search);
    const today = cfg.today || new Date().toISOString().slice(0, 10);
    const to = q.get("to") || today;
    const from = q.get("from") || to.slice(0, 4) + "-01-01";
    return {from, to, division: q.get("division") || ""};
  }

  function fillFilters(cfg, p) {
    form.elements.from.value = p.from;
    form.elements.to.value = p.to;
    const sel = form.elements.division;
    for (const d of cfg.division_choices || []) sel.appendChild(el("option", {value: d.code}, `${d.name}（${d.code}）`));
    sel.value = p.division;
  }

  function query(p, extra) {
    const q = new URLSearchParams({from: p.from, to: p.to, ...(extra || {})});
    if (p.division) q.set("division", p.division);
    return q.toString();
  }

  function kpi(key, labelText, value, hint) {
    return el("div", {class: "kpi", dataset: {metric: key, value: String(value)}},
      el("span", {class: "kpi-value"}, String(value)), el("span", {class: "kpi-label"}, labelText),
      hint ? el("span", {class: "kpi-hint"}, hint) : null);
  }

  function rateKpi(key, labelText, m) {
    const r = m[key];
    return el("div", {class: "kpi", dataset: {metric: key, value: r.rate === null ? "" : String(r.rate),
                                               numerator: String(r.numerator), denominator: String(r.denominator)}},
      el("span", {class: "kpi-value"}, pct(r.rate)), el("span", {class: "kpi-label"}, labelText),
      el("span", {class: "kpi-hint"}, `${r.numerator}/${r.denominator}`));
  }

  function rateCell(key, m) {
    const r = m[key];
    return el("td", {dataset: {key, value: r.rate === null ? "" : String(r.rate), numerator: String(r.numerator),
                               denominator: String(r.denominator)}}, `${pct(r.rate)}（${r.numerator}/${r.denominator}）`);
  }

  function numCell(key, v) { return el("td", {class: "num", dataset: {key, value: String(v)}}, String(v)); }

  function metricRow(scope, code, nameText, m) {
    return el("tr", {dataset: {scope, code: code || ""}},
      el("th", {scope: "row"}, nameText), numCell("cases", m.cases), RATES.map(([k]) => rateCell(k, m)),
      numCell("skipped_level_visits", m.skipped_level_visits), numCell("overdue_total", m.overdue.total),
      numCell("supervision_orders", m.supervision_orders), numCell("listed_supervision", m.listed_supervision));
  }

  function ratesTable(report) {
    const rows = [metricRow("total", "", "合计", report.total),
                  ...report.by_agency.map(a => metricRow("agency", a.agency, `${a.agency_name}（${a.agency}）`, a)),
                  ...report.by_division.map(d => metricRow("division", d.division, `${d.division_name}（${d.division}）`, d))];
    return LF.table("考核指标：合计、各承办机构、各行政区划", ["", "件数", ...RATES.map(r => r[1]), "越级访数", "超期件数", "督办件数", "挂牌督办"],
      rows, {id: "assessment-table", "data-from": report.from, "data-to": report.to});
  }

  function overdueTable(list) {
    if (!list.length) return el("p", {class: "empty"}, "所选期间没有超期案件。");
    return LF.table("超期最久的案件（前20件）", ["事项", "类别", "承办机构", "超期时限", "截止日期", "超期天数", "督办"], list.map(c =>
      el("tr", {dataset: {caseId: c.case_id}}, el("td", {}, el("a", {href: `/ui/cases/${encodeURIComponent(c.case_id)}`}, c.title || c.case_id)),
        el("td", {}, c.category), el("td", {}, c.holder_name),
        el("td", {}, c.overdue.map(o => o.clock).join("、")), el("td", {}, c.overdue.map(o => o.due_date).join("、")),
        el("td", {class: "num"}, `${c.days_late} 日`), el("td", {class: "num"}, String(c.orders)))), {id: "overdue-cases"});
  }

  /** Draw one chart; resolves once ECharts has finished rendering it. */
  function draw(id, option, points) {
    const node = document.getElementById(id);
    delete node.dataset.points;
    const old = echarts.getInstanceByDom(node);
    if (old) { charts.splice(charts.indexOf(old), 1); old.dispose(); }
    const chart = echarts.init(node, null, {renderer: "canvas"});
    charts.push(chart);
    return new Promise(resolve => {
      chart.on("finished", () => { node.dataset.points = String(points); resolve(); });
      chart.setOption({animation: false, aria: {enabled: true}, textStyle: {fontFamily: "sans-serif"},
                       tooltip: {trigger: "axis"}, grid: {left: 48, right: 16, top: 40, bottom: 48, containLabel: true},
                       ...option});
    });
  }

  async function load() {
    const cfg = await LF.config();
    const p = params(cfg);
    fillFilters(cfg, p);
    document.getElementById("csv-link").href = "/ui/api/supervision/api/v1/assessment?" + query(p, {format: "csv"});
    document.getElementById("cases-csv-link").href = "/ui/data/overview.csv?" + query(p);
    const [ar, or] = await Promise.all([api("supervision", "api/v1/assessment?" + query(p)),
                                        api("ui", "/ui/data/overview?" + query(p))]);
    if (!ar.ok) { announce(status, "无法加载考核数据：" + LF.errorText(ar), "error"); document.body.dataset.dashboard = "error"; return; }
    const report = ar.data, total = report.total;
    const ov = or.ok ? or.data : {total: 0, collective: 0, buckets: [], by_category: [], most_overdue: [],
                                   trend: {category: [], division_name: [], holder_name: []}};

    const kpis = document.getElementById("kpis");
    LF.clear(kpis);
    LF.append(kpis, [
      kpi("cases", "登记件数", total.cases), kpi("overdue_total", "超期件数", total.overdue.total),
      kpi("supervision_orders", "督办件数", total.supervision_orders), kpi("listed_supervision", "挂牌督办", total.listed_supervision),
      kpi("skipped_level_visits", "越级访数", total.skipped_level_visits),
      kpi("repeat_cases", "重复信访件数", total.repeat_rate.numerator),
      kpi("collective_cases", "集体访件数", ov.collective),
      rateKpi("timely_acceptance", "及时受理率", total), rateKpi("on_time_completion", "按期办结率", total),
      rateKpi("satisfaction", "满意率", total)]);
    const rt = document.getElementById("rates-table");
    LF.clear(rt).appendChild(ratesTable(report));
    const ot = document.getElementById("overdue-table");
    LF.clear(ot).appendChild(overdueTable(ov.most_overdue));

    const trendBy = document.getElementById("trend-by");
    const trend = () => {
      const series = ov.trend[trendBy.value].map(g => ({name: g.name, type: "bar", stack: "total", data: g.data}));
      return draw("chart-trend", {legend: {top: 0}, xAxis: {type: "category", data: ov.buckets},
                                  yAxis: {type: "value", minInterval: 1, name: "件"},
                                  series: series.length ? series : [{type: "bar", data: ov.buckets.map(() => 0)}]},
                  ov.total);
    };
    trendBy.onchange = () => { trend(); };
    const agencies = report.by_agency;
    const rateSeries = RATES.filter(([k]) => k !== "repeat_rate").map(([k, name]) => ({
      name, type: "bar", data: agencies.map(a => a[k].rate === null ? null : Math.round(a[k].rate * 1000) / 10)}));
    await Promise.all([
      trend(),
      draw("chart-category", {tooltip: {trigger: "item"}, series: [{type: "pie", radius: ["35%", "65%"],
                              label: {formatter: "{b}：{c}件"}, data: ov.by_category.map(c => ({name: c.name, value: c.cases}))}]}, ov.by_category.length),
      draw("chart-division", {xAxis: {type: "category", data: report.by_division.map(d => d.division_name)},
                              yAxis: {type: "value", minInterval: 1, name: "件"},
                              series: [{name: "件数", type: "bar", data: report.by_division.map(d => d.cases), label: {show: true, position: "top"}}]},
           report.by_division.length),
      draw("chart-agency", {legend: {top: 0}, xAxis: {type: "category", data: agencies.map(a => a.agency_name), axisLabel: {interval: 0, rotate: 20}},
                            yAxis: {type: "value", minInterval: 1, name: "件"},
                            series: [{name: "件数", type: "bar", data: agencies.map(a => a.cases)},
                                     {name: "超期", type: "bar", data: agencies.map(a => a.overdue.total)},
                                     {name: "督办", type: "bar", data: agencies.map(a => a.supervision_orders)}]}, agencies.length),
      draw("chart-rates", {legend: {top: 0}, xAxis: {type: "category", data: agencies.map(a => a.agency_name), axisLabel: {interval: 0}},
                           yAxis: {type: "value", max: 100, name: "%"}, series: rateSeries}, agencies.length),
    ]);
    announce(status, `统计期间 ${report.from} 至 ${report.to}${p.division ? "，区划 " + p.division : ""}，共 ${total.cases} 件（截至 ${LF.fmtTime(report.as_of)}）。`, "");
    document.body.dataset.dashboard = "ready";
  }

  window.addEventListener("resize", () => charts.forEach(c => c.resize()));
  load().catch(e => { console.error(e); announce(status, "看板加载失败", "error"); document.body.dataset.dashboard = "error"; });
})();
