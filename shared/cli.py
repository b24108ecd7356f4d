"""`lianfang` — the operator's command (运维命令).

    lianfang audit verify --config NODE.toml [--service intake|routing|all]   校验审计日志哈希链
    lianfang audit show   --config NODE.toml [--service ...] [--limit N]      查看审计日志（只读）
    lianfang keygen                                                           生成新的 base64 密钥
    lianfang token  --config NODE.toml --name NAME --role ROLE                签发新的访问令牌
    lianfang migrate --config NODE.toml                                       数据库迁移到最新版本
    lianfang demo                                                             启动演示联盟 (= make run)
    lianfang node init --agency ID --name 名称 --type TYPE --division CODE --out NODE.toml   新节点配置
    lianfang certs  --out DIR [--agency ID ...]                               开发用 CA 与节点证书
    lianfang status --config NODE.toml [--json]                               服务、账本流与消费者积压
    lianfang replay --config NODE.toml [--service intake]                     从账本重建读模型（服务须停止）
    lianfang export --config NODE.toml --case CASE_ID --out DIR               导出一案一卷 (HTML)

Also runnable as `python -m shared.cli ...`. `audit verify` exits 1 when any chain has a problem, 2 on a
usage or configuration error; without --config it checks every node of the demo federation
(var/demo/nodes/*.toml) or the file named by $LIANFANG_CONFIG."""
from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO_NODES_DIR = REPO / "var" / "demo" / "nodes"
ROLES = ("clerk", "handler", "supervisor", "leader", "auditor", "admin")


class CliError(Exception):
    """A usage or configuration problem: printed without a traceback, exit code 2."""


def _say(msg: str = "", *, err: bool = False) -> None:
    print(msg, file=sys.stderr if err else sys.stdout, flush=True)


# ---------------------------------------------------------------------------------------------- helpers

def _config_paths(given: list[str] | None) -> list[Path]:
    if given:
        return [Path(p) for p in given]
    if env := os.environ.get("LIANFANG_CONFIG"):
        return [Path(p) for p in env.split(os.pathsep) if p]
    found = sorted(DEMO_NODES_DIR.glob("*.toml"))
    if not found:
        raise CliError("缺少 --config：请指定节点配置文件 (no --config given and no demo federation under "
                       f"{DEMO_NODES_DIR}; pass --config NODE.toml or set LIANFANG_CONFIG)")
    return found


def _load(path: Path):
    from shared.config import load_node
    if not path.is_file():
        raise CliError(f"配置文件不存在 config file not found: {path}")
    try:
        return load_node(path)
    except SystemExit as e:  # load_node reports bad TOML and invalid settings this way
        raise CliError(str(e)) from None


def _services(cfg, which: str) -> list[str]:
    names = list(cfg.services) if which == "all" else [which]
    missing = [n for n in names if n not in cfg.services]
    if missing:
        raise CliError(f"节点 {cfg.agency} 未配置服务 node runs no service {', '.join(missing)}")
    return names


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


def _readonly_engine(url: str):
    """An engine that cannot write: SQLite opened with mode=ro (never creates a missing file),
    PostgreSQL sessions set to read only."""
    import sqlalchemy as sa
    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        if not u.database or u.database == ":memory:":
            raise CliError(f"不支持内存数据库 in-memory database has no audit trail: {url}")
        path = Path(u.database)
        if not path.is_file():
            raise CliError(f"数据库文件不存在 database file not found: {path} (has the service run? "
                           "try `lianfang migrate`)")
        return sa.create_engine("sqlite://", poolclass=sa.pool.NullPool,
                                creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30))
    if u.get_backend_name() == "postgresql":
        return sa.create_engine(url, poolclass=sa.pool.NullPool, execution_options={"postgresql_readonly": True})
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def _with_audit(url: str, work):
    import sqlalchemy as sa
    from sqlalchemy.orm import Session
    engine = _readonly_engine(url)
    try:
        with Session(engine) as s:
            if "audit_log" not in sa.inspect(s.connection()).get_table_names():
                raise CliError(f"数据库中没有审计表 no audit_log table in {_safe_url(url)} (run `lianfang migrate`)")
            return work(s)
    except sa.exc.OperationalError as e:
        raise CliError(f"无法读取数据库 cannot read {_safe_url(url)}: {e.orig}") from None
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------- commands

