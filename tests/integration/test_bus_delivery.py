"""Bus.consume against a real nats-server: a transient failure in the middle of a batch loses nothing and
reorders nothing within a case, events pulled by a process that died are not lost, and a case's history
is read whole or not at all."""
from __future__ import annotations

import asyncio
import signal

import pytest

from shared.bus import envelope, jetstream
from shared.bus.envelope import Event
from shared.bus.jetstream import Bus
from shared.bus.pull import Puller
from shared.config import BusConfig

CASES = ("C-A", "C-B", "C-C")


def _events(n_per_case: int = 5) -> list[Event]:
    """Interleaved: A1 B1 C1 A2 B2 C2 …"""
    return [Event(case_id=case, type="test.step", agency="510104-xfj", actor="t", payload={"n": i}, audience=[])
            for i in range(n_per_case) for case in CASES]


async def _publish(bus: Bus, events: list[Event]) -> None:
    for ev in events:
        await bus.publish(ev.subject, ev.to_json().encode(), {"Nats-Msg-Id": ev.id})


async def _acks_settled(bus: Bus, durable: str):
    """The consumer's info once no ack is pending any more (the server applies acks asynchronously),
    or after 5 s."""
    for _ in range(50):
        info = await bus.js.consumer_info(bus.cfg.stream, durable)
        if info.num_ack_pending == 0:
            break
        await asyncio.sleep(0.1)
    return info


async def _drain(url: str, durable: str, events: list[Event], fail_once: set[str]) -> tuple[list[Event], list[str]]:
    """Consume until every event was handled successfully; returns (successes in order, attempts)."""
    bus, stop = Bus(BusConfig(url=url), "test"), asyncio.Event()
    await bus.connect(stop)
    done: list[Event] = []
    attempts: list[str] = []
    failed: set[str] = set()

    async def handler(ev: Event, seq: int) -> None:
        attempts.append(ev.id)
        if ev.id in fail_once and ev.id not in failed:
            failed.add(ev.id)
            raise RuntimeError("database busy (test)")
        if ev.id not in {d.id for d in done}:  # an idempotent handler: a redelivery changes nothing
            done.append(ev)
        if len(done) == len(events):
            stop.set()

    if events:
        await _publish(bus, events)
    task = asyncio.create_task(bus.consume(durable, handler, stop, batch=100))
    try:
        await asyncio.wait_for(stop.wait(), timeout=30)
    finally:
        stop.set()
        await task
        info = await _acks_settled(bus, durable)
        await bus.close()
    assert info.num_ack_pending == 0 and info.num_pending == 0, info  # everything acknowledged
    return done, attempts


async def _consume_until_stopped(bus: Bus, durable: str, handler, stop: asyncio.Event, timeout: float = 20) -> None:
    """Bus.consume until the handler sets `stop` (at most `timeout` seconds); then the bus is closed."""
    task = asyncio.create_task(bus.consume(durable, handler, stop))
    try:
        await asyncio.wait_for(stop.wait(), timeout=timeout)
    finally:
        stop.set()
        await task
        await bus.close()


async def _consume_filtered(bus: Bus, durable: str, subjects: list[str], until: str) -> tuple[list[str], object]:
    """The ids a consumer on these subjects receives until the event `until` arrives (and half a second
    more: anything else the server had to send would have come by then), and its consumer info."""
    got, stop = [], asyncio.Event()

    async def handler(ev: Event, seq: int) -> None:
        got.append(ev.id)
        if until in got:
            stop.set()
    task = asyncio.create_task(bus.consume(durable, handler, stop, subjects=subjects))
    await asyncio.wait_for(stop.wait(), timeout=20)
    await asyncio.sleep(0.5)
    stop.set()
    await task
    info = await bus.js.consumer_info(bus.cfg.stream, durable)
    await bus.close()
    return got, info


