"""Logging with the gateway's request id on every line, and personal data scrubbed."""

from __future__ import annotations

import logging
import re
import sys

from flask import g, has_request_context

# 18-character resident ID numbers and mainland mobiles never reach a log line.
_ID_RE = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)")
_MOBILE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def scrub(text: str) -> str:
    text = _ID_RE.sub(r"\1********\2", text)
    return _MOBILE_RE.sub(r"\1****\2", text)


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(g, "request_id", "-") if has_request_context() else "-"
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def setup_logging(service: str, level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if getattr(root, "_cme_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubFilter())
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s {service} %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    )
    root.handlers[:] = [handler]
    root.setLevel(level)
    root._cme_configured = True  # type: ignore[attr-defined]
