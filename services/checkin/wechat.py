"""WeChat web OAuth (scope snsapi_base) for the trainee's phone: the openid is all we need.

Uses wechatpy's ``WeChatOAuth``, one object per request (it keeps the request's tokens on
itself), pointed at configurable base URLs so the tests and the local run use the shipped fake
(``deploy/fakes/wechat.py``), and with an explicit HTTP timeout on every call.

Settings (environment):

- ``CME_WECHAT_APPID`` / ``CME_WECHAT_SECRET``: the 公众号's appid and secret
  (defaults: the fake's "wx-fake-appid" / "fake-secret"; production must set both);
- ``CME_WECHAT_API_BASE``: default ``https://api.weixin.qq.com/`` (``sns/oauth2/access_token``);
- ``CME_WECHAT_OPEN_BASE``: default ``https://open.weixin.qq.com/``; ``connect/`` is appended
  unless the value already ends with it;
- ``CME_WECHAT_TIMEOUT``: seconds for connect and read, default 5.

Failures raise :class:`WeChatError` (an ``AppError``, so a view may let it propagate): a
snapshot (virtual) user, an invalid or used code, a configuration error, WeChat unreachable.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from wechatpy.exceptions import WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

from services.common.errors import AppError
from services.common.logs import brief

__all__ = [
    "WeChatConfig", "WeChatError", "SnapshotUserError", "CmeWeChatOAuth",
    "authorize_url", "openid_for_code",
    "SNAPSHOT_USER", "CODE_INVALID", "MISCONFIGURED", "UNAVAILABLE", "WECHAT_ERROR",
]

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.weixin.qq.com/"
DEFAULT_OPEN_BASE = "https://open.weixin.qq.com/"
DEFAULT_APPID = "wx-fake-appid"
DEFAULT_SECRET = "fake-secret"
DEFAULT_TIMEOUT = 5.0
SCOPE = "snsapi_base"
# WeChat: "state ... a-zA-Z0-9 ... at most 128 bytes"
_STATE_RE = re.compile(r"^[A-Za-z0-9]{0,128}$")


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


@dataclass(frozen=True)
class WeChatConfig:
    appid: str = DEFAULT_APPID
    secret: str = DEFAULT_SECRET
    api_base: str = DEFAULT_API_BASE
    open_base: str = DEFAULT_OPEN_BASE
    timeout: float = DEFAULT_TIMEOUT

    @property
    def oauth_base(self) -> str:
        """wechatpy's OAUTH_BASE_URL: the open platform base with ``connect/``."""
        base = _with_slash(self.open_base)
        return base if base.endswith("/connect/") else base + "connect/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WeChatConfig:
        environ = os.environ if environ is None else environ
        try:
            timeout = float(environ.get("CME_WECHAT_TIMEOUT") or DEFAULT_TIMEOUT)
        except ValueError:
            raise RuntimeError("CME_WECHAT_TIMEOUT must be a number of seconds") from None
        if not 0 < timeout <= 30:
            raise RuntimeError("CME_WECHAT_TIMEOUT must be more than 0 and at most 30 seconds")
        return cls(
            appid=environ.get("CME_WECHAT_APPID") or DEFAULT_APPID,
            secret=environ.get("CME_WECHAT_SECRET") or DEFAULT_SECRET,
            api_base=_with_slash(environ.get("CME_WECHAT_API_BASE") or DEFAULT_API_BASE),
            open_base=_with_slash(environ.get("CME_WECHAT_OPEN_BASE") or DEFAULT_OPEN_BASE),
            timeout=timeout,
        )


# ---------------------------------------------------------------- errors

SNAPSHOT_USER = "wechat_snapshot_user"
CODE_INVALID = "wechat_code_invalid"
MISCONFIGURED = "wechat_misconfigured"
UNAVAILABLE = "wechat_unavailable"
WECHAT_ERROR = "wechat_error"

