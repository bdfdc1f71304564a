"""微信二维码考勤 — the projector page's state, and the projector token that keeps it running all day.

The page itself needs the institution's login; its polling and image requests authenticate with a
**projector token** embedded in the page instead of the login cookie (which lasts 12 hours, less than
a day of sessions). The token is signed with the server secret under its own salt ("cme-projector"),
names one activity and one window (and the institution), and is valid for 24 hours by the suite's
clock. It grants exactly what the room already sees on the wall: the current code and the count.

What is shown depends on the time: the code only while a window is open (a scan is judged by the window's
times, so a code shown before it opens would only earn refusals); a little before it opens
(``CME_PROJECTOR_LEAD_SECONDS``, default 60) the notice says it is about to start; otherwise a notice. Once
the window the page was opened on is over, the page follows the activity's next window (see ``_follow``), so
one page left on the wall serves a whole day of sessions.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import auth, clock
from services.common.config import env, get_settings
from services.common.errors import AppError

from ..activities.models import Activity
from ..qr import image, tokens
from ..windows.models import KINDS, CheckinWindow
from ..windows.services import checkin_counts

SALT = "cme-projector"
MAX_AGE = 24 * 3600
DEFAULT_LEAD_SECONDS = 60
POLL_SECONDS = 3


def lead_seconds() -> int:
    try:
        value = int(env("CME_PROJECTOR_LEAD_SECONDS", str(DEFAULT_LEAD_SECONDS)) or DEFAULT_LEAD_SECONDS)
    except ValueError:
        value = DEFAULT_LEAD_SECONDS
    return max(0, min(value, 1800))


def scan_url(token: str) -> str:
    """The URL the QR code carries: the phone flow's, when that package is present."""
    try:
        from ..phone.services import scan_url as phone_scan_url
    except ModuleNotFoundError as exc:  # only while the phone flow is not part of the build
        if not (exc.name or "").startswith("services.checkin.phone"):
            raise
        return f"{get_settings().public_base_url.rstrip('/')}/checkin/s/{token}"
    return phone_scan_url(token)


# ---------------------------------------------------------------- the projector token

class _ClockSigner(TimestampSigner):
    """Ages the token by the suite's clock (DESIGN §6), so tests and demos can move time."""

    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt=SALT, signer=_ClockSigner)


def issue_ptoken(window: CheckinWindow, opener: auth.Principal) -> str:
    # who opened it and when (the sessions' own ms clock): the link stops with her sessions when the committee
    # 停用s the institution or resets its password, not only after 24 hours (a leaked link shows live codes)
    return _serializer().dumps({"a": window.activity_id, "w": window.id, "i": window.activity.institution_id,
                                "s": opener.subject, "t": int(time.time() * 1000)})


INVALID = "projector_token_invalid"
EXPIRED = "projector_token_expired"
ENDED = "projector_token_ended"


def read_ptoken(ptoken: str) -> tuple[tuple[int, int, int], dt.datetime]:
    """((activity id, window id, institution id), when it stops working) of a valid token; a 403 AppError otherwise.
    One signature check and one look at the ended sessions: every projector's poll pays it."""
    if not ptoken or len(ptoken) > 300:
        raise AppError(403, INVALID, "投影页面的链接无效，请从刷卡周期页面重新打开。")
    try:
        data, issued = _serializer().loads(ptoken, max_age=MAX_AGE, return_timestamp=True)
    except SignatureExpired:
        raise AppError(403, EXPIRED, "投影页面已打开超过 24 小时，请从刷卡周期页面重新打开。") from None
    except BadSignature:
        raise AppError(403, INVALID, "投影页面的链接无效，请从刷卡周期页面重新打开。") from None
    try:
        ids = int(data["a"]), int(data["w"]), int(data["i"])
        # a link opened before the upgrade that added its opener goes on until its 24 hours are over
        opener, opened_ms = (str(data["s"]), int(data["t"])) if "s" in data else (None, 0)
    except (TypeError, KeyError, ValueError):
        raise AppError(403, INVALID, "投影页面的链接无效，请从刷卡周期页面重新打开。") from None
    if opener is not None and auth.ended_since(opener, opened_ms):
        raise AppError(403, ENDED, "打开本投影页面的登录已失效（账号已停用或密码已重置），二维码已停止显示；"
                                   "请重新登录后从刷卡周期页面重新打开。")
    return ids, issued + dt.timedelta(seconds=MAX_AGE)


# a cancelled activity's projector: not opened (409, the logged-in page), and one on the wall stops (403, as the
# other stops its script takes as final)
CANCELLED_OPEN = "微信二维码考勤不能打开"
CANCELLED_STOP = "二维码已停止显示"


