"""A small Prometheus text-format registry: counters by label set and gauges read at scrape time.
Each service exposes it at GET /metrics (requests, event lag, outbox backlog, breached deadlines)."""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Callable

_lock = threading.Lock()
_counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
_help: dict[str, str] = {}
_gauges: dict[str, tuple[str, Callable[[], float]]] = {}


def inc(name: str, help_: str, amount: float = 1.0, **labels: str) -> None:
    with _lock:
        _help[name] = help_
        _counters[name][tuple(sorted(labels.items()))] += amount


def gauge(name: str, help_: str, read: Callable[[], float]) -> None:
    """Register a gauge whose value is read when /metrics is scraped."""
    _gauges[name] = (help_, read)


def _labels(key: tuple) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in key) + "}" if key else ""


def render() -> str:
    lines = []
    with _lock:
        for name, series in _counters.items():
            lines += [f"# HELP {name} {_help[name]}", f"# TYPE {name} counter"]
            lines += [f"{name}{_labels(k)} {v}" for k, v in series.items()]
    for name, (help_, read) in _gauges.items():
        try:
            value = read()
        except Exception:
            continue
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", f"{name} {value}"]
    return "\n".join(lines) + "\n"
