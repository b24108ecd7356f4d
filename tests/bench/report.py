"""The benchmark's outputs: the summary table on stdout and the latency plot (matplotlib, `.[bench]`)."""
from __future__ import annotations

from pathlib import Path


def _f(v, fmt="{:.0f}") -> str:
    return "—" if v is None else fmt.format(v)


def table(result: dict) -> str:
    lines = ["", "联访 Lianfang benchmark — summary", "",
             f"{'offered/s':>10} {'achieved/s':>11} {'201':>6} {'http p50':>9} {'http p99':>9} "
             f"{'e2e p50':>8} {'e2e p99':>8} {'unsigned':>9}   (ms)"]
    for s in result["steps"]:
        lines.append(f"{s['offered_per_s']:>10} {s['achieved_per_s']:>11.1f} {s['accepted']:>6} "
                     f"{_f(s['http_p50_ms']):>9} {_f(s['http_p99_ms']):>9} {_f(s['e2e_p50_ms']):>8} "
                     f"{_f(s['e2e_p99_ms']):>8} {s['unsigned']:>9}")
    t = result["targets"]
    lines += ["",
              f"baseline GET /healthz     {result['baseline_http_per_s']:8.1f} req/s  ({result['concurrency']} clients)",
              f"intake POST /petitions    {result['intake_per_s']:8.1f} req/s  ratio {result['intake_to_baseline']:.2f}"
              f"  (target ≥ 0.4: {'met' if t['intake_vs_baseline']['met'] else 'NOT met'})",
              *([f"intake, {result['intake_node_alone']['per_s']:.1f} req/s with the other nodes paused, "
                 f"{result['intake_desk_alone']['per_s']:.1f} req/s with only the desk's intake process running "
                 f"(sizing, not the target)"] if result.get("intake_node_alone") else []),
              f"e2e at {result['e2e_step_per_s']}/s{'' if result.get('e2e_step_kept_up', True) else ' (not kept up)'}"
              f"            p50 {_f(result['e2e_p50_ms'])} ms, "
              f"p99 {_f(result['e2e_p99_ms'])} ms  (target p99 ≤ 300 at 200/s: "
              f"{'met' if t['e2e_p99_at_200'] ['met'] else 'NOT met'})",
              f"lost                      {result['lost']}  (target 0: {'met' if t['lost']['met'] else 'NOT met'})",
              f"federation CPU (all service processes and nats-server, % of one core): "
              f"idle {result['federation_cpu_pct']['idle']}, baseline {result['federation_cpu_pct']['baseline']}, "
              f"intake {result['federation_cpu_pct']['intake']}  ({result['machine']['cpus']} cores)",
              f"CPU per petition (ms, net of idle): {result['cpu_per_petition']['ms_total']} in all — "
              + ", ".join(f"{k} {v}" for k, v in result['cpu_per_petition']['ms_by_kind'].items())
              + f"; ceiling ≈ {result['cpu_per_petition']['ceiling_per_s']} petitions/s on this machine "
              f"({result['cpu_per_petition'].get('ms_total_with_idle')} ms and "
              f"{result['cpu_per_petition'].get('ceiling_with_idle_per_s')}/s counting what it burns idle)",
              "  by node: " + ", ".join(f"{k} {v}" for k, v in result['cpu_per_petition']['ms_by_node'].items())
              + f"; 200/s offered leaves {result['cpu_per_petition']['budget_ms_at_200']} ms a petition in all "
              f"(the bench client took {result['cpu_per_petition']['bench_client_ms']})",
              "", f"{'process':<26} {'CPU s':>7} {'idle %':>7} {'peak RSS MB':>12}"]
    for name, p in sorted(result["processes"].items(), key=lambda kv: -kv[1].get("cpu_s", 0)):
        lines.append(f"{name:<26} {p.get('cpu_s', 0):>7.1f} {p.get('cpu_pct_by_phase', {}).get('idle', 0):>7.1f} "
                     f"{p.get('peak_rss_mb', 0):>12.0f}")
    return "\n".join(lines)


def scale_table(sc: dict) -> str:
    """The scale part: each timed request (ms, size, cases in the answer) and the processes' RSS."""
    if "requests_ms" not in sc:
        return f"\nscale ({sc.get('cases')} cases): {sc.get('error', 'no figures')}"
    d = sc["dataset"]
    lines = ["", f"scale: {sc['cases']} cases in {sc['node']}'s read model over {sc['years']} years "
             f"(intake.db {d['intake']['mb']} MB, supervision.db {d['supervision']['mb']} MB; "
             f"{'reused' if d['reused'] else 'made in ' + str(d['seconds']) + ' s'}); services ready in "
             f"{sc['start_s']} s", "", f"{'request':<24} {'ms':>9} {'status':>6} {'KB':>9} {'cases':>7}"]
    for name, r in sc["requests_ms"].items():
        lines.append(f"{name:<24} {_f(r.get('ms'), '{:.1f}'):>9} {str(r.get('status', r.get('error', r.get('skipped')))):>6} "
                     f"{_f(r.get('kb'), '{:.1f}'):>9} {_f(r.get('cases')):>7}")
    lines.append("")
    for svc in sc["rss_at_end"]:
        lines.append(f"{svc:<12} RSS at start {_f(sc['rss_at_start'][svc]['rss_mb'])} MB, at the end "
                     f"{_f(sc['rss_at_end'][svc]['rss_mb'])} MB, peak {_f(sc['rss_at_end'][svc]['peak_rss_mb'])} MB")
    return "\n".join(lines)


_plt = None


def load_matplotlib():
    """pyplot with the file-only backend, or None when the `bench` extra is not installed."""
    global _plt
    if _plt is None:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            _plt = plt
        except ImportError:
            return None
    return _plt


def plot(result: dict, path: Path) -> bool:
    """p50/p99 against offered load; False when there is nothing to plot or no matplotlib."""
    plt = load_matplotlib()
    steps = [s for s in result["steps"] if s["e2e_p50_ms"] and s["e2e_p99_ms"] and s["http_p99_ms"]]
    if plt is None or not steps:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    x = [s["offered_per_s"] for s in steps]
    ax.plot(x, [s["e2e_p50_ms"] for s in steps], "o-", label="e2e p50")
    ax.plot(x, [s["e2e_p99_ms"] for s in steps], "s-", label="e2e p99")
    ax.plot(x, [s["http_p99_ms"] for s in steps], "^:", color="grey", label="POST 201 p99")
    ax.axhline(300, color="red", linestyle="--", linewidth=1, label="target p99 300 ms")
    for s in steps:
        ax.annotate(f"got {s['achieved_per_s']:.0f}/s", (s["offered_per_s"], s["e2e_p99_ms"]),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(x, [str(v) for v in x])
    ax.set_yscale("log")
    ax.set_xlabel("offered load (petitions/s, open loop)")
    ax.set_ylabel("latency, submitted → signed for (ms)")
    ax.set_title("Lianfang: submit at 510104-xfj → case.signed_for by 510104-rsj", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
