"""A small fake of WeChat's web OAuth (公众号网页授权), for the tests and the local trial run.

Two endpoints, shaped like the real ones so the real wechatpy client talks to it unchanged:

- ``GET /connect/oauth2/authorize?appid=&redirect_uri=&response_type=code&scope=snsapi_base&state=``
  302 to ``redirect_uri?code=<code>&state=<state>``. The user ("phone") is the query parameter
  ``fake_user``, else the cookie ``fake_wechat_user``, else a new random user kept in that cookie,
  so a test (or a browser) can act as several phones. ``fake_user=snapshot`` is a virtual
  "snapshot" user (朋友圈快照页), whose token answer has ``is_snapshotuser: 1``.
- ``GET /sns/oauth2/access_token?appid=&secret=&code=&grant_type=authorization_code``
  JSON ``{access_token, expires_in, refresh_token, openid, scope, is_snapshotuser}``, or WeChat's
  error shape ``{"errcode": 40029, "errmsg": "invalid code"}`` for an unknown, used or expired
  code, 40125 for a wrong secret, 40013 for a wrong appid, 40002 for a wrong grant_type.

A user's openid is stable: derived from the appid and the user name. Codes live in memory,
are single use and expire after 5 minutes, as WeChat's do. Any browser is let through.

Configuration: ``CME_WECHAT_APPID`` / ``CME_WECHAT_SECRET`` (defaults "wx-fake-appid" /
"fake-secret"), the same variables the client reads. Run it with
``python -m deploy.fakes.wechat --port 8090`` and point the client at it with
``CME_WECHAT_API_BASE=http://127.0.0.1:8090/`` and ``CME_WECHAT_OPEN_BASE=http://127.0.0.1:8090/``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Flask, jsonify, make_response, redirect, request

DEFAULT_APPID = "wx-fake-appid"
DEFAULT_SECRET = "fake-secret"
SNAPSHOT_USER = "snapshot"
USER_COOKIE = "fake_wechat_user"
CODE_TTL_SECONDS = 300
TOKEN_TTL_SECONDS = 7200
_USER_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class _Grant:
    appid: str
    openid: str
    scope: str
    snapshot: bool
    expires: float


def openid_for(appid: str, user: str) -> str:
    """The stable openid of a fake user for an appid (28 characters starting with "o", like WeChat's)."""
    digest = hashlib.sha256(f"{appid}:{user}".encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode("ascii")[:27]


def _error(errcode: int, errmsg: str):  # type: ignore[no-untyped-def]
    # WeChat answers errors with HTTP 200 and this body
    return jsonify({"errcode": errcode, "errmsg": errmsg})


def create_app(appid: str | None = None, secret: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["WECHAT_APPID"] = appid or os.environ.get("CME_WECHAT_APPID") or DEFAULT_APPID
    app.config["WECHAT_SECRET"] = secret or os.environ.get("CME_WECHAT_SECRET") or DEFAULT_SECRET
    grants: dict[str, _Grant] = {}
    lock = threading.Lock()

    @app.get("/")
    def index():  # type: ignore[no-untyped-def]
        return {"fake": "wechat-oauth", "appid": app.config["WECHAT_APPID"]}

    @app.get("/connect/oauth2/authorize")
    def authorize():  # type: ignore[no-untyped-def]
        args = request.args
        if args.get("appid") != app.config["WECHAT_APPID"]:
            return "fake WeChat: appid 参数错误 (unknown appid)", 400
        redirect_uri = args.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return "fake WeChat: redirect_uri 参数错误", 400
        if args.get("response_type") != "code":
            return "fake WeChat: response_type 参数错误", 400
        scope = args.get("scope", "")
        if scope not in ("snsapi_base", "snsapi_userinfo"):
            return "fake WeChat: scope 参数错误", 400
        user = args.get("fake_user") or request.cookies.get(USER_COOKIE) or ("phone-" + secrets.token_hex(6))
        if not _USER_RE.match(user):
            return "fake WeChat: fake_user 只能包含字母、数字和 _ . -", 400
        code = secrets.token_urlsafe(24)
        with lock:
            now = time.time()
            for stale in [c for c, g in grants.items() if g.expires < now]:
                del grants[stale]
            grants[code] = _Grant(app.config["WECHAT_APPID"], openid_for(app.config["WECHAT_APPID"], user),
                                  scope, user == SNAPSHOT_USER, now + CODE_TTL_SECONDS)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query.append(("code", code))
        query.append(("state", args.get("state", "")))
        target = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
        resp = make_response(redirect(target, code=302))
        if user != SNAPSHOT_USER:  # a snapshot visit does not turn this browser into the snapshot user
            resp.set_cookie(USER_COOKIE, user, max_age=30 * 86400, httponly=True, samesite="Lax")
        return resp

    @app.get("/sns/oauth2/access_token")
    def access_token():  # type: ignore[no-untyped-def]
        args = request.args
        if args.get("appid") != app.config["WECHAT_APPID"]:
            return _error(40013, "invalid appid")
        if args.get("secret") != app.config["WECHAT_SECRET"]:
            return _error(40125, "invalid appsecret")
        if args.get("grant_type") != "authorization_code":
            return _error(40002, "invalid grant_type")
        with lock:
            grant = grants.pop(args.get("code", ""), None)  # single use
        if grant is None or grant.expires < time.time() or grant.appid != args.get("appid"):
            return _error(40029, "invalid code")
        body = {
            "access_token": "fake-at-" + secrets.token_urlsafe(24),
            "expires_in": TOKEN_TTL_SECONDS,
            "refresh_token": "fake-rt-" + secrets.token_urlsafe(24),
            "openid": grant.openid,
            "scope": grant.scope,
        }
        if grant.snapshot:
            body["is_snapshotuser"] = 1
        return jsonify(body)

    return app


def _request_handler():  # type: ignore[no-untyped-def]
    from werkzeug.serving import WSGIRequestHandler

    class PathOnlyLog(WSGIRequestHandler):
        """Logs a request's method and path, never its query string: the token exchange carries the 公众号's
        secret and the phone's login code there, and the local run keeps this log (var/log/fake-wechat.log)."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            line = f"{getattr(self, 'command', '-')} {urlsplit(getattr(self, 'path', '') or '').path}"
            self.log("info", '"%s" %s %s', line.translate(self._control_char_table), code, size)

    return PathOnlyLog


def main(argv: list[str] | None = None) -> None:
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(description="Fake WeChat web OAuth server (tests and local runs only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    opts = parser.parse_args(argv)
    server = make_server(opts.host, opts.port, create_app(), threaded=True, request_handler=_request_handler())
    print(f"fake WeChat OAuth listening on http://{opts.host}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
