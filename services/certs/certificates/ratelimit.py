"""An in-app limit on the public verification page (per client address, per minute, in Redis).

CME_CERTS_VERIFY_PER_MINUTE (default 30; 0 switches it off). Redis down: the page still answers (fail open), since
verification reveals nothing but a masked name and the gateway limits as well.
"""

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
