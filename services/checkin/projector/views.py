"""二维码考勤 → 微信二维码考勤: the projector page, its live status and its QR image.

The page needs the owning institution's login. The live status and the image authenticate with the
projector token in their URL instead (see services.py): they are declared public because the token,
not a login, is the authorisation — signed, scoped to one activity and window, valid 24 hours — so
the page keeps working for a whole day after the 12-hour login cookie has run out (or the office logged out),
and stops when the sessions of whoever opened it are ended (停用, password reset).
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import Schema

from services.common.auth import access, current
from services.common.errors import AppError
from services.common.schemas import fields

from ..db import db
from ..windows.services import get_window
from . import services

pages = Blueprint("checkin_projector", __name__, template_folder="templates")
api = ApiBlueprint("checkin_projector_api", __name__, url_prefix="/checkin/api",
                   description="微信二维码考勤：投影页面的令牌与实时状态")
BEARER = [{"bearer": []}]


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


@pages.get("/checkin/activities/<int:activity_id>/windows/<int:window_id>/projector")
@access("institution")
def projector_page(activity_id: int, window_id: int) -> Any:
    session = db.session()
    window = get_window(session, current(), activity_id, window_id)  # type: ignore[arg-type]
    window.activity.refuse_if_cancelled(services.CANCELLED_OPEN)
    ptoken = services.issue_ptoken(window, current())  # type: ignore[arg-type]
    st = services.state_of(session, window)
    resp = Response(render_template("checkin/projector/page.html", w=window, a=window.activity, st=st,
                                    svg=st.svg(), ptoken=ptoken, live=services.live_dict(st, ptoken)))
    return _no_store(resp)


@pages.get("/checkin/projector/<ptoken>/live")
@access("public")  # authorised by the signed projector token in the URL (see the module docstring)
def projector_live(ptoken: str) -> Any:
    try:
        st = services.live_state(db.session(), ptoken)
    except AppError as exc:  # the page's script reads JSON whatever it asked for
        body = {"error": {"code": exc.code, "message": exc.message, "fields": {}, "request_id": g.get("request_id")}}
        return _no_store(jsonify(body)), exc.status
    return _no_store(jsonify(services.live_dict(st, ptoken)))


@pages.get("/checkin/projector/<ptoken>/qr.svg")
@access("public")  # authorised by the signed projector token in the URL (see the module docstring)
def projector_qr(ptoken: str) -> Any:
    """The current code as SVG (of the window the projector shows now), cacheable until its slot ends; an old slot,
    or a window the projector has moved on from, is never served again."""
    session = db.session()
    window = services.window_for_ptoken(session, ptoken)
    st = services.state_of(session, window)
    if not st.show_code:
        raise AppError(404, "window_not_open", "当前不在刷卡周期的时间内，没有二维码。")
    asked = {"slot": str(st.slot), "w": str(st.window_id)}
    if any(request.args.get(k) not in (None, now) for k, now in asked.items()):
        raise AppError(404, "qr_slot_gone", "二维码已更新，请刷新。")
    resp = Response(st.svg() or "", mimetype="image/svg+xml")
    resp.headers["Cache-Control"] = f"private, max-age={max(0, math.floor(st.seconds_left))}"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return resp


# ---- JSON API ----------------------------------------------------------------------------------

class ProjectorOutSchema(Schema):
    ptoken = fields.String(metadata={"description": "投影令牌（24 小时有效，仅限本刷卡周期）"})
    live_url = fields.String(metadata={"description": "实时状态：{state, slot, seconds_left, count, svg_url}"})
    svg_url = fields.String(allow_none=True, metadata={"description": "当前二维码（SVG）；不在签到时间内为空"})
    state = fields.String()
    count = fields.Integer()
    seconds_left = fields.Float()
    window_id = fields.Integer(metadata={"description": "当前显示的刷卡周期（本时段结束后自动转到本活动的下一时段）"})
    title = fields.String(metadata={"description": "当前显示的刷卡周期名称"})
    text = fields.String(metadata={"description": "投影上显示的状态说明"})


@api.route("/activities/<int:activity_id>/windows/<int:window_id>/projector", methods=["GET"])
@access("institution")
@api.response(200, ProjectorOutSchema)
@api.doc(security=BEARER, summary="微信二维码考勤：取得投影令牌与当前状态")
def api_projector(activity_id: int, window_id: int) -> Any:
    session = db.session()
    window = get_window(session, current(), activity_id, window_id)  # type: ignore[arg-type]
    window.activity.refuse_if_cancelled(services.CANCELLED_OPEN)
    ptoken = services.issue_ptoken(window, current())  # type: ignore[arg-type]
    st = services.state_of(session, window)
    live = services.live_dict(st, ptoken)
    return {"ptoken": ptoken, "live_url": f"/checkin/projector/{ptoken}/live", "svg_url": live["svg_url"],
            "state": st.state, "count": st.count, "seconds_left": live["seconds_left"], "window_id": st.window_id,
            "title": st.title, "text": st.text}
