"""Issue 10: one petition is one trace across processes and nodes.

Every service process exports its spans over OTLP/HTTP (the real exporter, OTEL_EXPORTER_OTLP_ENDPOINT)
to a receiver inside this test process, which keeps them in memory: the in-process span exporter the
trace is read from. The trace must hold the intake HTTP span at the receiving bureau, the bus hop
(intake's publish span and routing's consumer span, continued from the NATS headers), routing's gRPC call and the 人社局 node's
gRPC handler, all linked by parent ids into one tree."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.support import petition, wait_for

XFJ, RSJ = "510104-xfj", "510104-rsj"
NODES = [(XFJ, "锦江区信访局", "petition_bureau", "510104"), (RSJ, "锦江区人力资源和社会保障局", "hrss", "510104")]


class SpanReceiver:
    """An OTLP/HTTP trace receiver on loopback; spans land in `self.spans` as plain dicts."""

    def __init__(self):
        self.spans: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.receive(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def receive(self, request) -> None:
        for rs in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                with self.lock:
                    self.spans += [{"trace": s.trace_id.hex(), "id": s.span_id.hex(), "parent": s.parent_span_id.hex(),
                                    "name": s.name, "kind": s.kind, "service": attrs.get("service.name"),
                                    "agency": attrs.get("lianfang.agency")} for s in ss.spans]

    def trace(self, trace_id: str) -> list[dict]:
        with self.lock:
            return [s for s in self.spans if s["trace"] == trace_id]

    def close(self) -> None:
        self.server.shutdown()


SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP span kinds


def test_one_petition_is_one_trace_across_nodes(start_federation):
    receiver = SpanReceiver()
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        fed = start_federation(NODES, env=env, services=("intake", "routing"))
        st, r = fed.client(XFJ).post("/api/v1/petitions", petition(3101))
        assert st == 201, r
        wait_for(lambda: (v := fed.client(RSJ, "handler").get(f"/api/v1/cases/{r['case_id']}")[1]) and
                 v.get("holder") == RSJ, what="signed for by the 人社局")

        def submit_span():
            return next((s for s in receiver.spans if s["name"] == "HTTP POST /api/v1/petitions"
                         and s["agency"] == XFJ), None)
        root = wait_for(submit_span, what="the intake HTTP span")

        def whole_trace():
            spans = receiver.trace(root["trace"])
            names = {(s["name"], s["agency"]) for s in spans}
            wanted = {("AssignmentService/Offer", RSJ), ("AssignmentService/Offer call", XFJ),
                      ("publish case.registered", XFJ), ("consume case.registered", XFJ)}
            return spans if wanted <= names else None
        spans = wait_for(whole_trace, what="routing's call and the 人社局's gRPC handler in the same trace")

        by_id = {s["id"]: s for s in spans}
        assert root["parent"] == "" or root["parent"] not in by_id  # the trace starts at the desk's request
        hop = next(s for s in spans if s["kind"] == CONSUMER and s["service"] == "lianfang-routing"
                   and s["agency"] == XFJ and s["name"] == "consume case.registered")
        # the bus hop: intake's outbox relay publishes (producer), routing consumes from the message headers
        publish = by_id[hop["parent"]]
        assert (publish["name"], publish["kind"], publish["service"], publish["agency"]) == \
               ("publish case.registered", PRODUCER, "lianfang-intake", XFJ)
        call = next(s for s in spans if s["name"] == "AssignmentService/Offer call" and s["agency"] == XFJ)
        assert by_id[call["parent"]]["id"] == hop["id"]  # the 交办 continues routing's consume span
        handler = next(s for s in spans if s["name"] == "AssignmentService/Offer" and s["agency"] == RSJ)
        assert (call["kind"], handler["kind"]) == (CLIENT, SERVER)
        assert handler["service"] == "lianfang-routing" and handler["parent"] == call["id"]

        def ancestors(span):
            chain = [span]
            while chain[-1]["parent"] in by_id:
                chain.append(by_id[chain[-1]["parent"]])
            return chain
        # every span of the journey hangs off the desk's HTTP request: one tree, not fragments
        for span in (publish, hop, call, handler):
            assert ancestors(span)[-1]["id"] == root["id"], (span["name"], [s["name"] for s in ancestors(span)])
        assert {(s["service"], s["agency"]) for s in spans} >= {("lianfang-intake", XFJ), ("lianfang-routing", XFJ),
                                                                 ("lianfang-routing", RSJ)}
    finally:
        receiver.close()
