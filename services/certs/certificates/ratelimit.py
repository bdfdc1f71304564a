"""In-app limits on the public verification page, in Redis.

CME_CERTS_VERIFY_PER_MINUTE (default 30 per client address; 0 switches it off). Redis down: the page still
answers (fail open), since verification reveals nothing but a masked name and the gateway limits as well.

The name check (核对持证人姓名) answers yes or no to a guess: per certificate number it answers
CME_CERTS_NAME_CHECKS_PER_DAY times a day (default 10, whatever the address), so guessing a holder's name from
its surname is not a matter of trying names. Redis down: no name is checked (fail closed: a guess must not go
unlimited)."""

from __future__ import annotations

import logging
import time

import redis
from flask import request

from services.common.config import env
from services.common.errors import AppError
from services.common.logs import brief
from services.common.web import redis_client

log = logging.getLogger(__name__)
PREFIX = "cme:certs:verify:"


def limit() -> int:
    try:
        return int(env("CME_CERTS_VERIFY_PER_MINUTE", "30") or 30)
    except ValueError:
        return 30


def check_verify_rate() -> None:
    per_minute = limit()
    if per_minute <= 0:
        return
    key = f"{PREFIX}{request.remote_addr or 'unknown'}:{int(time.time() // 60)}"
    try:
        pipe = redis_client().pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        count = int(pipe.execute()[0])
    except redis.RedisError as exc:
        log.warning("verify rate limit unavailable: %s", brief(exc))
        return
    if count > per_minute:
        raise AppError(429, "too_many_requests", "证书验证过于频繁，请一分钟后再试。")


NAME_PREFIX = "cme:certs:name-check:"


def name_checks_per_day() -> int:
    try:
        return int(env("CME_CERTS_NAME_CHECKS_PER_DAY", "10") or 10)
    except ValueError:
        return 10


def name_check_allowed(number: str) -> bool:
    """Counts one name check of this certificate today; False once the day's are used (or Redis is down)."""
    key = f"{NAME_PREFIX}{number}:{int(time.time() // 86400)}"
    try:
        pipe = redis_client().pipeline()
        pipe.incr(key)
        pipe.expire(key, 2 * 86400)
        count = int(pipe.execute()[0])
    except redis.RedisError as exc:
        log.warning("name check limit unavailable, no name checked: %s", brief(exc))
        return False
    return count <= name_checks_per_day()