def test_a_failure_mid_batch_is_redelivered_in_case_order(nats):
    events = _events()
    failing = events[4]  # B2, in the middle of the first batch
    done, attempts = asyncio.run(_drain(nats.url, "mid-batch", events, fail_once={failing.id}))

    assert {d.id for d in done} == {e.id for e in events}
    for case in CASES:  # each case's events succeeded in ledger order, the redelivered one included
        assert [d.payload["n"] for d in done if d.case_id == case] == list(range(5))
    assert attempts.count(failing.id) == 2
    # B2's later events waited for it without being tried; nothing else came twice
    assert len(attempts) == len(events) + 1
    assert asyncio.run(_drain_nothing(nats.url, "mid-batch")) == []  # a restarted consumer finds nothing left


def test_a_case_event_of_a_later_batch_waits_for_the_failed_one(nats):
    """A0 fails; A1 of the same case is published meanwhile and comes in the next batch, before A0 is
    redelivered: A1 must wait for A0 (and C-B's event need not)."""
    a0, a1, b0 = (Event(case_id=c, type="test.step", agency="510104-xfj", actor="t", payload={"n": n}, audience=[])
                  for c, n in (("C-A", 0), ("C-A", 1), ("C-B", 0)))

    async def run() -> list[str]:
        bus, stop = Bus(BusConfig(url=nats.url), "test"), asyncio.Event()
        await bus.connect(stop)
        done: list[str] = []
        failed = False

        async def handler(ev: Event, seq: int) -> None:
            nonlocal failed
            if ev.id == a0.id and not failed:
                failed = True
                await _publish(bus, [a1, b0])  # on the ledger before A0 comes again
                raise RuntimeError("database busy (test)")
            if ev.id not in done:
                done.append(ev.id)
            if len(done) == 3:
                stop.set()

        await _publish(bus, [a0])
        await _consume_until_stopped(bus, "held", handler, stop)
        return done

    done = asyncio.run(run())
    assert done.index(a0.id) < done.index(a1.id)
    assert done.index(b0.id) < done.index(a0.id)  # another case went on meanwhile


def test_events_pulled_by_a_process_that_died_come_again_first(nats):
    """A process pulled events and died before handling them; newer events of the same cases are on the
    ledger when the next run starts. The dead process's events must come (with AckPolicy.ALL the newer
    ones' acks covered them, and they were lost), and first: each case in ledger order."""
    first, later = _events(2), _events(2)

    async def run() -> list[str]:
        bus, stop = Bus(BusConfig(url=nats.url), "test"), asyncio.Event()
        bus.ack_wait_s = 2
        await bus.connect(stop)
        await _publish(bus, first)
        await bus._durable_consumer("dies")
        puller = await Puller(bus.nc, bus.cfg.stream, "dies", bus.inbox).start()
        pulled = await puller.next_batch(100, wait=5)  # … and the process "dies": no ack, no nak
        await puller.stop()
        assert len(pulled) == len(first)
        await _publish(bus, later)

        seen: list[str] = []
        want = {e.id for e in first + later}

        async def handler(ev: Event, seq: int) -> None:
            seen.append(ev.id)
            if want <= set(seen):
                stop.set()
        await _consume_until_stopped(bus, "dies", handler, stop)
        return seen

    seen = asyncio.run(run())
    assert set(seen) >= {e.id for e in first + later}
    for case in CASES:  # nothing newer overtook the dead process's events (cases go in parallel)
        ledger_order = [e.id for e in first + later if e.case_id == case]
        assert sorted({i for i in seen if i in ledger_order}, key=seen.index) == ledger_order


async def _drain_nothing(url: str, durable: str) -> list[str]:
    bus, stop = Bus(BusConfig(url=url), "test"), asyncio.Event()
    await bus.connect(stop)
    seen: list[str] = []

    async def handler(ev: Event, seq: int) -> None:
        seen.append(ev.id)

    task = asyncio.create_task(bus.consume(durable, handler, stop))
    await asyncio.sleep(2.5)  # two fetch timeouts: anything still pending would have come
    stop.set()
    await task
    await bus.close()
    return seen


