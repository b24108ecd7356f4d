"""CPU time and memory of a process from /proc (Linux): utime+stime and VmHWM/VmRSS."""
from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def sample(pid: int) -> dict | None:
    """{'cpu_s', 'rss_mb', 'peak_rss_mb'} now, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 (state) is fields[0]
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    kb = {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in status.splitlines() if ":" in ln)
          if k in ("VmRSS", "VmHWM")}
    return {"cpu_s": cpu, "rss_mb": kb.get("VmRSS", 0) / 1024, "peak_rss_mb": kb.get("VmHWM", 0) / 1024}


class ProcessTable:
    """Named processes sampled at phase boundaries: CPU seconds per phase, peak RSS overall."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.marks: list[tuple[str, float, dict[str, dict | None]]] = []  # (label, monotonic, samples)

    def mark(self, label: str, now: float) -> None:
        self.marks.append((label, now, {name: sample(pid) for name, pid in self.pids.items()}))

    def summary(self) -> dict:
        """Per process: pid, CPU seconds over the whole run and since start, peak RSS, CPU % per phase."""
        out = {}
        for name, pid in self.pids.items():
            samples = [(label, t, s[name]) for label, t, s in self.marks if s.get(name)]
            if not samples:
                out[name] = {"pid": pid, "gone": True}
                continue
            first, last = samples[0], samples[-1]
            phases = {}
            for (_, t0, a), (label, t1, b) in zip(samples, samples[1:]):
                if t1 > t0:
                    phases[label] = round(100 * (b["cpu_s"] - a["cpu_s"]) / (t1 - t0), 1)
            out[name] = {"pid": pid, "cpu_s": round(last[2]["cpu_s"] - first[2]["cpu_s"], 2),
                         "cpu_s_since_start": round(last[2]["cpu_s"], 2),
                         "peak_rss_mb": round(max(s["peak_rss_mb"] for _, _, s in samples), 1),
                         "cpu_pct_by_phase": phases}
        return out

    def window(self, start: str, end: str) -> tuple[float, dict[str, float]]:
        """Seconds between two marks and the CPU seconds each process used in between."""
        marks = {label: (t, samples) for label, t, samples in self.marks}
        (t0, a), (t1, b) = marks[start], marks[end]
        return t1 - t0, {name: b[name]["cpu_s"] - a[name]["cpu_s"] for name in self.pids if a.get(name) and b.get(name)}
