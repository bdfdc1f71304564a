"""gunicorn settings shared by the four services (local run and containers).

    gunicorn -c deploy/gunicorn.conf.py services.<name>.wsgi:app

Command-line flags (the local runner passes --bind and --workers) override what is set here.
Environment: GUNICORN_BIND (0.0.0.0:8000), CME_WEB_WORKERS or WEB_CONCURRENCY (2), CME_WEB_THREADS (4),
CME_WEB_TIMEOUT (60), CME_WEB_MAX_REQUESTS (20000), GUNICORN_ACCESSLOG ("-" for stderr; unset: off,
because the services log every request themselves with its request id), FORWARDED_ALLOW_IPS.

Workers and threads. The services are I/O-bound: a page spends much of its time waiting on PostgreSQL
(3 to 5 round trips) and Redis. A sync worker sits idle through those waits and holds every other request in
the queue behind it, and it cannot keep the gateway's upstream connections alive (one new TCP connection per
request). So: gthread, one process per core (2, on the 2-core machines we run on) and 4 threads in each, i.e.
8 requests in progress per service. Python work stays serialised by the GIL within a worker, so more threads
buy nothing once the waits are covered and only add contention and database connections (each thread holds at
most one of its worker's pool of 5 + 10 overflow). Everything the services share between threads is
thread-safe: the request-scoped SQLAlchemy session is a thread-local scoped_session, Flask's request and g are
context-local, the Redis client pools its connections. CME_WEB_THREADS=1 gives the old sync workers.

Recycling. Each restart of a worker re-imports the app (1 to 2 s here) while the other worker carries all
the traffic: with the old max_requests of 1000 a service at 100 requests/s restarted a worker every 20 s,
which showed as seconds-long p99 spikes (and halved the bench's hello throughput). 20000 (+-10% jitter, so
the workers never restart together) still bounds a slow leak.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("CME_WEB_WORKERS") or os.environ.get("WEB_CONCURRENCY") or 2)
threads = int(os.environ.get("CME_WEB_THREADS") or 4)  # see "Workers and threads" above
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("CME_WEB_TIMEOUT", "60"))
graceful_timeout = 20
keepalive = 5
# gunicorn's default (4094) answered request lines of 4-8 KB itself, with an HTML page; nginx's header buffers
# (8 KB) refuse longer lines first, with the suite's JSON 414 (gateway/nginx.conf.template)
limit_request_line = 8190

# Recycle workers now and then so a slow leak never grows without bound (rarely: see "Recycling" above).
max_requests = int(os.environ.get("CME_WEB_MAX_REQUESTS") or 20000)
max_requests_jitter = max(1, max_requests // 10)

# Heartbeat files in memory, not on a container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Only the gateway talks to the services; trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
# gunicorn 25+ opens a control socket at one per-user path ($HOME/.gunicorn/gunicorn.ctl): the four services'
# masters (and any other stack on the host) would all bind the same file, each taking it from the one before.
# Nothing here uses gunicornc; the runner and the containers signal the master.
control_socket_disable = True
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# the path without its query string (%(U)s, not %(r)s): a search by ID number or mobile is never logged
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}i)s'
