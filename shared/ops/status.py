"""`lianfang status`: is each service of the node up, and how far behind are its ledger consumers
(节点与总线状态). Reads only: HTTP /healthz of each service, the LF_LEDGER stream's info and the info
of the node's durable consumers, over the node's own bus connection."""
from __future__ import annotations

import asyncio
import json

from shared.config import NodeConfig
from shared.ops.common import OpsError, healthz, node_bus


def _seq(info) -> int | None:
    return getattr(info, "stream_seq", None) if info is not None else None


async def _bus_state(cfg: NodeConfig, all_consumers: bool) -> dict:
    async with node_bus(cfg, "status") as bus:
        info = await bus.js.stream_info(cfg.bus.stream)
        st = info.state
        stream = {"name": cfg.bus.stream, "messages": st.messages, "bytes": st.bytes, "first_seq": st.first_seq,
                  "last_seq": st.last_seq, "consumers": st.consumer_count}
        consumers = []
        for c in await bus.js.consumers_info(cfg.bus.stream):
            if not c.config.durable_name:
                continue  # ephemeral: a history read or another command, not a service's consumer
            if not all_consumers and cfg.agency not in c.name:
                continue
            consumers.append({"name": c.name, "num_pending": c.num_pending or 0,
                              "num_ack_pending": c.num_ack_pending or 0, "num_redelivered": c.num_redelivered or 0,
                              "delivered_seq": _seq(c.delivered), "ack_floor_seq": _seq(c.ack_floor),
                              "subjects": c.config.filter_subjects or [c.config.filter_subject],
                              "lag": (c.num_pending or 0) + (c.num_ack_pending or 0)})
        return {"reachable": True, "url": cfg.bus.url, "stream": stream,
                "consumers": sorted(consumers, key=lambda c: c["name"])}


def collect(cfg: NodeConfig, all_consumers: bool = False) -> dict:
    services = [{"service": svc, "http": sc.http, **healthz(sc.http)} for svc, sc in cfg.services.items()]
    try:
        bus = asyncio.run(_bus_state(cfg, all_consumers))
    except OpsError as e:
        bus = {"reachable": False, "url": cfg.bus.url, "error": str(e), "stream": None, "consumers": []}
    except Exception as e:  # the stream is missing, permission denied...
        bus = {"reachable": False, "url": cfg.bus.url, "error": f"{type(e).__name__}: {e}", "stream": None,
               "consumers": []}
    ok = bus["reachable"] and all(s["up"] for s in services)
    return {"agency": cfg.agency, "name": cfg.name, "ok": ok, "services": services, "bus": bus}


def _table(rows: list[list[str]]) -> list[str]:
    def width(s: str) -> int:  # CJK characters take two columns
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)
    cols = [max(width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c + " " * (w - width(c)) for c, w in zip(r, cols)).rstrip() for r in rows]


def render_text(report: dict) -> str:
    out = [f"节点 node {report['agency']} {report['name']} — {'正常 OK' if report['ok'] else '异常 DEGRADED'}", "",
           "服务 services:"]
    rows = [["服务 service", "HTTP", "状态 state", "总线 bus", "详情 detail"]]
    for s in report["services"]:
        bus = "-" if s["bus"] is None else ("已连接 connected" if s["bus"] else "未连接 not connected")
        rows.append([s["service"], s["http"], "运行 up" if s["up"] else "停止 DOWN", bus, s["detail"]])
    out += ["  " + line for line in _table(rows)]
    b = report["bus"]
    out += ["", f"总线 bus {b['url']}:"]
    if not b["reachable"]:
        out.append(f"  不可达 UNREACHABLE: {b['error']}")
        return "\n".join(out)
    st = b["stream"]
    out.append(f"  账本流 stream {st['name']}: {st['messages']} 条消息 messages, {st['bytes']} 字节 bytes, "
               f"最后序号 last seq {st['last_seq']}, {st['consumers']} 个消费者 consumers")
    out += ["", "消费者积压 consumer lag:"]
    if not b["consumers"]:
        out.append("  （无 none）")
        return "\n".join(out)
    rows = [["消费者 consumer", "待投递 pending", "待确认 ack pending", "已投递 delivered", "已确认 ack floor", "积压 lag"]]
    for c in b["consumers"]:
        rows.append([c["name"], str(c["num_pending"]), str(c["num_ack_pending"]), str(c["delivered_seq"]),
                     str(c["ack_floor_seq"]), str(c["lag"])])
    out += ["  " + line for line in _table(rows)]
    return "\n".join(out)


def render_json(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2)
