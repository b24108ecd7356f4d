from shared.db.migrations import migration_env

migration_env()