def cmd_audit_verify(args) -> int:
    from sqlalchemy import func, select

    from shared.db.plumbing import AuditRow, verify_audit
    bad = 0
    for path in _config_paths(args.config):
        cfg = _load(path)
        for svc in _services(cfg, args.service):
            label = f"{cfg.agency}/{svc}"
            _say(f"校验 verifying {label} ({_safe_url(cfg.services[svc].database)}) …")
            count, problems = _with_audit(cfg.services[svc].database,
                                          lambda s: (s.scalar(select(func.count()).select_from(AuditRow)),
                                                     verify_audit(s)))
            if problems:
                bad += len(problems)
                _say(f"  {label}: 审计链已被破坏 CHAIN BROKEN — {len(problems)} problem(s) in {count} entries")
                for p in problems:
                    _say(f"  {label}: {p}")
            else:
                _say(f"  {label}: OK — {count} entries, chain intact (审计链完整)")
    if bad:
        _say(f"审计校验失败 audit verification FAILED: {bad} problem(s)", err=True)
        return 1
    _say("审计校验通过 audit verification OK")
    return 0


def cmd_audit_show(args) -> int:
    from sqlalchemy import select

    from shared.db.plumbing import AuditRow
    for path in _config_paths(args.config):
        cfg = _load(path)
        for svc in _services(cfg, args.service):
            def rows(s):
                q = select(AuditRow).order_by(AuditRow.seq.desc()).limit(args.limit)
                return list(reversed(s.scalars(q).all()))
            entries = _with_audit(cfg.services[svc].database, rows)
            _say(f"== {cfg.agency}/{svc}: 最近 {len(entries)} 条 last {len(entries)} entries ==")
            for r in entries:
                at = r.at.isoformat(timespec="seconds") if r.at else "?"
                detail = f"  {r.detail}" if r.detail else ""
                _say(f"#{r.seq:<6} {at}  {r.agency}  {r.actor}  {r.action}  {r.object_id}{detail}  [{r.hash[:12]}]")
    return 0


def cmd_keygen(_args) -> int:
    from shared.crypto import new_key
    _say(new_key())
    return 0


