"""Intake service (登记): registers petitions at a desk and projects the shared case ledger into the
node's read model, so any node that shares a case can show it."""
from pathlib import Path

SERVICE_DIR = Path(__file__).parent
