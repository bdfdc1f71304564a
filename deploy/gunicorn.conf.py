"""gunicorn settings shared by the four services (local run and containers).

    gunicorn -c deploy/gunicorn.conf.py services.<name>.wsgi:app

Command-line flags (the local runner passes --bind and --workers) override what is set here.
Environment: GUNICORN_BIND (0.0.0.0:8000), CME_WEB_WORKERS or WEB_CONCURRENCY (2), CME_WEB_THREADS (1),
CME_WEB_TIMEOUT (60), CME_WEB_MAX_REQUESTS (1000), GUNICORN_ACCESSLOG ("-" for stderr; unset: off,
because the services log every request themselves with its request id), FORWARDED_ALLOW_IPS.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("CME_WEB_WORKERS") or os.environ.get("WEB_CONCURRENCY") or 2)
threads = int(os.environ.get("CME_WEB_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("CME_WEB_TIMEOUT", "60"))
graceful_timeout = 20
keepalive = 5

# Recycle workers now and then so a slow leak never grows without bound.
max_requests = int(os.environ.get("CME_WEB_MAX_REQUESTS", "1000"))
max_requests_jitter = max(1, max_requests // 10)

# Heartbeat files in memory, not on a container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Only the gateway talks to the services; trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}i)s'
