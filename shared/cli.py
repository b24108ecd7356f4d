"""`lianfang` — the operator's command (运维命令).

    lianfang audit verify --config NODE.toml [--service intake|routing|all]   校验审计日志哈希链
    lianfang audit show   --config NODE.toml [--service ...] [--limit N]      查看审计日志（只读）
    lianfang keygen                                                           生成新的 base64 密钥
    lianfang token  --config NODE.toml --name NAME --role ROLE                签发新的访问令牌
    lianfang migrate --config NODE.toml                                       数据库迁移到最新版本
    lianfang demo                                                             启动演示联盟 (= make run)

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
    except SystemExit as e:  # load_node reports TOML syntax errors this way
        raise CliError(str(e)) from None
    except ValueError as e:  # pydantic ValidationError
        raise CliError(f"{path}: 配置无效 invalid node config:\n{e}") from None


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
