"""The shipped fake WeChat OAuth server, exercised by the real wechatpy client (never the internet)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from deploy.fakes import wechat as fake
from services.checkin import wechat
from services.checkin.wechat import SnapshotUserError, WeChatConfig, WeChatError

ROOT = Path(__file__).resolve().parents[2]
CALLBACK = "http://127.0.0.1:9/checkin/wechat/callback?next=%2Fcheckin%2Fq%2Fabc"


@pytest.fixture(scope="module")
def fake_base():
    server = make_server("127.0.0.1", 0, fake.create_app("wx-test-appid", "test-secret"), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def config(fake_base):
    return WeChatConfig(appid="wx-test-appid", secret="test-secret", api_base=fake_base, open_base=fake_base,
                        timeout=5)


def login(config: WeChatConfig, user: str | None = None, state: str = "s1", session=None) -> tuple[str, str]:
    """Follow the authorize URL as a phone would; returns (code, state) from the redirect."""
    url = wechat.authorize_url(CALLBACK, state, config)
    assert url.startswith(config.oauth_base + "oauth2/authorize?") and url.endswith("#wechat_redirect")
    url = url.removesuffix("#wechat_redirect") + (f"&fake_user={user}" if user else "")
    resp = (session or requests).get(url, allow_redirects=False, timeout=5)
    assert resp.status_code == 302, resp.text
    target = urlsplit(resp.headers["Location"])
    assert target.path == "/checkin/wechat/callback"
    query = parse_qs(target.query)
    assert query["next"] == ["/checkin/q/abc"]  # the callback's own query survives
    return query["code"][0], query["state"][0]


def test_normal_user_gets_a_stable_openid(config):
    code, state = login(config, "alice", state="abc123")
    assert state == "abc123"
    openid = wechat.openid_for_code(code, config)
    assert openid == fake.openid_for("wx-test-appid", "alice")
    assert openid.startswith("o") and len(openid) == 28
    code2, _ = login(config, "alice")
    assert wechat.openid_for_code(code2, config) == openid
    code3, _ = login(config, "bob")
    assert wechat.openid_for_code(code3, config) != openid


def test_cookie_keeps_a_browser_the_same_phone(config):
    phone = requests.Session()
    code, _ = login(config, session=phone)  # no fake_user: a new random user, kept in a cookie
    first = wechat.openid_for_code(code, config)
    code, _ = login(config, session=phone)
    assert wechat.openid_for_code(code, config) == first
    other = requests.Session()
    code, _ = login(config, session=other)
    assert wechat.openid_for_code(code, config) != first


def test_snapshot_user_refused(config):
    code, _ = login(config, fake.SNAPSHOT_USER)
    with pytest.raises(SnapshotUserError) as exc:
        wechat.openid_for_code(code, config)
    assert exc.value.code == wechat.SNAPSHOT_USER and exc.value.status == 403
    assert "使用完整服务" in exc.value.message


def test_reused_code_refused(config):
    code, _ = login(config, "carol")
    assert wechat.openid_for_code(code, config)
    with pytest.raises(WeChatError) as exc:
        wechat.openid_for_code(code, config)
    assert (exc.value.code, exc.value.errcode) == (wechat.CODE_INVALID, 40029)
    assert "重新扫描" in exc.value.message


def test_unknown_code_refused(config):
    with pytest.raises(WeChatError) as exc:
        wechat.openid_for_code("no-such-code", config)
    assert exc.value.errcode == 40029
    with pytest.raises(WeChatError) as exc:
        wechat.openid_for_code("", config)
    assert exc.value.code == wechat.CODE_INVALID


def test_wrong_secret_is_a_configuration_error(config, fake_base):
    code, _ = login(config, "dave")
    bad = WeChatConfig(appid="wx-test-appid", secret="wrong", api_base=fake_base, open_base=fake_base)
    with pytest.raises(WeChatError) as exc:
        wechat.openid_for_code(code, bad)
    assert (exc.value.code, exc.value.errcode) == (wechat.MISCONFIGURED, 40125)
    assert "wrong" not in str(exc.value)


def test_fake_error_shapes(fake_base):
    api = fake_base + "sns/oauth2/access_token"
    good = {"appid": "wx-test-appid", "secret": "test-secret", "code": "x", "grant_type": "authorization_code"}
    assert requests.get(api, params=good, timeout=5).json() == {"errcode": 40029, "errmsg": "invalid code"}
    assert requests.get(api, params={**good, "secret": "no"}, timeout=5).json()["errcode"] == 40125
    assert requests.get(api, params={**good, "appid": "no"}, timeout=5).json()["errcode"] == 40013
    assert requests.get(api, params={**good, "grant_type": "x"}, timeout=5).json()["errcode"] == 40002
    auth = fake_base + "connect/oauth2/authorize"
    params = {"appid": "wx-test-appid", "redirect_uri": CALLBACK, "response_type": "code", "scope": "snsapi_base"}
    assert requests.get(auth, params={**params, "appid": "no"}, allow_redirects=False, timeout=5).status_code == 400
    assert requests.get(auth, params={**params, "redirect_uri": "/x"}, allow_redirects=False,
                        timeout=5).status_code == 400
    resp = requests.get(auth, params={**params, "fake_user": "erin"}, allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    body = requests.get(api, params={**good, "code": code}, timeout=5).json()
    assert set(body) == {"access_token", "expires_in", "refresh_token", "openid", "scope"}
    assert body["scope"] == "snsapi_base" and body["expires_in"] == 7200


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_wechat(fake_base):
    base = f"http://127.0.0.1:{_closed_port()}/"
    cfg = WeChatConfig(appid="wx-test-appid", secret="test-secret", api_base=base, open_base=base, timeout=2)
    with pytest.raises(WeChatError) as exc:
        wechat.openid_for_code("abc", cfg)
    assert exc.value.code == wechat.UNAVAILABLE and exc.value.__cause__ is None  # no URL with the secret


def test_explicit_timeout():
    # a server that accepts the connection and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        base = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        cfg = WeChatConfig(api_base=base, open_base=base, timeout=0.3)
        with pytest.raises(WeChatError) as exc:
            wechat.openid_for_code("abc", cfg)
    assert exc.value.code == wechat.UNAVAILABLE


def test_authorize_url_checks_its_arguments(config):
    with pytest.raises(ValueError):
        wechat.authorize_url(CALLBACK, "has-dash", config)
    with pytest.raises(ValueError):
        wechat.authorize_url(CALLBACK, "a" * 129, config)
    with pytest.raises(ValueError):
        wechat.authorize_url("/relative", "s", config)
    url = wechat.authorize_url(CALLBACK, "", config)
    assert "scope=snsapi_base" in url and "state=" not in url


def test_config_from_env():
    cfg = WeChatConfig.from_env({})
    assert (cfg.appid, cfg.secret) == ("wx-fake-appid", "fake-secret")
    assert (cfg.api_base, cfg.oauth_base) == ("https://api.weixin.qq.com/", "https://open.weixin.qq.com/connect/")
    cfg = WeChatConfig.from_env({"CME_WECHAT_APPID": "wx1", "CME_WECHAT_SECRET": "s",
                                 "CME_WECHAT_API_BASE": "http://127.0.0.1:8090",
                                 "CME_WECHAT_OPEN_BASE": "http://127.0.0.1:8090/connect/",
                                 "CME_WECHAT_TIMEOUT": "2.5"})
    assert (cfg.appid, cfg.secret, cfg.timeout) == ("wx1", "s", 2.5)
    assert (cfg.api_base, cfg.oauth_base) == ("http://127.0.0.1:8090/", "http://127.0.0.1:8090/connect/")
    with pytest.raises(RuntimeError):
        WeChatConfig.from_env({"CME_WECHAT_TIMEOUT": "0"})


def test_env_configured_client_and_fake_agree(monkeypatch):
    """The module runs as `python -m deploy.fakes.wechat --port N`; client and fake read the same env."""
    for name in ("CME_WECHAT_APPID", "CME_WECHAT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    port = _closed_port()
    proc = subprocess.Popen([sys.executable, "-m", "deploy.fakes.wechat", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once the socket is bound
        assert f":{port}/" in line, proc.stderr.read() if proc.poll() is not None else line
        base = f"http://127.0.0.1:{port}/"
        monkeypatch.setenv("CME_WECHAT_API_BASE", base)
        monkeypatch.setenv("CME_WECHAT_OPEN_BASE", base)
        cfg = WeChatConfig.from_env()
        code, _ = login(cfg, "frank")
        assert wechat.openid_for_code(code) == fake.openid_for("wx-fake-appid", "frank")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
