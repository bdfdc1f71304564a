"""SMS provider interface, shared by every service that sends codes: send_sms(mobile, text, params) picks a
provider by settings.sms_provider.

- "log" (default): one JSON line per message in settings.sms_log_path. That file is the local run's
  and the tests' SMS inbox, so it carries the mobile in clear on purpose; nothing else does.
- "tencent": Tencent Cloud SMS through its official SDK (tencentcloud.sms.v20210111), configured by env.

Providers never log mobiles or message text; a failure raises SmsError with a provider code only.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.common import clock
from services.common.config import env, get_settings

log = logging.getLogger(__name__)


class SmsError(Exception):
    """Delivery failed; the message says why without personal data."""


class SmsNotConfigured(SmsError):
    """The provider has no template for this kind of message: trying again will not help until an operator sets it."""


# Kinds of message: a provider that sends by template needs one template per kind.
TEMPLATE_KINDS = ("code", "reminder", "notice")
# how every message of the suite is signed (Tencent puts its approved CME_TENCENT_SMS_SIGN there instead): one
# name, so a trainee does not see a code from one sender and a notice from another
SIGN = "【陕西省继续医学教育】"


class Provider(Protocol):
    def send(self, mobile: str, text: str, params: Sequence[str], template: str = "code") -> None: ...


_log_lock = threading.Lock()


class LogProvider:
    """Appends {"mobile", "text", "time"} as one JSON line: the local inbox."""

    def send(self, mobile: str, text: str, params: Sequence[str], template: str = "code") -> None:
        path = get_settings().sms_log_path
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"mobile": mobile, "text": text, "time": clock.now().isoformat()}, ensure_ascii=False)
        with _log_lock, path.open("a", encoding="utf-8") as fh:  # one writer at a time: lines never interleave
            fh.write(line + "\n")


@dataclass(frozen=True)
class TencentConfig:
    secret_id: str
    secret_key: str
    app_id: str
    sign: str
    template_id: str  # login and reset codes: [code, minutes]
    region: str = "ap-guangzhou"
    reminder_template_id: str = ""  # deadline reminders: [what, date]
    notice_template_id: str = ""  # notices (certificates printable): [what, date]

    def template(self, kind: str) -> str:
        value = {"code": self.template_id, "reminder": self.reminder_template_id,
                 "notice": self.notice_template_id}.get(kind, "")
        if not value:
            raise SmsNotConfigured(f"no Tencent SMS template for {kind} messages: set CME_TENCENT_SMS_"
                           f"{'' if kind == 'code' else kind.upper() + '_'}TEMPLATE_ID")
        return value

    @classmethod
    def from_env(cls) -> TencentConfig:
        cfg = cls(secret_id=env("CME_TENCENT_SECRET_ID"), secret_key=env("CME_TENCENT_SECRET_KEY"),
                  app_id=env("CME_TENCENT_SMS_APP_ID"), sign=env("CME_TENCENT_SMS_SIGN"),
                  template_id=env("CME_TENCENT_SMS_TEMPLATE_ID"),
                  region=env("CME_TENCENT_SMS_REGION", "ap-guangzhou"),
                  reminder_template_id=env("CME_TENCENT_SMS_REMINDER_TEMPLATE_ID"),
                  notice_template_id=env("CME_TENCENT_SMS_NOTICE_TEMPLATE_ID"))
        missing = [name for name, value in (("CME_TENCENT_SECRET_ID", cfg.secret_id),
                                            ("CME_TENCENT_SECRET_KEY", cfg.secret_key),
                                            ("CME_TENCENT_SMS_APP_ID", cfg.app_id),
                                            ("CME_TENCENT_SMS_SIGN", cfg.sign),
                                            ("CME_TENCENT_SMS_TEMPLATE_ID", cfg.template_id)) if not value]
        if missing:
            raise SmsError("Tencent SMS is selected but not configured: " + ", ".join(missing))
        return cfg


def build_tencent_request(cfg: TencentConfig, mobile: str, params: Sequence[str],  # type: ignore[no-untyped-def]
                          template: str = "code"):
    """The SendSmsRequest for one mainland mobile; built apart from sending so it is testable offline."""
    from tencentcloud.sms.v20210111 import models

    req = models.SendSmsRequest()
    req.SmsSdkAppId = cfg.app_id
    req.SignName = cfg.sign
    req.TemplateId = cfg.template(template)
    req.PhoneNumberSet = [mobile if mobile.startswith("+") else f"+86{mobile}"]
    req.TemplateParamSet = [str(p) for p in params]  # the template carries the text; we pass its variables
    return req


class TencentProvider:
    def __init__(self, cfg: TencentConfig | None = None):
        self.cfg = cfg or TencentConfig.from_env()

    def client(self):  # type: ignore[no-untyped-def]
        from tencentcloud.common import credential
        from tencentcloud.sms.v20210111 import sms_client

        return sms_client.SmsClient(credential.Credential(self.cfg.secret_id, self.cfg.secret_key), self.cfg.region)

    def send(self, mobile: str, text: str, params: Sequence[str], template: str = "code") -> None:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        if not params:
            raise SmsError("Tencent SMS needs template parameters")
        try:
            resp = self.client().SendSms(build_tencent_request(self.cfg, mobile, params, template))
        except TencentCloudSDKException as exc:
            raise SmsError(f"Tencent SMS error {exc.get_code()}") from None  # the SDK message may echo the number
        statuses = resp.SendStatusSet or []
        if not statuses or statuses[0].Code != "Ok":
            raise SmsError(f"Tencent SMS refused: {statuses[0].Code if statuses else 'no status'}")


PROVIDERS: dict[str, type] = {"log": LogProvider, "tencent": TencentProvider}


def get_provider(name: str | None = None) -> Provider:
    name = name or get_settings().sms_provider
    try:
        return PROVIDERS[name]()
    except KeyError:
        raise SmsError(f"unknown SMS provider {name!r}") from None


def send_sms(mobile: str, text: str, params: Sequence[str] = (), template: str = "code") -> None:
    """Send one message. `text` is the full message (log provider); `params` fill the template of kind
    `template` (TEMPLATE_KINDS) of a provider that sends by template (Tencent: code [code, minutes])."""
    if template not in TEMPLATE_KINDS:
        raise SmsError(f"unknown kind of message {template!r}")
    provider = get_provider()
    provider.send(mobile, text, params, template)
    log.info("sms sent via %s", type(provider).__name__)  # never the mobile, never the text
