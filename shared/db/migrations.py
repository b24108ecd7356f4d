"""Alembic helpers: each service owns its migration history under services/<name>/migrations."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config


def alembic_config(service_dir: Path, url: str) -> Config:
    """The Alembic configuration of one service's migrations against one database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(service_dir / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_head(service_dir: Path, url: str) -> None:
    command.upgrade(alembic_config(service_dir, url), "head")


def create_plumbing_tables() -> None:
    """Outbox, inbox and audit tables, shared by every service's first migration."""
    ts = sa.DateTime(timezone=True)
    op.create_table("outbox",
                    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("event_id", sa.String(40), nullable=False, unique=True),
                    sa.Column("subject", sa.String(200), nullable=False),
                    sa.Column("data", sa.Text, nullable=False),
                    sa.Column("headers", sa.JSON, nullable=False),
                    sa.Column("created_at", ts, nullable=False),
                    sa.Column("published_at", ts, index=True))
    op.create_table("inbox",
                    sa.Column("consumer", sa.String(80), primary_key=True),
                    sa.Column("event_id", sa.String(40), primary_key=True),
                    sa.Column("processed_at", ts, nullable=False))
    op.create_table("audit_log",
                    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("at", ts, nullable=False),
                    sa.Column("agency", sa.String(60), nullable=False),
                    sa.Column("actor", sa.String(120), nullable=False),
                    sa.Column("action", sa.String(60), nullable=False),
                    sa.Column("object_id", sa.String(80), nullable=False),
                    sa.Column("detail", sa.Text, nullable=False),
                    sa.Column("prev_hash", sa.String(64), nullable=False),
                    sa.Column("hash", sa.String(64), nullable=False))


def migration_env(target_metadata=None) -> None:
    """Body of every service's migrations/env.py (online mode only: we always have a database)."""
    from alembic import context
    connectable = sa.create_engine(context.config.get_main_option("sqlalchemy.url"), poolclass=sa.pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
