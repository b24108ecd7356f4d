"""Issue 4: an authenticated bus and mutual-TLS gRPC — a node speaks only as itself.

Real node processes, a real nats-server with TLS and per-node users, real gRPC servers on loopback."""
from __future__ import annotations

import asyncio
import signal
import sqlite3
import ssl

import grpc
import nats as nats_client
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared import federation, rpc
from shared.bus.envelope import Event
from shared.bus import nats_fixes
from shared.bus.jetstream import Bus, client_tls, inbox_prefix
from shared.certs import DevCA
from shared.config import BusConfig
from shared.pb import assignment_pb2, assignment_pb2_grpc, case_pb2, case_pb2_grpc
from tests.support import petition, wait_for

BUREAU, HRSS, CIVIL = "510104-xfj", "510104-rsj", "510104-mzj"
NODES = [n for n in federation.DEMO_NODES if n[0] in (BUREAU, HRSS, CIVIL)]
STREAM = BusConfig().stream


def holder(fed, agency, case_id):
    st, body = fed.client(agency, "handler").get(f"/api/v1/cases/{case_id}")
    return body["holder"] if st == 200 else None


def get_case(channel, case_id: str, agency: str, user="handler-1", role="handler"):
    return case_pb2_grpc.CaseServiceStub(channel).GetCase(case_pb2.GetCaseRequest(case_id=case_id), timeout=5,
                                                          metadata=rpc.call_metadata(agency, user, role))


def refused(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code()


def test_grpc_caller_is_the_certificate(start_federation, tmp_path):
    fed = start_federation(NODES)
    # The whole flow runs over mutual TLS and the authenticated bus: 劳动社保 at the bureau → 人社局 signs.
    st, r = fed.client(BUREAU).post("/api/v1/petitions", petition(700, category="劳动社保"))
    assert st == 201, r
    case_id = r["case_id"]
    wait_for(lambda: holder(fed, HRSS, case_id) == HRSS, timeout=90, what="signed for by 人社局")
    intake = fed.fed.node(BUREAU).grpc["intake"]

    # The holder, with its own certificate, gets the identity on its user's behalf.
    with fed.grpc_channel(intake, HRSS) as ch:
        assert get_case(ch, case_id, HRSS).identity_disclosed
    # 民政局 does not share the case; its certificate claiming to be the holder (to get the identity): refused.
    with fed.grpc_channel(intake, CIVIL) as ch:
        assert refused(lambda: get_case(ch, case_id, HRSS)) == grpc.StatusCode.PERMISSION_DENIED
        assert refused(lambda: get_case(ch, case_id, CIVIL)) == grpc.StatusCode.NOT_FOUND

    # 交办 on behalf of another agency: 民政局's certificate offering a case as the bureau.
    offer = assignment_pb2.OfferRequest(case_id="LF-FORGED-1", from_agency=BUREAU, attempt=1, category="劳动社保",
                                        division="510104", title="伪造的交办", audience=[BUREAU, HRSS],
                                        rule="forged", reason="forged")
    routing = fed.fed.node(HRSS).grpc["routing"]
    with fed.grpc_channel(routing, CIVIL) as ch:
        stub = assignment_pb2_grpc.AssignmentServiceStub(ch)
        for claimed in (CIVIL, BUREAU):  # honest metadata, or metadata agreeing with the forged request
            code = refused(lambda: stub.Offer(offer, timeout=5, metadata=rpc.call_metadata(claimed, "clerk", "clerk")))
            assert code == grpc.StatusCode.PERMISSION_DENIED, claimed
    with sqlite3.connect(fed.fed.root / HRSS / "routing.db") as db:
        assert db.execute("SELECT count(*) FROM offers_in WHERE case_id = 'LF-FORGED-1'").fetchone()[0] == 0

    # No client certificate, or one the federation CA did not issue: the handshake itself fails.
    ca_only = grpc.ssl_channel_credentials(root_certificates=fed.fed.node(HRSS).tls.ca.read_bytes())
    for channel in (grpc.insecure_channel(intake), grpc.secure_channel(intake, ca_only)):
        with channel as ch:
            assert refused(lambda: get_case(ch, case_id, HRSS)) == grpc.StatusCode.UNAVAILABLE
            health = health_pb2_grpc.HealthStub(ch)
            assert refused(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5)) == \
                grpc.StatusCode.UNAVAILABLE
    rogue = DevCA.load_or_create(tmp_path / "rogue-ca").issue_node(HRSS)  # same agency name, foreign CA
    forged = grpc.ssl_channel_credentials(root_certificates=fed.fed.node(HRSS).tls.ca.read_bytes(),
                                          private_key=rogue.key.read_bytes(), certificate_chain=rogue.cert.read_bytes())
    with grpc.secure_channel(intake, forged) as ch:
        assert refused(lambda: get_case(ch, case_id, HRSS)) == grpc.StatusCode.UNAVAILABLE
    # A certificate of the federation CA that names no agency (the NATS server's) cannot call either.
    server_cert = fed.fed.nats_tls
    no_agency = grpc.ssl_channel_credentials(root_certificates=server_cert.ca.read_bytes(),
                                             private_key=server_cert.key.read_bytes(),
                                             certificate_chain=server_cert.cert.read_bytes())
    with grpc.secure_channel(intake, no_agency) as ch:
        assert refused(lambda: get_case(ch, case_id, HRSS)) == grpc.StatusCode.UNAUTHENTICATED


