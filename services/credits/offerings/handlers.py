"""Event handlers of this feature: event name -> handler(session, payload, envelope)."""

from collections.abc import Callable
from typing import Any

HANDLERS: dict[str, Callable[..., Any]] = {}
