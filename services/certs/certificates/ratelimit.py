"""In-app limits on the public verification page, in Redis.

CME_CERTS_VERIFY_PER_MINUTE (default 30 per client address; 0 switches it off). Redis down: the page still
answers (fail open), since verification reveals nothing but a masked name and the gateway limits as well.

The name check (核对持证人姓名) answers yes or no to a guess: per certificate number it answers
CME_CERTS_NAME_CHECKS_PER_DAY times a day (default 10, whatever the address), so guessing a holder's name from
its surname is not a matter of trying names. Redis down: no name is checked (fail closed: a guess must not go
unlimited)."""

from __future__ import annotations

import logging
import math
import time

import redis
from flask import request

from services.common import clock
from services.common.config import env
from services.common.errors import AppError
from services.common.logs import brief
from services.common.web import redis_client

log = logging.getLogger(__name__)
PREFIX = "cme:certs:verify:"


def _setting(name: str, default: int) -> int:
    try:
        return int(env(name, str(default)) or default)
    except ValueError:
        return default


def _count(key: str, ttl: int) -> int:
    """One more on this Redis counter (it expires after ttl seconds); raises RedisError when Redis is gone."""
    pipe = redis_client().pipeline()
    pipe.incr(key)
    pipe.expire(key, ttl)
    return int(pipe.execute()[0])


def limit() -> int:
    return _setting("CME_CERTS_VERIFY_PER_MINUTE", 30)


def check_verify_rate() -> None:
    per_minute = limit()
    if per_minute <= 0:
        return
    now = time.time()
    key = f"{PREFIX}{request.remote_addr or 'unknown'}:{int(now // 60)}"
    try:
        count = _count(key, 120)
    except redis.RedisError as exc:
        log.warning("verify rate limit unavailable: %s", brief(exc))
        return
    if count > per_minute:
        # the count is per clock minute: the next one starts afresh
        raise AppError(429, "too_many_requests", "证书验证过于频繁，请一分钟后再试。",
                       retry_after=math.ceil(60 - now % 60))


NAME_PREFIX = "cme:certs:name-check:"


def name_checks_per_day() -> int:
    return _setting("CME_CERTS_NAME_CHECKS_PER_DAY", 10)


def name_check_allowed(number: str) -> bool:
    """Counts one name check of this certificate today; False once the day's are used (or Redis is down)."""
    key = f"{NAME_PREFIX}{number}:{clock.today_local().isoformat()}"  # "明日再试" means after Beijing's midnight
    try:
        count = _count(key, 2 * 86400)
    except redis.RedisError as exc:
        log.warning("name check limit unavailable, no name checked: %s", brief(exc))
        return False
    return count <= name_checks_per_day()