def test_a_waiting_pull_hands_over_the_first_event_without_waiting_for_a_full_batch(nats):
    """A consumer idle on a long pull request (30 s, batch 100) gets a lone event at once, not when the
    request expires (nats.py's fetch would hold it until then)."""
    async def run():
        bus, stop = Bus(BusConfig(url=nats.url), "test"), asyncio.Event()
        await bus.connect(stop)
        await bus._durable_consumer("lone")
        puller = await Puller(bus.nc, bus.cfg.stream, "lone", bus.inbox).start()
        waiting = asyncio.create_task(puller.next_batch(100, wait=30))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # nothing yet: the request waits on the server
        ev = _events(1)[0]
        await _publish(bus, [ev])
        try:
            msgs = await asyncio.wait_for(waiting, timeout=10)
        finally:
            await puller.stop()
            await bus.close()
        return [Event.from_json(m.data).id for m in msgs], ev.id

    got, sent = asyncio.run(run())
    assert got == [sent]


def test_a_lingering_consumer_takes_a_lone_event_at_once_and_what_follows_in_one_batch(nats):
    """A read model's consumer lingers after a batch that was not full (Bus.consume's `linger`): the first
    event after a quiet spell is handed over at once, and the events published while it lingers come
    in one batch after it, not in one batch each."""
    linger = 5.0

    async def run():
        loop = asyncio.get_running_loop()
        bus, stop = Bus(BusConfig(url=nats.url), "test"), asyncio.Event()
        await bus.connect(stop)
        first, rest = _events(1)[0], _events(2)
        batches: list[tuple[list[str], float]] = []

        async def together(got: list[tuple[Event, int]]) -> None:
            batches.append(([ev.id for ev, _ in got], loop.time()))

        async def handler(ev: Event, seq: int) -> None:
            batches.append(([ev.id], loop.time()))

        task = asyncio.create_task(bus.consume("lingering", handler, stop, together=together, linger=linger))
        sent = loop.time()
        await _publish(bus, [first])
        assert await _until(lambda: batches)
        await _publish(bus, rest)  # while the consumer lingers
        assert await _until(lambda: sum(len(ids) for ids, _ in batches) == 1 + len(rest))
        stop.set()
        await task
        await bus.close()
        return batches, sent, [first.id], [ev.id for ev in rest]

    batches, sent, first, rest = asyncio.run(run())
    assert [ids for ids, _ in batches] == [first, rest]
    assert batches[0][1] - sent < linger  # the lone event did not wait for a linger


def test_a_case_history_comes_whole_or_not_at_all(nats, monkeypatch):
    """A node that comes to share a case late reads its history: all of it, in ledger order, across more
    than one fetch; when the server stops answering midway, history() raises (the event that asked for
    it is then redelivered) instead of returning what it had, which left the case out of the read model."""
    events = [Event(case_id="C-LONG", type="test.step", agency="510104-xfj", actor="t", payload={"n": i},
                    audience=[]) for i in range(300)]

    async def read(freeze_after: int | None = None):
        bus, stop = Bus(BusConfig(url=nats.url), "test"), asyncio.Event()
        await bus.connect(stop)
        seen = 0
        real = jetstream.published_by_claimant

        def checked(subject, ev):  # called for each event read; freezes the server after the first fetch
            nonlocal seen
            seen += 1
            if seen == freeze_after:
                nats.proc.send_signal(signal.SIGSTOP)
            return real(subject, ev)

        try:
            if freeze_after is None:
                await _publish(bus, events)
            else:
                monkeypatch.setattr(jetstream, "published_by_claimant", checked)
                monkeypatch.setattr(jetstream, "HISTORY_FETCH_S", 1.0)
            return [(ev.payload["n"], seq) for ev, seq in await bus.history("C-LONG")]
        finally:
            nats.proc.send_signal(signal.SIGCONT)
            await bus.close()

    whole = asyncio.run(read())
    assert [n for n, _ in whole] == list(range(300))
    assert [seq for _, seq in whole] == sorted(seq for _, seq in whole)
    with pytest.raises(TimeoutError, match="256 of 300 events arrived"):
        asyncio.run(read(freeze_after=256))  # the first fetch brings 256, then the server stops answering


