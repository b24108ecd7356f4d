"""Supervision service (督查督办): the statutory clocks of every case (受理告知, 办理答复, 复查, 复核),
the handling commands that move them (受理/不予受理, 答复, 延期, 满意度, 复查/复核), 催办 reminders,
督办 / 挂牌督办 orders and 责任追究 records, 领导包案, and the 考核 assessment."""
from pathlib import Path

SERVICE_DIR = Path(__file__).parent
