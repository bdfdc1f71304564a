"""Logging with the gateway's request id on every line, and personal data scrubbed."""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from flask import g, has_request_context

# 18-character resident ID numbers and mainland mobiles never reach a log line. The digits of a decimal
# fraction (Celery's "succeeded in 0.002501234567899601s") are neither.
_ID_RE = re.compile(r"(?<!\d)(?<!\d\.)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)")
_MOBILE_RE = re.compile(r"(?<!\d)(?<!\d\.)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def scrub(text: str) -> str:
    text = _ID_RE.sub(r"\1********\2", text)
    return _MOBILE_RE.sub(r"\1****\2", text)


def brief(exc: BaseException, limit: int = 300) -> str:
    """`Type: message` of an exception for one log line: its first line only (a database error goes on with the
    statement and its parameters, an encrypted ID number among them), cut at `limit`, ID numbers and mobiles
    masked even where no ScrubFilter runs (an outbox row's last_error)."""
    inner = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError: the driver's own error says what went wrong
    shown = inner if isinstance(inner, BaseException) else exc
    first = next(iter(str(shown).strip().splitlines()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return scrub(text if len(text) <= limit else text[:limit - 1] + "…")


class ScrubFilter(logging.Filter):
    """Scrubs the message, and the traceback and stack of the record, before any formatter of the handler sees
    them: an exception's text (`ValueError("bad id 6101…")`) is printed in the traceback, not in the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(g, "request_id", "-") if has_request_context() else "-"
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        # Formatter.format prints record.exc_text when set, so a scrubbed copy cached here is what is written
        if record.exc_info and not record.exc_text:
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


_PLAIN = logging.Formatter()


class ScrubFormatter(logging.Formatter):
    """The suite's line format; tracebacks and stacks scrubbed again, for a record that reached it unfiltered."""

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]  # noqa: N802 - logging's name
        return scrub(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return scrub(super().formatStack(stack_info))


def make_handler(name: str, stream: TextIO | None = None) -> logging.Handler:
    """The handler every process of the suite logs through: its name and the request id on each line, personal
    data scrubbed from the message and from exception text."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.addFilter(ScrubFilter())
    handler.setFormatter(ScrubFormatter(f"%(asctime)s {name} %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    return handler


def setup_logging(service: str, level: int | str = logging.INFO) -> None:
    """Once per process (web apps, relays, Celery workers and beats through services.common.tasks)."""
    root = logging.getLogger()
    if getattr(root, "_cme_configured", False):
        return
    root.handlers[:] = [make_handler(service)]
    root.setLevel(level)
    root._cme_configured = True  # type: ignore[attr-defined]