def test_a_consumer_filtered_by_kind_and_agency_receives_only_those_events(nats):
    """What routing and legal referral rely on: the server sends a consumer only the events of the kinds
    (and publishing agency) it asked for; a case's history still has every event."""
    mine = Event(case_id="C-F", type="case.registered", agency="510104-xfj", actor="t", payload={}, audience=[])
    others = [Event(case_id="C-F", type="case.offered", agency="510104-xfj", actor="t", payload={}, audience=[]),
              Event(case_id="C-G", type="case.registered", agency="510104-fy", actor="t", payload={}, audience=[])]
    returned = Event(case_id="C-F", type="case.returned", agency="510104-rsj", actor="t", payload={}, audience=[])

    async def scenario():
        bus = Bus(BusConfig(url=nats.url), "test")
        await bus.connect(asyncio.Event())
        await _publish(bus, [mine, *others, returned])

        history = [e.id for e, _ in await bus.history("C-F")]
        subjects = envelope.events_filter(["case.registered"], "510104-xfj") + envelope.events_filter(["case.returned"])
        got, info = await _consume_filtered(bus, "filtered", subjects, until=returned.id)
        return got, history, info

    got, history, info = asyncio.run(scenario())
    assert got == [mine.id, returned.id]
    assert info.delivered.consumer_seq == 2 and info.num_pending == 0
    assert history == [mine.id, others[0].id, returned.id]


def test_history_reads_leave_no_consumer_behind(nats):
    """Each history read has a consumer of its own. Left to expire (10 s), a busy node's reads piled up
    against the stream's consumer limit — nats-server 2.15 allows 1,000 on a stream that sets none — and
    further reads were refused ('maximum consumers limit reached'). 1,100 reads in a row: all answered,
    none left, and the stream sets its own limit."""
    events = [Event(case_id=f"H{i}", type="case.registered", agency="510104-xfj", actor="t", payload={}, audience=[])
              for i in range(50)]

    async def scenario():
        bus = Bus(BusConfig(url=nats.url), "test")
        await bus.connect(asyncio.Event())
        bus.direct = False  # (reads by direct get take no consumer at all)
        await _publish(bus, events)
        counts = [len(await bus.history(f"H{i % 50}")) for i in range(1100)]
        info = await bus.js.stream_info(bus.cfg.stream)
        await bus.close()
        return counts, info

    counts, info = asyncio.run(scenario())
    assert counts == [1] * 1100
    assert info.state.consumer_count == 0
    assert info.config.max_consumers == jetstream.MAX_CONSUMERS


def test_a_consumer_whose_filters_changed_is_made_again_at_its_ack_floor(nats):
    """A new version of a service asks for other subjects under the same durable name: the consumer is
    made again with them, from where the old one had acknowledged — what it acknowledged does not come
    again, what it had not comes if it matches."""
    def ev(case, kind):
        return Event(case_id=case, type=f"case.{kind}", agency="510104-xfj", actor="t", payload={}, audience=[])
    done_before = [ev("U1", "registered"), ev("U1", "offered")]
    after = [ev("U2", "registered"), ev("U2", "offered"), ev("U3", "returned")]

    async def scenario():
        bus = Bus(BusConfig(url=nats.url), "test")
        await bus.connect(asyncio.Event())
        await _publish(bus, done_before)
        got_old, stop = [], asyncio.Event()

        async def old(e: Event, seq: int) -> None:
            got_old.append(e.id)
            if len(got_old) == len(done_before):
                stop.set()
        await _consume_until_stopped(bus, "upgraded", old, stop)  # the old version: the whole ledger

        bus = Bus(BusConfig(url=nats.url), "test")
        await bus.connect(asyncio.Event())
        await _publish(bus, after)
        subjects = envelope.events_filter(["case.registered", "case.returned"])
        got_new, info = await _consume_filtered(bus, "upgraded", subjects, until=after[2].id)
        return got_old, got_new, info

    got_old, got_new, info = asyncio.run(scenario())
    assert got_old == [e.id for e in done_before]
    assert got_new == [after[0].id, after[2].id]  # not U1's registration again, not an offer
    assert sorted(info.config.filter_subjects) == ["lf.ev.*.registered.*", "lf.ev.*.returned.*"]


