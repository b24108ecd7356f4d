"""Structured JSON logs, one object per line, with the current trace id so a log line can be found
from a trace and back. Never log petitioner identity (names, ID numbers, phones, addresses): the code
logs ids and counts only, and as a last guard the formatter masks anything shaped like a resident ID
number or a mobile number, and drops the bound parameters SQLAlchemy appends to its error messages
(they may hold encrypted identity or petition text)."""
from __future__ import annotations

import json
import logging
import re

from opentelemetry import trace

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")  # 居民身份证号码 (GB 11643)
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_SQL_PARAMS = re.compile(r"\[parameters: .*?\](?=\s*(\(Background|$))", re.S)


def redact(text: str) -> str:
    """Mask identity-shaped values and SQL parameters in a log message."""
    text = _SQL_PARAMS.sub("[parameters: (redacted)]", text)
    text = _ID_NUMBER.sub("[id-number]", text)
    return _MOBILE.sub("[phone]", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, agency: str):
        super().__init__()
        self.service, self.agency = service, agency

    def format(self, record: logging.LogRecord) -> str:
        ctx = trace.get_current_span().get_span_context()
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                 "service": self.service, "agency": self.agency, "logger": record.name,
                 "message": redact(record.getMessage())}
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup(service: str, agency: str, level: int = logging.INFO) -> None:
    """One JSON handler on the root logger (uvicorn's and grpc's loggers propagate to it)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service, agency))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
