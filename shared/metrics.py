"""A small Prometheus text-format registry: counters by label set and gauges read at scrape time.
Each service exposes it at GET /metrics (requests, consumer event lag, breached deadlines).

Consumer lag (`lianfang_consumer_lag_events{consumer=...}`) is the ledger's last sequence minus the last
sequence the consumer applied: a consumer feeds `ConsumerLag.applied(seq)` after each event it committed,
and `watch_ledger` polls the stream's last sequence in the background (a gauge is read synchronously at
scrape time, so nothing is asked of the bus then)."""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from typing import Callable, Mapping

log = logging.getLogger(__name__)

_lock = threading.Lock()
_counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
_help: dict[str, str] = {}
# a gauge's reader returns one value, or {label tuple: value} for a labelled gauge
_gauges: dict[str, tuple[str, Callable[[], float | Mapping[tuple, float]]]] = {}


def inc(name: str, help_: str, amount: float = 1.0, **labels: str) -> None:
    with _lock:
        _help[name] = help_
        _counters[name][tuple(sorted(labels.items()))] += amount


def gauge(name: str, help_: str, read: Callable[[], float | Mapping[tuple, float]]) -> None:
    """Register a gauge whose value is read when /metrics is scraped. `read` may return a mapping from
    label tuples ((("consumer", "x"),) …) to values for a gauge with labels."""
    _gauges[name] = (help_, read)


def _labels(key: tuple) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in key) + "}" if key else ""


def render() -> str:
    lines = []
    with _lock:
        for name, series in _counters.items():
            lines += [f"# HELP {name} {_help[name]}", f"# TYPE {name} counter"]
            lines += [f"{name}{_labels(k)} {v}" for k, v in series.items()]
    for name, (help_, read) in list(_gauges.items()):
        try:
            value = read()
        except Exception:
            continue
        series = value.items() if isinstance(value, Mapping) else [((), value)]
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
        lines += [f"{name}{_labels(k)} {v}" for k, v in series]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ consumer lag

class ConsumerLag:
    """How far one durable consumer is behind the ledger (events): last ledger seq − last applied seq."""

    def __init__(self, consumer: str):
        self.consumer = consumer
        self.applied_seq: int | None = None
        self.ledger_seq: int | None = None

    def applied(self, seq: int) -> None:
        self.applied_seq = seq if self.applied_seq is None else max(self.applied_seq, seq)
        self.ledger_seq = seq if self.ledger_seq is None else max(self.ledger_seq, seq)

    def value(self) -> int | None:
        if self.ledger_seq is None:
            return None
        return max(0, self.ledger_seq - (self.applied_seq or 0))


_lags: dict[str, ConsumerLag] = {}


def consumer_lag(consumer: str) -> ConsumerLag:
    """The lag tracker of one consumer, shown as lianfang_consumer_lag_events{consumer=...}."""
    with _lock:
        lag = _lags.setdefault(consumer, ConsumerLag(consumer))
    gauge("lianfang_consumer_lag_events", "ledger last sequence minus the last sequence the consumer applied",
          lambda: {(("consumer", c.consumer),): v for c in list(_lags.values()) if (v := c.value()) is not None})
    return lag


async def watch_ledger(bus, lag: ConsumerLag, stop: asyncio.Event, every_s: float = 2.0) -> None:
    """Keep `lag.ledger_seq` current (the stream's last sequence). Until the consumer applies its first
    event after a start, its server-side ack floor stands for what it has applied."""
    await bus.connected.wait()
    while not stop.is_set():
        try:
            info = await bus.js.stream_info(bus.cfg.stream)
            lag.ledger_seq = max(lag.ledger_seq or 0, info.state.last_seq)
            if lag.applied_seq is None:
                ci = await bus.js.consumer_info(bus.cfg.stream, lag.consumer)
                if ci.ack_floor is not None and lag.applied_seq is None:
                    lag.applied_seq = ci.ack_floor.stream_seq
        except Exception as e:  # bus away or the consumer not made yet: try again next round
            log.debug("lag watch for %s: %s", lag.consumer, e)
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        except asyncio.TimeoutError:
            pass