def test_events_passed_over_are_acknowledged_without_the_handler(nats):
    """pass_over (a case this node does not share): acknowledged, never handed to the handler, never
    delivered again."""
    events = _events(4)  # 12: n = 0..3 for each of three cases

    async def scenario():
        bus, stop, handled = Bus(BusConfig(url=nats.url), "test"), asyncio.Event(), []
        await bus.connect(stop)
        await _publish(bus, events)

        async def handler(ev: Event, seq: int) -> None:
            handled.append(ev.id)
            if len(handled) == 6:
                stop.set()
        task = asyncio.create_task(bus.consume("passing", handler, stop,
                                               pass_over=lambda ev, seq: ev.payload["n"] % 2 == 0))
        await asyncio.wait_for(stop.wait(), timeout=20)
        await asyncio.sleep(0.5)
        stop.set()
        await task
        info = await _acks_settled(bus, "passing")
        await bus.close()
        return handled, info

    handled, info = asyncio.run(scenario())
    by_id = {e.id: e for e in events}
    for case in CASES:  # the odd ones, each case's in ledger order
        assert [by_id[i].payload["n"] for i in handled if by_id[i].case_id == case] == [1, 3]
    assert len(handled) == 6
    assert info.num_ack_pending == 0 and info.num_pending == 0 and info.num_redelivered == 0


async def _consume_together(url: str, durable: str, events: list[Event], together_fails: int,
                            pass_over=None, expected: int | None = None) -> tuple[list[list[str]], list[str], object]:
    """Consume with `together` (its first `together_fails` calls raise) until `expected` events were
    handled one way or the other; returns (the batches `together` took, the ids the handler took, the
    consumer's info once its acks are in)."""
    bus, stop = Bus(BusConfig(url=url), "test"), asyncio.Event()
    await bus.connect(stop)
    await _publish(bus, events)
    batches: list[list[str]] = []
    one_by_one: list[str] = []
    calls = 0

    def check_done():
        if sum(map(len, batches)) + len(one_by_one) >= (expected or len(events)):
            stop.set()

    async def together(got: list[tuple[Event, int]]) -> None:
        nonlocal calls
        calls += 1
        if calls <= together_fails:
            raise RuntimeError("database busy (test)")
        batches.append([ev.id for ev, _ in got])
        check_done()

    async def handler(ev: Event, seq: int) -> None:
        one_by_one.append(ev.id)
        check_done()

    task = asyncio.create_task(bus.consume(durable, handler, stop, pass_over=pass_over, together=together))
    try:
        await asyncio.wait_for(stop.wait(), timeout=20)
        await asyncio.sleep(0.5)  # anything delivered twice would come by now
    finally:
        stop.set()
        await task
    info = await _acks_settled(bus, durable)
    await bus.close()
    return batches, one_by_one, info


def test_a_batch_goes_together_and_one_by_one_when_together_fails(nats):
    """`together` takes a pulled batch at once, in ledger order; when it raises, the same events go to
    the handler one by one (each once), and the next batch goes together again."""
    first, later = _events(4), _events(2)
    order = [e.id for e in first + later]

    async def scenario():
        batches, one_by_one, info = await _consume_together(nats.url, "together-a", first, together_fails=1,
                                                           expected=len(first))
        # the consumer again (it resumes where it stopped): the next batch goes together
        more, none, info_after = await _consume_together(nats.url, "together-a", later, together_fails=0)
        return batches, one_by_one, info, more, none, info_after

    batches, one_by_one, info, more, none, info_after = asyncio.run(scenario())
    assert sorted(one_by_one) == sorted(e.id for e in first) and batches == []  # the failed batch, one by one
    for case in CASES:  # each case's events in ledger order
        assert [i for i in one_by_one if i in {e.id for e in first if e.case_id == case}] == \
            [e.id for e in first if e.case_id == case]
    assert none == [] and [i for b in more for i in b] == [e.id for e in later]
    assert all(b == sorted(b, key=order.index) for b in more)
    for i in (info, info_after):
        assert i.num_ack_pending == 0 and i.num_pending == 0 and i.num_redelivered == 0