def window_for_ptoken(session: Session, ptoken: str) -> CheckinWindow:
    window = _window_for(session, read_ptoken(ptoken)[0])
    window.activity.refuse_if_cancelled(CANCELLED_STOP, status=403)
    return window


def _window_for(session: Session, ids: tuple[int, int, int]) -> CheckinWindow:
    """The window a token names; it must still belong to that activity of that institution. Once it is deleted,
    the activity's first window stands in for it: the page follows on from there to the one open now or next, as
    it would have done from the deleted one (a page on the wall must not stop for an edit of another window)."""
    activity_id, window_id, institution_id = ids
    windows = select(CheckinWindow).join(Activity, CheckinWindow.activity_id == Activity.id).where(
        CheckinWindow.activity_id == activity_id, Activity.institution_id == institution_id)
    window = (session.scalars(windows.where(CheckinWindow.id == window_id)).first()
              or session.scalars(windows.order_by(CheckinWindow.starts_at, CheckinWindow.id).limit(1)).first())
    if window is None:
        raise AppError(404, "not_found", "本活动已没有刷卡周期（可能已被删除），请从刷卡周期页面重新打开。")
    return window


# ---------------------------------------------------------------- what the projector shows now
#
# The page is opened on one window but left on the wall all day: once that window is over it follows the
# activity's next window by start (morning 签到 -> 签退 -> afternoon 签到 …), says when the next one begins in
# a gap, and says that no window is left after the last. The token names the window it was opened on; which
# window is shown is worked out afresh on every poll, so an edit of the times is followed too.

# {k}: the window's kind (签到 or 签退): a 签退 window must not tell the room to scan to 签到
STATE_TEXT = {
    "before": "本时段尚未开始{k}（{when} 开始）",
    "next": "上一时段已结束，下一时段 {when} 开始{k}",  # the header beside it names the window
    "soon": "即将开始{k}（{when} 开始）",
    "open": "请使用微信扫描二维码{k}",
    "closed": "本时段{k}已结束",
    "all_closed": "本时段{k}已结束，本活动已没有后续的刷卡周期",
}


@dataclass
class ProjectorState:
    state: str  # before | soon | open | closed
    kind: str  # sign_in | sign_out
    show_code: bool
    slot: int
    seconds_left: float
    seconds_to_change: float | None  # until the shown window opens (or closes, when open); None after it closed
    token: str | None
    url: str | None
    count: int
    forced: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    window_id: int  # the window shown: the one the page was opened on, or the one it followed on to
    activity_id: int
    title: str
    text: str

    @property
    def kind_label(self) -> str:
        return KINDS[self.kind]

    @property
    def period(self) -> str:
        """The shown window's times as the page's header says them (Shanghai time)."""
        same_day = clock.fmt(self.starts_at, "%Y-%m-%d") == clock.fmt(self.ends_at, "%Y-%m-%d")
        return (f"{clock.fmt(self.starts_at, '%Y-%m-%d %H:%M')} – "
                f"{clock.fmt(self.ends_at, '%H:%M' if same_day else '%Y-%m-%d %H:%M')}")

    def svg(self) -> str | None:
        if not self.show_code or self.url is None:
            return None
        return image.qr_svg(self.activity_id, self.window_id, self.slot, self.url)


@dataclass(frozen=True)
class _WindowTimes:
    id: int
    activity_id: int
    title: str
    kind: str
    starts_at: dt.datetime
    ends_at: dt.datetime


def _times(window: CheckinWindow) -> _WindowTimes:
    return _WindowTimes(window.id, window.activity_id, window.title, window.kind, window.starts_at, window.ends_at)


def _when(start: dt.datetime, at: dt.datetime) -> str:
    local, today = clock.to_local(start), clock.to_local(at)
    assert local is not None and today is not None
    return f"{local:%H:%M}" if local.date() == today.date() else f"{local.month}月{local.day}日 {local:%H:%M}"


def _follow(windows: list[_WindowTimes], opened: _WindowTimes, at: dt.datetime) -> tuple[_WindowTimes, str]:
    """(the window to show at `at`, how it is shown: "own", "next" or "last").

    The opened window until it is over; then the first window starting after it that is not over yet; when
    none is left, the one of them that ended last."""
    if at <= opened.ends_at:
        return opened, "own"
    later = sorted((w for w in windows if (w.starts_at, w.id) > (opened.starts_at, opened.id)),
                   key=lambda w: (w.starts_at, w.id))
    pending = [w for w in later if at <= w.ends_at]
    if pending:
        return pending[0], "next"
    last = max([opened, *later], key=lambda w: (w.ends_at, w.starts_at, w.id))
    return last, "last" if len(windows) > 1 else "own"


