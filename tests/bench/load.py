"""Load generation with one asyncio httpx client: closed loop (N workers back to back) and open loop
(requests started on a fixed schedule whatever the answers, so a slow server cannot slow the offered load)."""
from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import httpx

from tests.support import petition

DISTINCT_IDS = 21_000  # tests.support.valid_id(n) is distinct for n below lcm(30, 12, 28, 1000)


@dataclass
class Sample:
    sent: float            # time.time() just before the request left (comparable with JetStream timestamps)
    done: float
    status: int            # HTTP status; 0 = transport error or timeout
    case_id: str | None = None
    note: str | None = None


Call = Callable[[], Awaitable[Sample]]


def client(concurrency: int) -> httpx.AsyncClient:
    # keep-alive shorter than the server's (shared/runtime.py): a request sent on a connection it is closing fails
    return httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency,
                                                 keepalive_expiry=2.0),
                             timeout=httpx.Timeout(30.0, pool=60.0))


async def timed(coro_fn: Callable[[], Awaitable[httpx.Response]]) -> tuple[float, float, httpx.Response | None, str | None]:
    t0 = time.time()
    try:
        r = await coro_fn()
        return t0, time.time(), r, None
    except httpx.HTTPError as e:
        return t0, time.time(), None, type(e).__name__


class Desk:
    """A 信访局 registration desk submitting 劳动社保 petitions, each with a distinct petitioner."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str):
        self.http, self.url = http, base_url.rstrip("/") + "/api/v1/petitions"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.numbers = itertools.count(1)
        self.issued = 0

    async def submit(self) -> Sample:
        n = next(self.numbers)
        if n >= DISTINCT_IDS:
            raise RuntimeError("ran out of distinct ID numbers")
        self.issued = n
        body = json.dumps(petition(n), ensure_ascii=False).encode()
        t0, t1, r, err = await timed(lambda: self.http.post(self.url, content=body, headers=self.headers))
        if r is None:
            return Sample(t0, t1, 0, note=err)
        if r.status_code != 201:
            return Sample(t0, t1, r.status_code, note=r.text[:200])
        reply = r.json()
        return Sample(t0, t1, 201, reply.get("case_id"), None if reply.get("status") == "registered" else reply.get("status"))


def bare(http: httpx.AsyncClient, url: str) -> Call:
    """The bare endpoint (GET /healthz) through the same client."""
    async def call() -> Sample:
        t0, t1, r, err = await timed(lambda: http.get(url))
        return Sample(t0, t1, r.status_code if r is not None else 0, note=err)
    return call


async def closed_loop(call: Call, concurrency: int, duration: float, max_requests: int | None = None) -> list[Sample]:
    """`concurrency` workers, each sending its next request as soon as the last one is answered."""
    end = time.monotonic() + duration
    out: list[Sample] = []
    budget = itertools.count()

    async def worker():
        while time.monotonic() < end and (max_requests is None or next(budget) < max_requests):
            out.append(await call())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


async def open_loop(call: Call, rate: float, duration: float, late_after: float = 30) -> tuple[list[Sample], float, int]:
    """Start request i at t0 + i/rate for `duration` seconds. Returns the samples of the requests
    answered within `late_after` s of the last start, how far (s) the schedule slipped at worst (the
    generator itself falling behind) and how many requests were started."""
    t0 = time.monotonic()
    tasks: list[asyncio.Task] = []
    slip = 0.0
    for i in itertools.count():
        due = t0 + i / rate
        if due >= t0 + duration:
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            slip = max(slip, -delay)
        tasks.append(asyncio.create_task(call()))
    done, pending = await asyncio.wait(tasks, timeout=late_after)
    for t in pending:
        t.cancel()
    return [t.result() for t in done if not t.exception()], slip, len(tasks)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))]


def rate(samples: list[Sample], status: int) -> float:
    ok = [x for x in samples if x.status == status]
    if not ok:
        return 0.0
    span = max(x.done for x in samples) - min(x.sent for x in samples)
    return len(ok) / span if span > 0 else 0.0