def test_a_case_already_in_the_batch_is_not_passed_over(nats):
    """pass_over knows only what was handled before the batch: once an event of a case is taken for
    `together`, that case's later events of the batch are taken too (the first may make the case one this
    node shares); another case's events are still passed over."""
    x0, x1, y1 = (Event(case_id=c, type="test.step", agency="510104-xfj", actor="t", payload={"n": n}, audience=[])
                  for c, n in (("C-X", 0), ("C-X", 1), ("C-Y", 1)))
    batches, one_by_one, info = asyncio.run(_consume_together(
        nats.url, "together-b", [x0, x1, y1], together_fails=0, expected=2,
        pass_over=lambda ev, seq: ev.payload["n"] == 1))
    assert batches == [[x0.id, x1.id]] and one_by_one == []
    assert info.num_ack_pending == 0 and info.num_pending == 0  # y1 passed over: acknowledged


def test_history_is_read_by_direct_gets_and_by_a_consumer_when_they_cannot_serve(nats, monkeypatch):
    """The ledger allows direct gets: a history read takes no consumer (batched direct gets, more than one
    batch here). Should the replica that answered lag behind the event that asked (`through`), or the
    stream not allow direct gets, the history is read through a consumer instead — the same events."""
    events = [Event(case_id="C-D", type="test.step", agency="510104-xfj", actor="t", payload={"n": i}, audience=[])
              for i in range(jetstream.HISTORY_BATCH + 20)]
    by_consumer = []

    async def scenario():
        bus = Bus(BusConfig(url=nats.url), "test")
        await bus.connect(asyncio.Event())
        await _publish(bus, events)
        real = bus._history_by_consumer

        async def counted(case_id):
            by_consumer.append(case_id)
            return await real(case_id)

        monkeypatch.setattr(bus, "_history_by_consumer", counted)
        direct = await bus.history("C-D")
        last = direct[-1][1]
        current = await bus.history("C-D", through=last)
        lagging = await bus.history("C-D", through=last + 1)  # as a replica that has not stored `through` yet
        none = await bus.history("C-NONE")
        bus.direct = False  # (a stream made before direct gets were allowed)
        without = await bus.history("C-D")
        info = await bus.js.stream_info(bus.cfg.stream)
        await bus.close()
        return direct, current, lagging, none, without, info

    direct, current, lagging, none, without, info = asyncio.run(scenario())
    assert info.config.allow_direct
    assert [ev.payload["n"] for ev, _ in direct] == list(range(len(events)))
    assert direct == current == lagging == without
    assert none == []
    assert by_consumer == ["C-D", "C-D"]  # the lagging read and the one without direct gets


def test_a_lost_bus_connection_shows_in_health_and_in_the_log(nats, caplog):
    """`Bus.up` (/healthz's "bus") is whether the connection is up now, and losing and regaining it is
    logged — not only whether a first connection was ever made."""
    async def scenario() -> list[bool]:
        bus, stop = Bus(BusConfig(url=nats.url), "test-health"), asyncio.Event()
        await asyncio.wait_for(bus.connect(stop), 15)
        seen = [bus.up]
        nats.stop()
        seen.append(await _until(lambda: not bus.up))
        nats.start()
        seen.append(await _until(lambda: bus.up, timeout=30))
        await bus.close()
        return seen

    with caplog.at_level("WARNING", logger="shared.bus.jetstream"):
        assert asyncio.run(scenario()) == [True, True, True]
    messages = [r.getMessage() for r in caplog.records]
    lost = next(i for i, m in enumerate(messages) if m.startswith("bus connection lost; reconnecting (test-health)"))
    assert any(m.startswith("bus connection back (test-health") for m in messages[lost:]), messages
    assert sum("bus connection lost" in m for m in messages) == 1  # the final close is not a loss


async def _until(condition, timeout: float = 15) -> bool:
    for _ in range(int(timeout * 10)):
        if condition():
            return True
        await asyncio.sleep(0.1)
    return False