async def _connect(fed: federation.Federation, agency: str, password: str | None = None, client_cert: bool = True,
                   errors: list | None = None):
    node = fed.node(agency)

    async def on_error(e):
        if errors is not None:
            errors.append(str(e))

    tls = client_tls(node.tls) if client_cert else ssl.create_default_context(cafile=str(node.tls.ca))
    return await nats_client.connect(fed.nats_url, user=agency, password=password or node.bus_password, tls=tls,
                                     inbox_prefix=inbox_prefix(agency), error_cb=on_error, allow_reconnect=False,
                                     connect_timeout=3)


async def wait_async(condition, timeout: float = 15) -> None:
    for _ in range(int(timeout * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


def test_bus_user_publishes_only_as_itself(nats, tmp_path):
    fed = federation.build(tmp_path / "fed", nats.url, NODES)
    nats.secure(fed)
    assert fed.nats_url.startswith("tls://")

    async def scenario():
        errors: list[str] = []
        civil = await _connect(fed, CIVIL, errors=errors)
        js = civil.jetstream(timeout=2)
        # the nodes' own client creates the ledger stream
        bus = Bus(BusConfig(url=fed.nats_url, user=CIVIL, password=fed.node(CIVIL).bus_password), "test",
                  tls=fed.node(CIVIL).tls)
        await asyncio.wait_for(bus.connect(asyncio.Event()), 15)

        own = Event(case_id="LFSEC1", type="case.note", agency=CIVIL, actor="t", payload={}, audience=[CIVIL])
        ack = await js.publish(own.subject, own.to_json().encode(), headers={"Nats-Msg-Id": own.id})
        assert ack.stream == STREAM

        # 民政局 claiming an event of 人社局: the server refuses the publish; nothing reaches the ledger.
        forged = Event(case_id="X", type="case.signed_for", agency=HRSS, actor="t", payload={}, audience=[HRSS])
        assert forged.subject == f"lf.ev.{HRSS}.signed_for.X"
        with pytest.raises(nats_client.errors.TimeoutError):
            await js.publish(forged.subject, forged.to_json().encode(), timeout=2)
        refusals = [e.lower() for e in errors]  # (nats.py lower-cases the server's -ERR)
        assert any("permissions violation for publish" in e and forged.subject.lower() in e for e in refusals), errors
        with pytest.raises(nats_client.js.errors.NotFoundError):
            await js.get_last_msg(STREAM, forged.subject)
        info = await js.stream_info(STREAM)
        assert info.state.messages == 1

        # On its own subject, an envelope claiming 人社局 is accepted by the server but never applied: every
        # consumer checks the envelope against the subject it was published on.
        disguised = Event(case_id="LFSEC1", type="case.signed_for", agency=HRSS, actor="t", payload={},
                          audience=[CIVIL])
        await js.publish(own.subject, disguised.to_json().encode(), headers={"Nats-Msg-Id": disguised.id})
        # Nor is an envelope of another kind than its subject says (consumers that react to a few kinds
        # have the server filter on the subject's kind)
        mislabelled = Event(case_id="LFSEC1", type="case.signed_for", agency=CIVIL, actor="t", payload={},
                            audience=[CIVIL])
        await js.publish(own.subject, mislabelled.to_json().encode(), headers={"Nats-Msg-Id": mislabelled.id})
        seen: list[str] = []

        async def collect(event, _seq):
            seen.append(event.id)
        stop = asyncio.Event()
        consumer = asyncio.create_task(bus.consume("sec-test", collect, stop))
        await wait_async(lambda: own.id in seen)
        await asyncio.sleep(1.5)  # the messages were fetched in one batch; give a redelivery time to show
        stop.set()
        await consumer
        assert seen == [own.id]
        assert [e.id for e, _ in await bus.history("LFSEC1")] == [own.id]
        info = await js.stream_info(STREAM)
        assert info.state.messages == 3

        # Nor may it rewrite the ledger, or read other nodes' deliveries off the wire.
        for attempt in (js.purge_stream(STREAM), js.delete_stream(STREAM)):
            with pytest.raises(nats_client.errors.TimeoutError):
                await attempt
        for subject in ("lf.ev.>", f"{inbox_prefix(HRSS)}.>"):
            await civil.subscribe(subject)
        await civil.flush()
        await asyncio.sleep(0.2)
        violations = [e.lower() for e in errors if "permissions violation for subscription" in e.lower()]
        assert any(f'"{inbox_prefix(HRSS)}.>"'.lower() in e for e in violations), errors
        assert any('"lf.ev.>"' in e for e in violations), errors
        assert (await js.stream_info(STREAM)).state.messages == 3
        await bus.close()
        await civil.close()

        # Another node's password, no password, or no client certificate: not even connected.
        for kwargs in ({"password": fed.node(HRSS).bus_password}, {"password": "wrong"}, {"client_cert": False}):
            with pytest.raises(Exception):
                nc = await _connect(fed, CIVIL, **kwargs)
                await nc.close()
        with pytest.raises(Exception):
            nc = await nats_client.connect(fed.nats_url, tls=client_tls(fed.node(CIVIL).tls), allow_reconnect=False,
                                           connect_timeout=3)
            await nc.close()

    asyncio.run(scenario())


def test_closing_the_bus_connection_to_a_frozen_server_is_bounded(nats, tmp_path):
    """Over TLS nats-py's close waits for the server's answer; a server that is gone or frozen may never
    give one, and a service then neither closed nor reconnected (stuck for minutes in test_faults).
    nats_fixes.CLOSE_S bounds it: the socket is dropped and the service goes on."""
    fed = federation.build(tmp_path / "fed", nats.url, NODES)
    nats.secure(fed)

    async def scenario() -> float:
        bus = Bus(BusConfig(url=fed.nats_url, user=CIVIL, password=fed.node(CIVIL).bus_password), "test",
                  tls=fed.node(CIVIL).tls)
        await asyncio.wait_for(bus.connect(asyncio.Event()), 15)
        nats.proc.send_signal(signal.SIGSTOP)  # the server stops answering, the connection stays up
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.wait_for(bus.nc.close(), 20)  # unbounded, TLS's own shutdown timeout is 30 s
            return loop.time() - started
        finally:
            nats.proc.send_signal(signal.SIGCONT)

    took = asyncio.run(scenario())
    assert took < nats_fixes.CLOSE_S + 5, took
