"""Routing service (分办): decides the responsible body, offers the case to its node over gRPC
(交办/转送) and takes its answer (签收/退回)."""
from pathlib import Path

SERVICE_DIR = Path(__file__).parent