def _toml_str(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cmd_token(args) -> int:
    from shared.crypto import token_hash
    cfg = _load(Path(args.config))
    if any(u.name == args.name for u in cfg.users):
        _say(f"注意 note: {args.config} already has a user named {args.name!r}; replace its [[users]] block",
             err=True)
    token = f"lf_{cfg.agency}_{args.role}_{secrets.token_urlsafe(24)}"
    _say("# 新令牌（仅显示一次，请妥善交给用户）new bearer token — shown once, hand it to the user:")
    _say(token)
    _say()
    _say(f"# 粘贴到节点配置 {args.config}，然后重启该节点的服务 / paste into the node config and restart its services:")
    _say("[[users]]")
    _say(f"name = {_toml_str(args.name)}")
    _say(f"role = {_toml_str(args.role)}")
    _say(f"token_sha256 = {_toml_str(token_hash(token))}")
    return 0


def cmd_migrate(args) -> int:
    from shared.db.migrations import upgrade_head
    cfg = _load(Path(args.config))
    names = [n for n in cfg.services if (REPO / "services" / n / "migrations").is_dir()]
    skipped = [n for n in cfg.services if n not in names]
    for i, svc in enumerate(names, 1):
        url = cfg.services[svc].database
        _say(f"[{i}/{len(names)}] 迁移 migrating {cfg.agency}/{svc} ({_safe_url(url)}) → head …")
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        upgrade_head(REPO / "services" / svc, url)
        _say(f"[{i}/{len(names)}] {svc}: 完成 done")
    for svc in skipped:
        _say(f"跳过 skipped {svc}: this checkout has no services/{svc}/migrations")
    _say("迁移完成 migrations done")
    return 0


def cmd_node_init(args) -> int:
    from shared.ops import node_init
    spec = node_init.NodeInit(agency=args.agency, name=args.name, type=args.type, division=args.division,
                              out=Path(args.out), directory=Path(args.directory),
                              data_dir=Path(args.data_dir) if args.data_dir else None, bus_url=args.bus_url,
                              pseudonym_key=args.pseudonym_key, tls_dir=Path(args.tls_dir) if args.tls_dir else None,
                              host=args.host, http_port=args.http_port, grpc_port=args.grpc_port,
                              auto_sign_for=args.auto_sign_for)
    try:
        cfg = node_init.write(spec)
    except node_init.InitError as e:
        raise CliError(str(e)) from None
    _say(f"已写入 wrote {args.out} (mode 0600): {cfg.agency} {cfg.name}, {cfg.type}, {cfg.division} {cfg.level}, "
         f"services {', '.join(cfg.services)}")
    if not args.pseudonym_key:
        _say("注意 note: a NEW pseudonym_key was generated — every node of one federation must share the same one; "
             "pass --pseudonym-key for the second and later nodes", err=True)
    _say(f"下一步 next: give the NATS server user {cfg.agency} the bus password from the file; add users with "
         f"`lianfang token --config {args.out}`; add the node to the directory {cfg.directory}; "
         f"then `lianfang migrate --config {args.out}`")
    return 0


def cmd_node_start(args) -> int:
    from shared.ops import node_start
    cfg = _load(Path(args.config))
    return node_start.run(Path(args.config), _services(cfg, args.service), _say)


def cmd_certs(args) -> int:
    from shared import certs
    argv = ["--out", args.out, *sum((["--agency", a] for a in args.agency), []),
            *sum((["--host", h] for h in args.host), [])]
    certs.main(argv)
    return 0


def cmd_status(args) -> int:
    from shared.ops import status
    report = status.collect(_load(Path(args.config)), all_consumers=args.all_consumers)
    _say(status.render_json(report) if args.json else status.render_text(report))
    return 0 if report["ok"] else 1


def _ops(work):
    from shared.ops.common import OpsError
    try:
        return work()
    except OpsError as e:
        raise CliError(str(e)) from None


def cmd_replay(args) -> int:
    import asyncio

    from shared.ops import replay
    cfg = _load(Path(args.config))
    _say(f"重放 replaying {cfg.bus.stream} into {cfg.agency}/{args.service} "
         f"({_safe_url(cfg.services[args.service].database) if args.service in cfg.services else '?'}) …")

    def progress(done: int, total: int) -> None:
        _say(f"  已重放 replayed {done} / {total} events")
    result = _ops(lambda: asyncio.run(replay.replay(cfg, args.service, every=args.every, progress=progress)))
    _say(f"重放完成 replay done: {result.events} events (up to seq {result.last_seq}), "
         f"{result.cases} cases in the read model")
    return 0


def cmd_export(args) -> int:
    from shared.ops import export
    cfg = _load(Path(args.config))
    manifest = _ops(lambda: export.export_case(cfg, args.case, Path(args.out), args.format))
    _say(f"已导出 exported {args.case}: {manifest['events']} events, {manifest['documents']} 意见书 documents → "
         f"{Path(args.out) / 'index.html'}")
    for f in manifest["files"]:
        _say(f"  {f['sha256']}  {f['path']}")
    return 0


def cmd_demo(_args) -> int:
    from shared import demo
    demo.main()
    return 0


# ------------------------------------------------------------------------------------------------ parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lianfang", description="联访 Lianfang 运维命令 / operator command",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="示例 example: lianfang audit verify --config infra/nodes/510104-xfj.toml")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    audit = sub.add_parser("audit", help="审计日志 audit trail: verify / show")
    asub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    for name, fn, help_ in (("verify", cmd_audit_verify, "校验哈希链，发现篡改或删除时退出码为 1 "
                                                         "(verify the hash chain; exit 1 on problems)"),
                            ("show", cmd_audit_show, "列出审计条目（只读） list entries (read-only)")):
        a = asub.add_parser(name, help=help_, description=help_)
        a.add_argument("--config", action="append", metavar="NODE.toml",
                       help="节点配置，可重复；缺省为演示联盟全部节点 node config, repeatable "
                            "(default: $LIANFANG_CONFIG or var/demo/nodes/*.toml)")
        a.add_argument("--service", default="all", choices=["intake", "routing", "supervision", "joint_reception",
                                                             "legal_referral", "all"],
                       help="哪个服务的数据库 which service's database (default: all)")
        if name == "show":
            a.add_argument("--limit", type=int, default=50, metavar="N",
                           help="显示最近 N 条 show the last N entries (default 50)")
        a.set_defaults(func=fn)

    k = sub.add_parser("keygen", help="生成新的 32 字节 base64 密钥 new base64 key (field_key / pseudonym_key)")
    k.set_defaults(func=cmd_keygen)

    t = sub.add_parser("token", help="签发访问令牌并输出 [[users]] 配置块 new bearer token + its [[users]] block")
    t.add_argument("--config", required=True, metavar="NODE.toml", help="节点配置 node config")
    t.add_argument("--name", required=True, help="用户名 user name (shown in the audit trail)")
    t.add_argument("--role", required=True, choices=ROLES, help="角色 role")
    t.set_defaults(func=cmd_token)

    m = sub.add_parser("migrate", help="将本节点各服务的数据库迁移到最新 alembic upgrade head for every service")
    m.add_argument("--config", required=True, metavar="NODE.toml", help="节点配置 node config")
    m.set_defaults(func=cmd_migrate)

    d = sub.add_parser("demo", help="启动演示联盟（同 make run） start the demo federation")
    d.set_defaults(func=cmd_demo)

    from shared.config import AgencyType
    node = sub.add_parser("node", help="节点 node: init (新配置 new config) / start (启动 run its services)")
    nsub = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    ni = nsub.add_parser("init", help="生成新节点配置（新密钥，文件权限 0600，不覆盖已有文件） write a new node config "
                                      "with fresh keys (mode 0600, never overwrites)",
                         description="生成新节点配置并回读校验 write a new node config and validate it by loading it back")
    ni.add_argument("--agency", required=True, help="机构标识 agency id, e.g. 510104-rsj")
    ni.add_argument("--name", required=True, help="机构名称 display name, e.g. 锦江区人力资源和社会保障局")
    ni.add_argument("--type", required=True, choices=list(AgencyType.__args__), help="机构类型 agency type")
    ni.add_argument("--division", required=True, help="行政区划代码 GB/T 2260 division code (level is derived)")
    ni.add_argument("--out", required=True, metavar="NODE.toml", help="输出文件 the config file to create")
    ni.add_argument("--directory", default="/etc/lianfang/federation.toml",
                    help="联盟目录文件 federation directory file (default /etc/lianfang/federation.toml)")
    ni.add_argument("--data-dir", help="数据目录 data folder (default /var/lib/lianfang/AGENCY)")
    ni.add_argument("--bus-url", default="nats://127.0.0.1:4222", help="总线地址 NATS URL (tls://… with --tls-dir)")
    ni.add_argument("--pseudonym-key", help="联盟共用的假名密钥 the federation's shared pseudonym key (default: new)")
    ni.add_argument("--tls-dir", help="证书目录 folder with ca.crt, AGENCY.crt, AGENCY.key (lianfang certs)")
    ni.add_argument("--host", default="127.0.0.1", help="监听地址 listen address of the services (default 127.0.0.1)")
    ni.add_argument("--http-port", type=int, default=8080, help="intake HTTP 端口，其余服务依次加一 (default 8080)")
    ni.add_argument("--grpc-port", type=int, default=50051, help="intake gRPC 端口，其余服务依次加一 (default 50051)")
    ni.add_argument("--auto-sign-for", action="store_true", help="自动签收 sign for offers automatically (demo only)")
    ni.set_defaults(func=cmd_node_init)
    ns = nsub.add_parser("start", help="在前台启动本节点的全部服务 run the node's services in the foreground",
                         description="每个服务一个进程；Ctrl-C 全部停止 one process per service; Ctrl-C stops them all")
    ns.add_argument("--config", required=True, metavar="NODE.toml", help="节点配置 node config")
    ns.add_argument("--service", default="all", help="只启动某一服务 only this service (default: all it lists)")
    ns.set_defaults(func=cmd_node_start)

    c = sub.add_parser("certs", help="开发用 CA 与节点证书（同 make certs） dev CA + node certificates",
                       description="开发用 CA 与节点证书；已有 CA 会被复用 dev CA and certificates (an existing CA is reused)")
    c.add_argument("--out", required=True, metavar="DIR", help="证书目录 folder for ca.crt/ca.key and certificates")
    c.add_argument("--agency", action="append", default=[],
                   help="签发节点证书的机构，可重复；缺省为演示联盟 agency id, repeatable (default: the demo federation)")
    c.add_argument("--host", action="append", default=[], help="附加 DNS 名或 IP extra DNS name or IP, repeatable")
    c.set_defaults(func=cmd_certs)

    st = sub.add_parser("status", help="节点状态：各服务健康、账本流、消费者积压 node and bus status",
                        description="各服务 /healthz、LF_LEDGER 账本流（消息数、字节、最后序号）、本节点持久消费者积压；"
                                    "有服务停止或总线不可达时退出码为 1 (exit 1 when degraded)")
    st.add_argument("--config", required=True, metavar="NODE.toml", help="节点配置 node config")
    st.add_argument("--json", action="store_true", help="输出 JSON print JSON")
    st.add_argument("--all-consumers", action="store_true", help="列出全部节点的消费者 every node's consumers")
    st.set_defaults(func=cmd_status)

    r = sub.add_parser("replay", help="从账本重建读模型（须先停止该服务） rebuild the read model from the ledger "
                                      "(stop the service first)",
                       description="清空读模型表并按顺序重放 LF_LEDGER 全部事件；该服务必须先停止，若其 HTTP 端口有应答则拒绝执行。"
                                   " Empties the read-model tables and re-applies every ledger event in order; "
                                   "the service "
                                   "must be stopped (refused while its HTTP port answers).")
    r.add_argument("--config", required=True, metavar="NODE.toml", help="节点配置 node config")
    r.add_argument("--service", default="intake", choices=["intake"], help="哪个服务的读模型 which read model")
    r.add_argument("--every", type=int, default=1000, metavar="N", help="每 N 条事件报告进度 progress every N events")
    r.set_defaults(func=cmd_replay)

    e = sub.add_parser("export", help="导出一案一卷（HTML + manifest.json），记入审计 export a case file (audited)",
                       description="从本节点读模型导出案卷：概况、承办单位、时限、办理过程、信访处理意见书全文；"
                                   "manifest.json 记录各文件 SHA-256；导出行为写入审计日志。")
    e.add_argument("--config", required=True, metavar="NODE.toml", help="节点配置 node config")
    e.add_argument("--case", required=True, metavar="CASE_ID", help="案件编号 case id")
    e.add_argument("--out", required=True, metavar="DIR", help="输出目录（须为空） output folder (new or empty)")
    e.add_argument("--format", default="html", choices=["html"], help="格式 format (default html)")
    e.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except CliError as e:
        _say(f"lianfang: {e}", err=True)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