_MESSAGES = {
    SNAPSHOT_USER: "当前为微信快照页，无法签到。请点击页面下方的“使用完整服务”后重新扫码。",
    CODE_INVALID: "微信登录已失效，请重新扫描会场投影上的二维码。",
    MISCONFIGURED: "系统的微信登录配置有误，请联系主办单位。",
    UNAVAILABLE: "暂时无法连接微信，请稍后重新扫码。",
    WECHAT_ERROR: "微信登录失败，请重新扫码。",
}
_STATUS = {SNAPSHOT_USER: 403, CODE_INVALID: 400, MISCONFIGURED: 503, UNAVAILABLE: 503, WECHAT_ERROR: 502}
# errcode -> our code (https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html)
_ERRCODES = {
    40029: CODE_INVALID,  # invalid code (unknown, expired)
    40163: CODE_INVALID,  # code been used
    40125: MISCONFIGURED,  # invalid appsecret
    40013: MISCONFIGURED,  # invalid appid
    40001: MISCONFIGURED,  # invalid credential
    41004: MISCONFIGURED,  # appsecret missing
    48001: MISCONFIGURED,  # api unauthorized
    -1: UNAVAILABLE,  # system busy
}


class WeChatError(AppError):
    """WeChat login failed; ``code`` is one of the reason codes above, ``errcode`` WeChat's, if any."""

    def __init__(self, code: str, errcode: int | None = None, errmsg: str | None = None):
        super().__init__(_STATUS[code], code, _MESSAGES[code])
        self.errcode, self.errmsg = errcode, errmsg

    def __str__(self) -> str:
        detail = f" (errcode {self.errcode}: {self.errmsg})" if self.errcode is not None else ""
        return f"{self.code}{detail}"


class SnapshotUserError(WeChatError):
    """The openid is a virtual one of WeChat's snapshot page (is_snapshotuser == 1): refused."""

    def __init__(self) -> None:
        super().__init__(SNAPSHOT_USER)


# ---------------------------------------------------------------- client

class CmeWeChatOAuth(WeChatOAuth):
    """wechatpy's OAuth pointed at the configured base URLs, with a timeout on every request."""

    def __init__(self, config: WeChatConfig, redirect_uri: str = "", state: str = "") -> None:
        super().__init__(config.appid, config.secret, redirect_uri, scope=SCOPE, state=state)
        # wechatpy reads these through self, so instance attributes override the class constants
        self.API_BASE_URL = _with_slash(config.api_base)
        self.OAUTH_BASE_URL = config.oauth_base
        self.timeout = config.timeout

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        return super()._request(method, url_or_endpoint, **kwargs)

    def close(self) -> None:
        self._http.close()


def authorize_url(redirect_uri: str, state: str = "", config: WeChatConfig | None = None) -> str:
    """Where to send the phone for a silent snsapi_base login; WeChat comes back to redirect_uri?code=&state=.

    ``state`` follows WeChat's rule: letters and digits only, at most 128 characters.
    """
    if not _STATE_RE.match(state):
        raise ValueError("WeChat OAuth state must be letters and digits only, at most 128 characters")
    if not redirect_uri.startswith(("http://", "https://")):
        raise ValueError("redirect_uri must be an absolute http(s) URL")
    oauth = CmeWeChatOAuth(config or WeChatConfig.from_env(), redirect_uri, state)
    try:
        return oauth.authorize_url
    finally:
        oauth.close()


def openid_for_code(code: str, config: WeChatConfig | None = None) -> str:
    """Exchange the code WeChat sent back for the user's openid.

    Raises :class:`SnapshotUserError` for a snapshot (virtual) user and :class:`WeChatError`
    for an invalid or used code, a configuration error or WeChat being unreachable.
    """
    if not code or len(code) > 512:
        raise WeChatError(CODE_INVALID)
    oauth = CmeWeChatOAuth(config or WeChatConfig.from_env())
    try:
        result = oauth.fetch_access_token(code)
    except WeChatOAuthException as exc:
        if exc.errcode is None:  # an HTTP error status
            log.warning("WeChat OAuth answered HTTP %s", getattr(exc.response, "status_code", "?"))
            raise WeChatError(UNAVAILABLE) from exc
        reason = _ERRCODES.get(exc.errcode, WECHAT_ERROR)
        log.warning("WeChat OAuth refused the code: errcode=%s errmsg=%s", exc.errcode, exc.errmsg)
        raise WeChatError(reason, exc.errcode, exc.errmsg) from exc
    except (requests.RequestException, ValueError, KeyError) as exc:  # unreachable, timeout, not JSON
        # the exception's text holds the request URL, secret and code included: not chained, not logged
        log.warning("WeChat OAuth unreachable or garbled: %s", brief(exc))
        raise WeChatError(UNAVAILABLE) from None
    finally:
        oauth.close()
    if str(result.get("is_snapshotuser", 0)) == "1":
        raise SnapshotUserError()
    openid = result.get("openid")
    if not isinstance(openid, str) or not openid:
        raise WeChatError(WECHAT_ERROR)
    return openid
