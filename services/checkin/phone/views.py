"""微信扫码签到 on the trainee's phone: the QR URL, WeChat login, the form or one tap, and its JSON mirror.

    GET  /checkin/s/<token>          the QR URL: judge the code once, issue the scan ticket, WeChat login
    GET  /checkin/wechat/callback    WeChat OAuth comes back: keep the openid, go to the form
    GET  /checkin/scan               the form (first scan) or the one-tap page (bound WeChat account)
    POST /checkin/scan               store the check-in (scans.services.record_scan), answer 已签到
    GET  /checkin/api/scan           the live ticket as JSON (nonce, activity, window, bound identity)
    POST /checkin/api/scan           the same check-in as JSON

Trainees are not logged in: every view is public; the trust comes from the QR token (judged at the
first open), the signed scan ticket (bounded time, the form's nonce) and WeChat (the openid).
Personal data is never logged; the one-tap page shows the ID number masked.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any, NoReturn

from flask import Blueprint, jsonify, make_response, redirect, render_template, request, url_for
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import joinedload

from services.common import clock, pii
from services.common.auth import access
from services.common.errors import (
    DB_BUSY_MESSAGE,
    RETRY_AFTER_SECONDS,
    STATUS_MESSAGES,
    AppError,
    db_unavailable,
    error_response,
)
from services.common.identity import FIELD_LABELS, TITLES, TraineeIdentitySchema
from services.common.logs import brief
from services.common.schemas import load_form

from .. import wechat
from ..db import db
from ..qr.tokens import read_token
from ..scans.models import Checkin
from ..scans.services import WINDOW_GONE, ScanRefused, ScanResult, binding_of, record_scan, refuse
from ..windows.models import CheckinWindow
from .schemas import (
    IDENTITY_FIELDS,
    PhoneScanResultSchema,
    PhoneScanSchema,
    ScanRefusalSchema,
    TicketOutSchema,
    dump_scan_result,
)
from .services import (
    KEPT_COOKIE,
    KEPT_SECONDS,
    TICKET_COOKIE,
    WECHAT_COOKIE,
    Ticket,
    callback_url,
    forget_kept,
    is_wechat_browser,
    keep_typed,
    load_kept,
    load_openid,
    load_ticket,
    new_ticket,
    open_scan,
    set_openid_cookie,
    set_ticket_cookie,
    wechat_ua_required,
)

log = logging.getLogger(__name__)

pages = Blueprint("checkin_phone", __name__, template_folder="templates")
api = ApiBlueprint("checkin_phone_api", __name__, url_prefix="/checkin/api",
                   description="微信扫码签到（学员手机）：凭扫码凭证与微信身份 Cookie 签到")

T = "checkin/phone/"
_IDENTITY = TraineeIdentitySchema()  # one instance for all requests: loading keeps no state on it
STATE_MISMATCH = "wechat_state_mismatch"
WECHAT_LOGIN_REQUIRED = "wechat_login_required"
_MESSAGES = {
    STATE_MISMATCH: "微信登录已失效（可能在别的页面重新扫过码），请重新扫描会场投影上的二维码。",
    WECHAT_LOGIN_REQUIRED: "请重新扫描会场投影上的二维码，完成微信登录后再签到。",
}
# what the trainee can do about a refusal
_RESCAN = "请扫描会场投影上正在显示的最新二维码。"
HINTS = {
    "not_in_window": "请在主办单位规定的签到时段内扫码；如有疑问请联系会场工作人员。",
    "wechat_bound_to_other": "一个微信号只能绑定一个身份证号码。请本人使用自己的微信扫码；"
                             "如需代为签到，请联系会场工作人员。",
    "id_name_mismatch": "请核对姓名和身份证号码是否为本人的；如登记的姓名有误，请联系会场工作人员。",
    "snapshot_user": "请点击页面下方的“使用完整服务”，或直接用微信“扫一扫”扫描会场投影上的二维码。",
    "wechat_misconfigured": "请联系会场工作人员。",
    "activity_cancelled": "本期活动不再签到，已有的签到记录仍然保留；如有疑问，请联系举办单位。",
}


# ---- helpers -----------------------------------------------------------------------------------

def _phone(template: str, status: int = 200, **ctx: Any) -> Any:
    response = make_response(render_template(T + template, **ctx), status)
    response.headers["Cache-Control"] = "no-store"  # personal data and one-time forms
    return response


def refusal_words(exc: AppError, window: CheckinWindow | None) -> tuple[str, str]:
    """A refusal's sentence and what the trainee can do about it, for the refused window (None: not known), as
    the phone page and the JSON API both say them."""
    kind = _kind(window)
    message, hint = exc.message, HINTS.get(exc.code, _RESCAN)
    if kind != "签到":  # the sentences name 签到 windows: under 未能签退 they name the 签退 one
        message, hint = message.replace("签到时段", f"{kind}时段"), hint.replace("签到时段", f"{kind}时段")
    if exc.code == "activity_cancelled" and window is not None and window.activity.cancelled:
        message = f"{window.activity.cancel_sentence}，不能{kind}。"  # which of the two, and since when
    if exc.code == "not_in_window" and window is not None:
        # a scan in a gap or after the session: when this window takes scans, so she knows whether to come back
        hint = f"“{window.title}”的{kind}时间为 {_period(window)}。{hint}"
    return message, hint


@pages.errorhandler(AppError)
def _refusal_page(exc: AppError) -> Any:
    """Every refusal of the phone pages (scan, ticket, WeChat) is a phone page with its code and sentence."""
    window = _window_of(exc)
    message, hint = refusal_words(exc, window)
    return _phone("refused.html", exc.status, code=exc.code, message=message, hint=hint, kind_label=_kind(window))


def _kind(window: CheckinWindow | None) -> str:
    """签到 or 签退: the refused window's kind when the refusal names one (未能签退 on a sign-out window)."""
    return window.kind_label if window is not None else "签到"


