"""`make run`: the demo federation in the foreground (DESIGN §4.1). Ctrl-C or SIGTERM stops it cleanly."""
from __future__ import annotations

import json
import shutil
import signal
import threading
from pathlib import Path

from shared import federation
from shared.launcher import REPO, FederationProcesses, NatsServer, endpoints


def main() -> None:
    root = REPO / "var" / "demo"
    shutil.rmtree(root, ignore_errors=True)  # each demo starts from an empty ledger
    root.mkdir(parents=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("联访 Lianfang 演示联盟启动中 / starting the demo federation …", flush=True)
    nats = NatsServer(root)
    fed = federation.build(root, nats.url, auto_sign_for=True)  # dev CA and node certificates in root/tls
    nats.secure(fed).start()  # TLS with client certificates; one user per node, publishing only as itself
    procs = FederationProcesses(fed, root / "logs")
    try:
        for i, (agency, node) in enumerate(procs.nodes.items(), 1):
            node.start()
            print(f"  [{i}/{len(procs.nodes)}] {node.spec.name} ({agency}) starting", flush=True)
        for node in procs.nodes.values():
            node.wait_ready()
        (root / "endpoints.json").write_text(json.dumps(endpoints(fed), ensure_ascii=False, indent=2))
        _banner(fed, root)
        stop.wait()
    finally:
        print("\n正在停止 / stopping …", flush=True)
        procs.stop()
        nats.stop()
        print("已停止 / stopped.", flush=True)


def _banner(fed: federation.Federation, root: Path) -> None:
    bureau = fed.nodes[0]
    print("\n联访 Lianfang 演示联盟已就绪 / demo federation ready")
    print(f"  JetStream: {fed.nats_url}   (TLS, one user per node; dev CA {root / 'tls' / 'ca.crt'})")
    for n in fed.nodes:
        print(f"  {n.name:<16} {n.agency:<12} intake {n.url('intake')}/docs   routing {n.url('routing')}/docs")
    print(f"\n  网页 pages (登记台、待办、案件、联合接访、督办看板、查询): {bureau.url()}/ui  "
          f"— 以令牌登录 sign in with a demo token, e.g. clerk {bureau.tokens['clerk']}")
    print(f"\n  端点与演示令牌 endpoints and demo tokens: {root / 'endpoints.json'}")
    print(f"  登记示例 try:  curl -s -X POST {bureau.url()}/api/v1/petitions \\\n"
          f"    -H 'Authorization: Bearer {bureau.tokens['clerk']}' -H 'Content-Type: application/json' \\\n"
          "    -d '{\"channel\":\"visit\",\"division\":\"510104\",\"title\":\"拖欠工资\","
          "\"content\":\"某公司拖欠三个月工资\",\"petitioner\":{\"name\":\"张三\"}}'")
    print("  按 Ctrl-C 停止 / press Ctrl-C to stop", flush=True)


if __name__ == "__main__":
    main()
