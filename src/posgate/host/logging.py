"""Structured logs: one JSON object per line on standard output.

Every record has ``ts`` (UTC, ISO 8601), ``level``, ``logger`` and ``msg``; extra fields passed
as ``extra={"fields": {...}}`` are merged in. What must never reach a log: keys, PANs (other
than masked), track data, PIN blocks. Messages about ISO 8583 traffic are built with
:func:`posgate.dialect.describe.describe_short`, which masks; values are never interpolated
from raw fields here.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LEVELS = ("debug", "info", "warning", "error")
STARTUP = "posgate.startup"  # the logger of the "listening on" lines, always at INFO


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "msg": record.getMessage(),
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type and where it happened; its text may quote a value, so only
            # the traceback's code locations are kept.
            out["error"] = record.exc_info[0].__name__
            out["where"] = self._where(record)
        return json.dumps(out, ensure_ascii=False, default=str)

    @staticmethod
    def _where(record: logging.LogRecord) -> list[str]:
        tb = record.exc_info[2] if record.exc_info else None
        frames = []
        while tb is not None:
            frames.append(f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno} {tb.tb_frame.f_code.co_name}")
            tb = tb.tb_next
        return frames[-6:]


def setup_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Route the ``posgate`` loggers (and uvicorn's) to JSON lines on ``stream`` (stdout)."""
    handler = logging.StreamHandler(stream or sys.stdout)  # flushes every record
    handler.setFormatter(JsonFormatter())
    lvl = getattr(logging, level.upper(), logging.INFO)
    for name in ("posgate", "uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(lvl if name != "uvicorn.access" else max(lvl, logging.WARNING))
        lg.propagate = False
    # Where to connect is always said, whatever the level: supervisors and tests read it.
    logging.getLogger(STARTUP).setLevel(min(lvl, logging.INFO))


def fields(**kw: Any) -> dict[str, Any]:
    """``logger.info("...", extra=fields(a=1))``: structured fields for the JSON line."""
    return {"fields": kw}
