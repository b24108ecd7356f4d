"""Fixtures with real parts only: a nats-server with JetStream, PostgreSQL, node processes on loopback."""
from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import grpc
import pytest

from shared import federation, rpc
from shared.config import SERVICE_NAMES
from shared.launcher import FederationProcesses, NatsServer
from tests.support import Http, PostgresServer, pg_database_url

REPO = Path(__file__).resolve().parent.parent
_counter = itertools.count()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that fails while service processes run reports where each of them waits (the processes'
    logs are gone once CI is over; this is how a stall is told from a slow machine)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for procs in list(FederationProcesses.running):
            report.sections.append(("service stacks (kill -USR1)", procs.stacks()))


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    server = PostgresServer(Path("/tmp") / f"lianfang-pg-{tmp_path_factory.getbasetemp().name}").start()
    yield server
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def nats(tmp_path):
    """A JetStream server, open until a federation secures it (start_federation does)."""
    server = NatsServer(tmp_path).start()
    yield server
    server.stop()


class RunningFederation:
    def __init__(self, fed: federation.Federation, procs: FederationProcesses, nats: NatsServer):
        self.fed, self.procs, self.nats = fed, procs, nats

    def client(self, agency: str, role: str = "clerk", service: str = "intake") -> Http:
        n = self.fed.node(agency)
        return Http(n.url(service), n.tokens[role])

    def node(self, agency: str):
        return self.procs.nodes[agency]

    def grpc_channel(self, addr: str, as_agency: str) -> grpc.Channel:
        """A (sync) channel to addr presenting `as_agency`'s node certificate (mutual TLS)."""
        return grpc.secure_channel(addr, rpc.client_credentials(self.fed.node(as_agency).tls))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def start_federation(tmp_path, nats, request):
    """start_federation(nodes=DEMO_NODES, backend="sqlite", manual_sign=set(), rules=None, env=None,
    services=all): env is extra environment for every service process."""
    started: list[FederationProcesses] = []

    def start(nodes=federation.DEMO_NODES, backend="sqlite", manual_sign=frozenset(), rules=None, env=None,
              services=SERVICE_NAMES):
        db = None
        if backend == "postgresql":
            db = pg_database_url(request.getfixturevalue("pg"), f"t{next(_counter)}_{tmp_path.name[-6:]}".lower())
        fed = federation.build(tmp_path / "fed", nats.url, nodes, database_url=db, rules=rules,
                               auto_sign_for=True, manual_sign=set(manual_sign))
        nats.secure(fed)  # TLS + one NATS user per node from here on (restarts the server)
        procs = FederationProcesses(fed, tmp_path / "logs", env=env, services=services)
        started.append(procs)  # before start(): a node that never gets ready is still stopped
        procs.start(timeout=240)  # 5 processes a node: slow to boot on a loaded 2-core CI machine
        return RunningFederation(fed, procs, nats)

    yield start
    for p in started:
        p.stop()
