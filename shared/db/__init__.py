"""Database plumbing: declarative base, engines and units of work, outbox, inbox, audit trail."""