def _period(window: CheckinWindow) -> str:
    same_day = clock.fmt(window.starts_at, "%Y-%m-%d") == clock.fmt(window.ends_at, "%Y-%m-%d")
    end = clock.fmt(window.ends_at, "%H:%M" if same_day else "%m-%d %H:%M")
    return f"{clock.fmt(window.starts_at, '%m-%d %H:%M')}–{end}"


def _window_of(exc: AppError) -> CheckinWindow | None:
    window_id = getattr(exc, "window_id", None)
    if window_id is None:
        return None
    try:
        return db.session().get(CheckinWindow, window_id)
    except Exception:  # the database is what failed: the page still answers
        return None


KEPT_FORM = "尚未签到成功，您填写的内容已保留，请稍候几秒后再次提交。"
KEPT_LATE = (f"您填写的内容已保留（{KEPT_SECONDS // 60} 分钟内有效）：请重新扫描大屏上正在显示的二维码，"
             "核对后提交即可，无需重新填写。")


@pages.errorhandler(DBAPIError)
@pages.errorhandler(PoolTimeoutError)
def _db_busy_page(exc: Exception) -> Any:
    """The database is restarting or unreachable: 503 + Retry-After on a phone page, never a 500. A submitted
    form comes back with what was typed (the same nonce: submitting it again never stores twice)."""
    if not db_unavailable(exc):
        log.exception("unhandled error")
        return error_response(500, "internal_error", STATUS_MESSAGES[500])
    log.error("database unavailable on %s: %s", request.endpoint, brief(exc))
    ticket = load_ticket(request.cookies.get(TICKET_COOKIE))
    submitted = request.method == "POST" and request.endpoint == "checkin_phone.scan_submit" and ticket is not None
    if submitted and request.form.get("mode") != "tap":
        assert ticket is not None
        response = _phone("form.html", 503, values=_typed(), titles=TITLES, labels=FIELD_LABELS, ticket=ticket,
                          activity=None, window=None, expires_at=clock.fmt(ticket.expires_at(), "%H:%M"),
                          errors={"_schema": DB_BUSY_MESSAGE + KEPT_FORM})
    else:
        response = _phone("busy.html", 503, message=DB_BUSY_MESSAGE, ticket=ticket if submitted else None,
                          retry_url=request.url if request.method == "GET" else None)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _in_wechat(view: Callable) -> Callable:
    """Outside WeChat's browser the pages only say to open them in WeChat (CME_WECHAT_UA_REQUIRED=0 lifts it)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if wechat_ua_required() and not is_wechat_browser(request.headers.get("User-Agent")):
            return _phone("open_in_wechat.html", 403)
        return view(*args, **kwargs)

    return wrapper


def _keep_and_raise(exc: ScanRefused) -> NoReturn:
    """A refusal is kept (one commit) before it is shown."""
    session = db.session()
    session.commit()
    raise exc


def _ticket(loaded: Ticket | None = None) -> Ticket:
    """The request's scan ticket (`loaded`: already read from its cookie), still within its time; else a
    ticket_expired refusal."""
    ticket = loaded or load_ticket(request.cookies.get(TICKET_COOKIE))
    if ticket is None:  # no scan at all (or a tampered cookie): nothing to attribute, nothing stored
        raise ScanRefused("ticket_expired", 410)
    if not ticket.live():
        _keep_and_raise(refuse(db.session(), "ticket_expired", activity_id=ticket.activity_id,
                               window_id=ticket.window_id, openid=_openid(), address=request.remote_addr, status=410))
    return ticket


def _late_retry(ticket: Ticket | None, nonce: str | None) -> bool:
    """A submission sent again after its ticket's time (a slow network retrying): its answer is the check-in
    stored under the nonce, if any, not an expired scan."""
    return ticket is not None and not ticket.live() and _nonce_of(ticket, nonce)


def _answered_retry(nonce: str | None) -> Any:
    """已签到 with its time for a late retry of a stored submission (_late_retry); None for anything else."""
    ticket = load_ticket(request.cookies.get(TICKET_COOKIE))
    return _answered(ticket) if ticket is not None and _late_retry(ticket, nonce) else None


def _stored(ticket: Ticket, openid: str | None = None) -> tuple[ScanResult, CheckinWindow] | None:
    """The check-in stored under this ticket's nonce (by openid's account, when given) as a repeated scan's
    answer, with its window; else None."""
    c = db.session().scalars(select(Checkin).where(Checkin.nonce == ticket.nonce).options(
        joinedload(Checkin.window).joinedload(CheckinWindow.activity), joinedload(Checkin.trainee))).first()
    if c is None or (openid is not None and c.openid != openid):
        return None
    return ScanResult(c.id, c.window_id, c.scanned_at, False, c.forced, c.trainee.name, c.window.kind), c.window


def _answered(ticket: Ticket, openid: str | None = None) -> Any:
    """已签到 (已签退) with its time when this ticket's nonce is already stored (by openid's account, when given);
    else None."""
    stored = _stored(ticket, openid)
    if stored is None:
        return None
    answered, window = stored
    return _phone("done.html", recorded=answered, scanned_at=clock.fmt(answered.scanned_at),
                  **_page_ctx(ticket, window))


def _live_ticket() -> tuple[Ticket, CheckinWindow]:
    """The live ticket and its window (with its activity, for the page's title)."""
    ticket = _ticket()
    window = db.session().get(CheckinWindow, ticket.window_id, options=[joinedload(CheckinWindow.activity)])
    if window is None or window.activity_id != ticket.activity_id:
        raise AppError(404, "not_found", WINDOW_GONE)
    # cancelled after the code was opened: no form to fill in for nothing. A ticket whose form was stored before
    # is let through (a look-up on this path only): the caller answers it 已签到 with its time (_answer_cancelled)
    if window.activity.cancelled and db.session().scalar(select(Checkin.id).where(Checkin.nonce == ticket.nonce)) \
            is None:
        _refuse_cancelled(window)
    return ticket, window


def _refuse_cancelled(window: CheckinWindow) -> NoReturn:
    _keep_and_raise(refuse(db.session(), "activity_cancelled", activity_id=window.activity_id,
                           window_id=window.id, openid=_openid(), address=request.remote_addr))


def _answer_cancelled(ticket: Ticket, window: CheckinWindow, openid: str | None, nonce: str | None) -> Any:
    """A cancelled 期's ticket let through by _live_ticket: the form stored before the cancellation, sent again
    (the phone's retry of a lost answer) or reloaded, is 已签到 with the stored time, since the check-in exists;
    anything else (another form, another WeChat account) is refused with the cancellation's own sentence."""
    answered = _answered(ticket, openid) if openid is not None and _nonce_of(ticket, nonce) else None
    if answered is None:
        _refuse_cancelled(window)
    return answered


def _openid() -> str | None:
    return load_openid(request.cookies.get(WECHAT_COOKIE))


def _typed() -> dict[str, str]:
    """What the trainee typed on the form, to show it again."""
    return {k: request.form.get(k, "") for k in IDENTITY_FIELDS}


def _nonce_of(ticket: Ticket, nonce: str | None) -> bool:
    """The form's nonce is the ticket's (compared in constant time)."""
    return nonce is not None and hmac.compare_digest(nonce.encode(), ticket.nonce.encode())


def _check_nonce(ticket: Ticket, nonce: str | None) -> None:
    """The form must be the one of the live ticket (an older tab's form is refused, not stored twice)."""
    if not _nonce_of(ticket, nonce):
        _keep_and_raise(refuse(db.session(), "ticket_expired", activity_id=ticket.activity_id,
                               window_id=ticket.window_id, openid=_openid(), address=request.remote_addr,
                               status=410))


def _record(ticket: Ticket, openid: str, identity: dict[str, Any] | None) -> ScanResult:
    try:
        result = record_scan(activity_id=ticket.activity_id, window_id=ticket.window_id, nonce=ticket.nonce,
                             scanned_at=ticket.issued_at, identity=identity, openid=openid,
                             address=request.remote_addr)
    except ScanRefused as exc:
        log.info("scan refused: %s (activity %s, window %s)", exc.reason, ticket.activity_id, ticket.window_id)
        raise
    # the access log has every answer; this line only helps when following one scan
    log.debug("check-in %s in window %s %s", result.checkin_id, ticket.window_id,
              "recorded" if result.created else "already recorded")
    return result


def _activity_title(window: CheckinWindow) -> str:
    a = window.activity
    return f"{a.project_title}（{a.seq_label}）"


def _page_ctx(ticket: Ticket, window: CheckinWindow) -> dict[str, Any]:
    return {"ticket": ticket, "window": window, "activity": window.activity, "activity_title": _activity_title(window),
            "expires_at": clock.fmt(ticket.expires_at(), "%H:%M")}


# ---- pages -------------------------------------------------------------------------------------

@pages.get("/checkin/s/<token>")
@access("public")
@_in_wechat
def scan_open(token: str) -> Any:
    """The QR URL. The code's freshness is judged here, once; then the ticket's own time runs."""
    now = clock.now()
    ticket = load_ticket(request.cookies.get(TICKET_COOKIE))
    claim = read_token(token)
    if not (ticket and claim and ticket.live(now) and (ticket.activity_id, ticket.window_id, ticket.slot) == claim):
        # a new scan (a reload of the code just opened keeps its ticket and nonce)
        session = db.session()
        try:
            window, slot = open_scan(session, token, now=now, address=request.remote_addr)
        except ScanRefused as exc:
            _keep_and_raise(exc)
        ticket = new_ticket(window.activity_id, window.id, slot, now)
    if _openid():
        response = redirect(url_for(".scan_page"))
    else:
        response = redirect(wechat.authorize_url(callback_url(), ticket.state))
    return set_ticket_cookie(response, ticket)


@pages.get("/checkin/wechat/callback")
@access("public")
@_in_wechat
def wechat_callback() -> Any:
    """WeChat OAuth (snsapi_base) returns here with ?code=&state=; the openid is kept in a signed cookie."""
    ticket, _window = _live_ticket()
    state = request.args.get("state", "")
    if not state or not hmac.compare_digest(state.encode(), ticket.state.encode()):
        raise AppError(400, STATE_MISMATCH, _MESSAGES[STATE_MISMATCH])
    try:
        openid = wechat.openid_for_code(request.args.get("code", ""))
    except wechat.SnapshotUserError as exc:
        refused = refuse(db.session(), "snapshot_user", activity_id=ticket.activity_id, window_id=ticket.window_id,
                         address=request.remote_addr, status=403)
        refused.message = exc.message  # WeChat's own wording tells the trainee what to tap
        _keep_and_raise(refused)
    return set_openid_cookie(redirect(url_for(".scan_page")), openid)


@pages.get("/checkin/scan")
@access("public")
@_in_wechat
def scan_page() -> Any:
    """The form on a first scan; one tap when this WeChat account is already bound to an identity."""
    ticket, window = _live_ticket()
    openid = _openid()
    if openid is None:  # cookie lost or too old: log in again within the same ticket
        return redirect(wechat.authorize_url(callback_url(), ticket.state))
    edit_asked = request.args.get("edit") == "1"
    if window.activity.cancelled:  # her form stored before the cancellation: 已签到; nothing to edit any more
        return _answer_cancelled(ticket, window, openid, ticket.nonce)
    answered = None if edit_asked else _answered(ticket, openid)
    if answered is not None:
        # her form was stored and she reloaded (or came back) before its answer arrived: 已签到 with its time,
        # not the one-tap page asking her to confirm what is done
        return answered
    binding = binding_of(db.session(), openid)
    # a form of hers sent after its ticket's time: what she typed comes back on this scan's form
    kept = load_kept(request.cookies.get(KEPT_COOKIE), openid)
    kept_values = kept[0] if kept else None
    edit = edit_asked or (kept is not None and kept[1])
    if binding is not None and edit and not binding.later:
        # 信息有变: the form with her 职称 and 单位 as on record; the ID number and mobile are typed again
        # (the record's are never written into a page; only what she typed herself comes back), and
        # record_scan keeps the new details with the check-in
        t = binding.trainee
        return _phone("form.html", values=kept_values or {"name": t.name, "title": t.title, "unit": t.unit},
                      errors={}, edit=True, kept=kept_values is not None, titles=TITLES, labels=FIELD_LABELS,
                      **_page_ctx(ticket, window))
    if binding is not None:  # an account bound after another (binding.later) is not shown her 职称 and 单位
        return _phone("tap.html", trainee=binding.trainee, later=binding.later, **_page_ctx(ticket, window))
    return _phone("form.html", values=kept_values or {}, errors={}, kept=kept_values is not None, titles=TITLES,
                  labels=FIELD_LABELS, **_page_ctx(ticket, window))


def _form_again(openid: str, errors: dict[str, str], form_ctx: dict[str, Any]) -> Any:
    """The form refused as typed, the fields marked; what she typed is also kept (sealed, this WeChat account's)
    for the form a reload or the next scan shows: a pull-to-refresh emptied it."""
    response = _phone("form.html", 422, values=_typed(), errors=errors, **form_ctx)
    return keep_typed(response, openid, _typed(), bool(form_ctx.get("edit")))


@pages.post("/checkin/scan")
@access("public")
@_in_wechat
def scan_submit() -> Any:
    """Store the check-in; a repeated submission (double tap, retry) answers with the same check-in."""
    answered = _answered_retry(request.form.get("nonce"))
    if answered is not None:
        return answered
    try:
        ticket, window = _live_ticket()
    except ScanRefused as exc:
        late_by = _openid()
        if exc.reason != "ticket_expired" or request.form.get("mode") != "form" or late_by is None:
            raise
        # typed for longer than the ticket's time (the lecture began meanwhile): refused as ever, and what she
        # typed waits for the form of her next scan
        window = _window_of(exc)
        response = _phone("refused.html", exc.status, code=exc.code, message=refusal_words(exc, window)[0],
                          hint=KEPT_LATE, kind_label=_kind(window))
        return keep_typed(response, late_by, _typed(), request.form.get("edit") == "1")
    openid = _openid()
    form_ctx = {"titles": TITLES, "labels": FIELD_LABELS, **_page_ctx(ticket, window)}
    nonce = request.form.get("nonce")
    if window.activity.cancelled:  # the retry of her form stored before the cancellation: 已签到, as stored
        return _answer_cancelled(ticket, window, openid, nonce)
    if nonce and openid and not _nonce_of(ticket, nonce):
        # the page of an earlier scan, sent after a newer one in another tab: shown again for the newer scan
        # with what was typed (nothing stored; the newer page's nonce decides)
        notice = f"您又扫描了一次二维码，本页已按最新一次扫码（{window.title}）更新，请核对后再次提交。"
        binding = binding_of(db.session(), openid)
        if binding is not None:
            return _phone("tap.html", 409, trainee=binding.trainee, later=binding.later, notice=notice,
                          **_page_ctx(ticket, window))
        return _phone("form.html", 409, values=_typed(), errors={"_schema": notice}, **form_ctx)
    _check_nonce(ticket, nonce)
    if openid is None:
        raise AppError(401, WECHAT_LOGIN_REQUIRED, _MESSAGES[WECHAT_LOGIN_REQUIRED])
    identity = None
    if request.form.get("mode") != "tap":
        form_ctx["edit"] = request.form.get("edit") == "1"
        identity, errors = load_form(_IDENTITY, request.form)
        if errors:
            return _form_again(openid, errors, form_ctx)
        bound = binding_of(db.session(), openid) if form_ctx["edit"] else None
        if bound is not None and pii.id_hash(identity["id_number"]) != bound.trainee.trainee_key:  # type: ignore[index]
            # a typo in her own number while changing her details: said next to the field, nothing flagged
            said = f"与此微信号登记的身份证号码（{bound.trainee.masked_id}）不一致，请核对。"
            return _form_again(openid, {"id_number": said}, form_ctx)
    try:
        recorded = _record(ticket, openid, identity)
    except AppError as exc:
        if exc.code == "id_name_mismatch" and identity is not None:
            # refused and kept; the form comes back as typed, the name marked (a typo is mended, not retyped)
            said = f"{exc.message}{HINTS['id_name_mismatch']}"
            return _form_again(openid, {"name": said, "id_number": "请核对。"}, form_ctx)
        if exc.code != "identity_required":
            raise
        # one tap, but this WeChat account is not (or no longer) bound: ask for the form
        return _phone("form.html", 422, values={}, errors={"_schema": exc.message}, **form_ctx)
    # 修改后签到 keeps the new details even when the window's check-in was already there: say so
    return forget_kept(_phone("done.html", recorded=recorded, scanned_at=clock.fmt(recorded.scanned_at),
                              details_saved=bool(form_ctx.get("edit")), **_page_ctx(ticket, window)))


# ---- JSON API ----------------------------------------------------------------------------------

# answered by the form itself on the page (the fields marked), so with no hint here either
_NO_HINT = frozenset({"invalid_input", "bad_json", "identity_required"})


@api.errorhandler(AppError)
def _refusal_json(exc: AppError) -> Any:
    """The common error shape, in the words of the refused page (refusal_words) and with its hint."""
    message, hint = refusal_words(exc, _window_of(exc))
    response, status = error_response(exc.status, exc.code, message, exc.fields)
    if exc.code not in _NO_HINT:
        body = response.get_json()
        body["error"]["hint"] = hint
        response = jsonify(body)
    return response, status


@api.route("/scan", methods=["GET"])
@access("public")
@api.response(200, TicketOutSchema)
@api.alt_response(403, schema=ScanRefusalSchema, description="本期已取消举办或已标记未举办（activity_cancelled）")
@api.alt_response(410, schema=ScanRefusalSchema, description="扫码凭证已过期（ticket_expired）")
@api.doc(summary="当前扫码凭证（需扫码凭证 Cookie cme_scan 与微信身份 Cookie cme_wx）")
def api_ticket() -> Any:
    ticket, window = _live_ticket()
    openid = _openid()
    binding = binding_of(db.session(), openid) if openid else None
    trainee = binding.trainee if binding else None
    # as the tap page: an account bound after another is told the name and masked ID, not 职称 and 单位
    identity = ({"name": trainee.name, "masked_id": trainee.masked_id} if binding and binding.later else trainee)
    return {"activity_id": window.activity_id, "activity_title": _activity_title(window), "window_id": window.id,
            "window_title": window.title, "window_kind": window.kind_label, "nonce": ticket.nonce,
            "scanned_at": ticket.issued_at, "expires_at": ticket.expires_at(), "bound": trainee is not None,
            "identity": identity}


@api.route("/scan", methods=["POST"])
@access("public")
@api.arguments(PhoneScanSchema())  # an instance: webargs makes a new one from a class on every request
@api.response(200, PhoneScanResultSchema)
@api.alt_response(403, schema=ScanRefusalSchema, description="拒绝签到：不在时段内、本期已取消、微信号已绑定他人等")
@api.alt_response(410, schema=ScanRefusalSchema, description="扫码凭证已过期或表单不是当前扫码的（ticket_expired）")
@api.doc(summary="扫码签到（首次扫码带身份信息；已绑定的微信号只需 nonce）")
def api_scan(args: dict[str, Any]) -> Any:
    ticket = load_ticket(request.cookies.get(TICKET_COOKIE))
    if ticket is not None and _late_retry(ticket, args["nonce"]):
        # its stored check-in, as the page's _answered_retry says it (a look-up on this path only)
        stored = _stored(ticket, _openid())
        if stored is not None:
            return jsonify(dump_scan_result(stored[0]))
    ticket = _ticket(ticket)  # the window is judged by record_scan, in the same round trip
    _check_nonce(ticket, args["nonce"])
    openid = _openid()
    if openid is None:
        raise AppError(401, WECHAT_LOGIN_REQUIRED, _MESSAGES[WECHAT_LOGIN_REQUIRED])
    given = {k: args[k] for k in IDENTITY_FIELDS if k in args}
    identity = None
    if given:
        try:
            identity = _IDENTITY.load(given)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            fields = {k: (v[0] if isinstance(v, list) and v else v) for k, v in messages.items()}
            raise AppError(422, "invalid_input", "签到信息有误，请按提示修改。", fields) from None
    result = _record(ticket, openid, identity)
    # PhoneScanResultSchema's JSON, written without marshmallow (schemas.dump_scan_result)
    return jsonify(dump_scan_result(result))


__all__ = ["pages", "api", "HINTS"]