# the page's token runs out before the shown window is over (a page left overnight for a second day): the wall
# says so while someone can still act, not only once it has stopped
EXPIRES_TEXT = "。本页面将于 {when} 失效，请在此之前从刷卡周期页面重新打开"


def _state(windows: list[_WindowTimes], opened: _WindowTimes, counts: dict[int, tuple[int, int]],
           at: dt.datetime | None = None, expires_at: dt.datetime | None = None) -> ProjectorState:
    at = at or clock.now()
    expires_at = expires_at or at + dt.timedelta(seconds=MAX_AGE)
    window, how = _follow(windows, opened, at)
    if at < window.starts_at - dt.timedelta(seconds=lead_seconds()):
        state = "before"
    elif at < window.starts_at:
        state = "soon"
    elif at <= window.ends_at:
        state = "open"
    else:
        state = "closed"
    key = {("before", "next"): "next", ("closed", "last"): "all_closed"}.get((state, how), state)
    text = STATE_TEXT[key].format(k=KINDS[window.kind], when=_when(window.starts_at, at))
    if state != "closed" and expires_at < window.ends_at:
        text += EXPIRES_TEXT.format(when=_when(expires_at, at))
    # no code before the window opens: the phone judges a scan by the window's times and would refuse it
    show = state == "open"
    token, slot = tokens.current_token(window.activity_id, window.id, at)
    count, forced = counts.get(window.id, (0, 0))
    change = window.ends_at if state == "open" else window.starts_at if state in ("before", "soon") else None
    return ProjectorState(state=state, kind=window.kind, show_code=show, slot=slot,
                          seconds_left=tokens.seconds_until_next(at),
                          seconds_to_change=(change - at).total_seconds() if change is not None else None,
                          token=token if show else None, url=scan_url(token) if show else None, count=count,
                          forced=forced, starts_at=window.starts_at, ends_at=window.ends_at, window_id=window.id,
                          activity_id=window.activity_id, title=window.title, text=text)


def _activity_windows(session: Session, activity_id: int) -> list[_WindowTimes]:
    return [_times(w) for w in session.scalars(select(CheckinWindow).where(CheckinWindow.activity_id == activity_id))]


def state_of(session: Session, window: CheckinWindow, at: dt.datetime | None = None) -> ProjectorState:
    """What a projector opened on `window` shows at `at` (now): that window's state, or the next one's."""
    return _state(_activity_windows(session, window.activity_id), _times(window),
                  checkin_counts(session, window.activity_id), at)


# Every projector polls every few seconds, and a hall may have several screens: each process answers
# a projector's live state from memory for a moment and asks the database at most once per period.
_live_seen: dict[str, tuple[float, list[_WindowTimes], _WindowTimes, dict[int, tuple[int, int]]]] = {}


def live_state(session: Session, ptoken: str) -> ProjectorState:
    ids, expires_at = read_ptoken(ptoken)  # signature, age and ended sessions are judged on every call, cached or not
    ttl = float(env("CME_PROJECTOR_LIVE_CACHE_SECONDS", "2"))
    seen = _live_seen.get(ptoken)
    if seen is None or seen[0] < time.monotonic():
        window = _window_for(session, ids)
        window.activity.refuse_if_cancelled(CANCELLED_STOP, status=403)  # a cancelled one is never cached
        seen = (time.monotonic() + ttl, _activity_windows(session, window.activity_id), _times(window),
                checkin_counts(session, window.activity_id))
        if len(_live_seen) > 2048:  # bounded: tokens of closed windows simply fall out
            _live_seen.clear()
        _live_seen[ptoken] = seen
    return _state(seen[1], seen[2], seen[3], expires_at=expires_at)


def live_dict(st: ProjectorState, ptoken: str) -> dict[str, Any]:
    # svg_url names the window as well as the slot: the page swaps the picture when either changes (a switch of
    # windows inside one slot included), and a picture asked for just after a switch is refused, not mixed up
    svg_url = f"/checkin/projector/{ptoken}/qr.svg?slot={st.slot}&w={st.window_id}" if st.show_code else None
    return {"state": st.state, "text": st.text, "show_code": st.show_code, "slot": st.slot,
            "seconds_left": round(st.seconds_left, 2), "count": st.count, "forced": st.forced,
            "svg_url": svg_url, "starts_at": st.starts_at.isoformat(), "ends_at": st.ends_at.isoformat(),
            "seconds_to_change": None if st.seconds_to_change is None else round(st.seconds_to_change, 2),
            "poll_seconds": POLL_SECONDS, "window_id": st.window_id, "title": st.title, "kind_label": st.kind_label,
            "period": st.period, "count_label": f"本时段已{st.kind_label}"}
