"""Events between services (DESIGN §3): a documented envelope, a catalogue of named events with
their payload schemas, an outbox written in the producer's transaction, and idempotent consumers.

Envelope (JSON, never pickle):
    {"id": "<uuid4>", "name": "offering.approved", "time": "<ISO-8601 UTC>",
     "producer": "projects", "version": 1, "payload": {...}}

The relay (services.common.relay) moves outbox rows to each consumer's Celery queue on Redis
after commit; a row stays pending until the broker took it, so nothing is lost while Redis or a
worker is down. A consumer records the event id in its own processed_events table in the same
transaction as its change, so a redelivered event changes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, UniqueConstraint, insert
from sqlalchemy.orm import Session

from . import clock
from .db import UTCDateTime, insert_rows_or_skip

log = logging.getLogger(__name__)


class _Payload(Schema):
    class Meta:
        unknown = EXCLUDE  # newer producers may add fields; consumers ignore what they do not know


class ScheduleItemSchema(_Payload):
    date = fields.Date(required=True)
    start = fields.Time(required=True)
    end = fields.Time(required=True)
    title = fields.String(load_default="")


class OfferingApprovedSchema(_Payload):
    offering_id = fields.Integer(required=True)
    institution_id = fields.Integer(required=True)
    institution_name = fields.String(required=True)
    project_id = fields.Integer(required=True)
    project_number = fields.String(required=True)
    project_title = fields.String(required=True)
    year = fields.Integer(required=True)
    seq = fields.Integer(required=True)
    credit_class = fields.String(required=True)
    credit_value = fields.Decimal(required=True, as_string=True)
    hours = fields.Decimal(required=True, as_string=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    venue = fields.String(required=True)
    mode = fields.String(required=True, validate=validate.OneOf(["线下", "线上", "线上线下"]))
    schedule = fields.List(fields.Nested(ScheduleItemSchema), load_default=list)


# The flags a stored check-in may carry (checkin.recorded's `flags`), as the institution reads them: checkin's
# pages and credits' attendance API say the same sentence
CHECKIN_FLAGS = {
    "many_identities_same_address": "同一网络地址短时间内为多个身份签到。",
    "id_on_new_wechat": "该身份证号码此前绑定了其他微信号。",
    "forced": "由举办单位代为签到。",
}


class CheckinRecordedSchema(_Payload):
    """One stored check-in. ID number and mobile travel only encrypted (services.common.pii)."""

    checkin_id = fields.Integer(required=True)
    activity_id = fields.Integer(required=True)
    offering_id = fields.Integer(required=True)
    institution_id = fields.Integer(required=True)
    window_id = fields.Integer(required=True)
    window_kind = fields.String(required=True, validate=validate.OneOf(["sign_in", "sign_out"]))
    window_starts_at = fields.AwareDateTime(required=True)
    window_ends_at = fields.AwareDateTime(required=True)
    # the 刷卡周期's 标题 as the office named it ("第一天上午 签到"); events written before it travelled lack it
    window_title = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    trainee_key = fields.String(required=True, validate=validate.Length(equal=64))
    name = fields.String(required=True)
    id_enc = fields.String(required=True)
    mobile_enc = fields.String(required=True)
    title = fields.String(required=True)  # the trainee's 职称, not the window's
    unit = fields.String(required=True)
    scanned_at = fields.AwareDateTime(required=True)
    forced = fields.Boolean(required=True)
    flags = fields.List(fields.String(), load_default=list)


class CheckinWindowChangedSchema(_Payload):
    """A 刷卡周期 was created (by the office, or from the filing's 日程 when the offering was approved) or its kind,
    times or 标题 changed (an edit, audit-logged in checkin with its reason when it had scans). The event carries
    the whole window as it is now."""

    activity_id = fields.Integer(required=True)
    offering_id = fields.Integer(required=True)
    window_id = fields.Integer(required=True)
    window_kind = fields.String(required=True, validate=validate.OneOf(["sign_in", "sign_out"]))
    window_starts_at = fields.AwareDateTime(required=True)
    window_ends_at = fields.AwareDateTime(required=True)
    # absent from events written before it travelled: the consumer then leaves the title it has
    window_title = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class CheckinWindowDeletedSchema(CheckinWindowChangedSchema):
    """A 刷卡周期 was deleted in checkin (only one without check-ins can be): the window as it was, and when. Final:
    a window id is never used again, so a window_changed that arrives after it (or a creation that arrives late)
    never brings the window back."""

    deleted_at = fields.AwareDateTime(required=True)


class GrantedAwardSchema(_Payload):
    """One current (not withdrawn) award of the offering. Manual entries travel with method "manual"."""

    award_id = fields.Integer(required=True)
    trainee_key = fields.String(required=True, validate=validate.Length(equal=64))
    name = fields.String(required=True)
    id_enc = fields.String(required=True)
    title = fields.String(load_default="")
    unit = fields.String(load_default="")
    credit_class = fields.String(required=True)
    credit_value = fields.Decimal(required=True, as_string=True)
    activity_date = fields.Date(required=True)
    method = fields.String(required=True, validate=validate.OneOf(["attendance", "manual"]))
    state = fields.String(required=True, validate=validate.OneOf(["pending", "effective"]))
    # her 代签 (forced check-ins) in the offering: the report's 考勤导入 shows them to the committee too
    forced = fields.Integer(load_default=0, validate=validate.Range(min=0))


class CreditsGrantedSchema(_Payload):
    """The whole current award list of one offering (a newer event replaces an older one's list)."""

    offering_id = fields.Integer(required=True)
    institution_id = fields.Integer(required=True)
    awards = fields.List(fields.Nested(GrantedAwardSchema), required=True)


class ReportEventSchema(_Payload):
    """A change of state of an offering's execution report (执行情况反馈)."""

    offering_id = fields.Integer(required=True)
    institution_id = fields.Integer(required=True)
    report_id = fields.Integer(required=True)
    reason = fields.String(load_default="")  # report.returned: the committee's reason


class DecisionSchema(_Payload):
    """The committee decided on a filing (项目举办前登记) or an execution report: its institution is told by SMS."""

    kind = fields.String(required=True, validate=validate.OneOf(["filing", "report"]))
    # unheld: the committee marked an approved 期 未举办 (a filing only)
    decision = fields.String(required=True, validate=validate.OneOf(["approved", "returned", "unheld"]))
    object_id = fields.Integer(required=True)  # the filing's or the report's id
    offering_id = fields.Integer(required=True)
    institution_id = fields.Integer(required=True)


class EffectiveAwardSchema(_Payload):
    """What a certificate needs of one effective award, so certs never has to ask anyone."""

    award_id = fields.Integer(required=True)
    trainee_key = fields.String(required=True, validate=validate.Length(equal=64))
    name = fields.String(required=True)
    id_enc = fields.String(required=True)
    project_number = fields.String(required=True)
    project_title = fields.String(required=True)
    institution_name = fields.String(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    credit_class = fields.String(required=True)
    credit_value = fields.Decimal(required=True, as_string=True)
    activity_date = fields.Date(required=True)
    effective_at = fields.AwareDateTime(required=True)


class CreditsEffectiveSchema(_Payload):
    """Every effective award of one offering (a redelivery or a later event repeats them; certs upserts)."""

    offering_id = fields.Integer(required=True)
    institution_id = fields.Integer(required=True)
    awards = fields.List(fields.Nested(EffectiveAwardSchema), required=True)


class CreditsWithdrawnSchema(_Payload):
    """An award was withdrawn (撤销): a certificate made of it is revoked from that time."""

    award_id = fields.Integer(required=True)
    offering_id = fields.Integer(required=True)
    withdrawn_at = fields.AwareDateTime(required=True)
    reason = fields.String(required=True)


# Who ended an approved 期 before it was held: the office (取消举办, before it starts) or the committee (标记未举办)
CANCELLED_BY = {"institution": "举办机构取消举办", "committee": "省继续医学教育委员会标记未举办"}


class OfferingCancelledSchema(_Payload):
    """An approved 期 is not (or was not) held. Final: a later offering.approved of the same offering (a catalogue
    correction resent before this one, a redelivery) never opens it again, and one that comes after this event
    arrives cancelled."""

    offering_id = fields.Integer(required=True)
    institution_id = fields.Integer(required=True)
    cancelled_at = fields.AwareDateTime(required=True)
    by = fields.String(required=True, validate=validate.OneOf(sorted(CANCELLED_BY)))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class CatalogueCountedSchema(_Payload):
    """How many projects of a year's catalogue (项目目录) one host institution has, and their planned 期, as of
    `counted_at`: 年度统计 lists a host that held nothing too. Absolute figures: a later count replaces one."""

    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))
    institution_id = fields.Integer(required=True)
    institution_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    projects = fields.Integer(required=True, validate=validate.Range(min=0))
    planned = fields.Integer(required=True, validate=validate.Range(min=0))  # the projects' 举办期数 together
    counted_at = fields.AwareDateTime(required=True)


class CreditsNameCorrectedSchema(_Payload):
    """The committee corrected a trainee's name (学员账号 → 更正姓名): her awards, and so her certificates, show it."""

    trainee_key = fields.String(required=True, validate=validate.Length(equal=64))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))


@dataclass(frozen=True)
class EventSpec:
    name: str
    producer: str
    consumers: tuple[str, ...]
    schema: type[Schema]
    doc: str


CATALOGUE: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        EventSpec("offering.approved", "projects", ("checkin", "credits"), OfferingApprovedSchema,
                  "The committee approved the pre-event filing of an offering: checkin lists it as an "
                  "activity, credits records the project's credit class and value."),
        EventSpec("offering.cancelled", "projects", ("checkin", "credits"), OfferingCancelledSchema,
                  "An approved offering will not be held (the office's 取消举办 before it starts) or was not (the "
                  "committee's 标记未举办): checkin closes the activity (no scan, no 代签, no projector), credits "
                  "takes no more 授分 and counts it apart in 年度统计. Final, whatever order the events arrive in."),
        EventSpec("checkin.recorded", "checkin", ("credits",), CheckinRecordedSchema,
                  "A check-in was stored (scanned or forced): credits keeps its own copy for attendance "
                  "analysis, with the window's 标题 (window_title) so 考勤分析 names it."),
        EventSpec("checkin.window_changed", "checkin", ("credits",), CheckinWindowChangedSchema,
                  "A 刷卡周期 was created (by the office, or from the 日程 at approval) or edited (its kind, times or "
                  "标题): credits keeps its copy of the window, so 考勤分析 lists it (with 0 scans too), and its "
                  "copies of the check-ins take the new window (ranges, 签到/签退 pairing, the window's name)."),
        EventSpec("checkin.window_deleted", "checkin", ("credits",), CheckinWindowDeletedSchema,
                  "A 刷卡周期 without check-ins was deleted: credits no longer lists it in 考勤分析. Final, whatever "
                  "order the events arrive in (a window_changed after it does not bring the window back)."),
        EventSpec("credits.granted", "credits", ("projects",), CreditsGrantedSchema,
                  "The award list of an offering changed (授分, a manual entry, a withdrawal, a 恢复): projects "
                  "keeps the list for the execution report's attendance page (导入)."),
        EventSpec("report.submitted", "projects", ("credits",), ReportEventSchema,
                  "The institution submitted (提交) the offering's execution report: credits stops withdrawals."),
        EventSpec("report.returned", "projects", ("credits",), ReportEventSchema,
                  "The committee returned the report: it is editable again, and so are the offering's awards."),
        EventSpec("report.approved", "projects", ("credits",), ReportEventSchema,
                  "The committee approved the report: credits makes the offering's pending attendance awards "
                  "effective (never manual ones)."),
        EventSpec("projects.decided", "projects", ("projects",), DecisionSchema,
                  "The committee approved or returned a filing or an execution report, or marked an approved 期 "
                  "未举办: projects' own worker tells the institution's 机构负责人 by SMS (after the decision "
                  "committed, retried until sent)."),
        EventSpec("catalogue.counted", "projects", ("credits",), CatalogueCountedSchema,
                  "A year's catalogue changed for a host institution (import, 删除, 更正机构名称): credits keeps its "
                  "count of projects and planned 期, so 年度统计 lists hosts that held nothing."),
        EventSpec("credits.effective", "credits", ("certs",), CreditsEffectiveSchema,
                  "An offering's awards became effective (its report approved, or the committee's 恢复 of one "
                  "withdrawn by mistake, as a new award): certs keeps what each certificate needs."),
        EventSpec("credits.withdrawn", "credits", ("certs",), CreditsWithdrawnSchema,
                  "An award was withdrawn: certs marks its certificate revoked (one certs does not hold yet is "
                  "noted, and if its credits.effective comes later the award arrives revoked)."),
        EventSpec("credits.name_corrected", "credits", ("certs", "projects", "checkin"),
                  CreditsNameCorrectedSchema,
                  "The committee corrected a trainee's name: certs puts it on her awards, and her certificates "
                  "already rendered are rendered again (same numbers) at their next export, and it keeps the latest "
                  "correction, so an effective list sent before it takes the corrected name; projects puts it on "
                  "the execution reports' 考勤导入 (approved ones included); checkin on her record (签到名单)."),
    )
}


class UnknownEvent(ValueError):
    pass


@functools.cache
def schema_of(name: str) -> Schema:
    """One schema instance per event: loading and dumping keep no state on it, while making one copies each of
    its fields (a fifth of credits' worker's CPU for each check-in event)."""
    return CATALOGUE[name].schema()


def describe(events: Sequence[tuple[str, str]]) -> str:
    """What a message's headers say of the events it carries, (name, id) each: Celery would write the repr of its
    arguments there (names, encrypted ID numbers); the names and ids are also all a log or monitor should see."""
    names = ",".join(sorted({name for name, _id in events}))
    if len(events) == 1:
        return f"({names} {events[0][1]})"
    return f"({len(events)} events {names} {events[0][1]} .. {events[-1][1]})"


def make_envelope(name: str, producer: str, payload: dict[str, Any]) -> dict[str, Any]:
    spec = CATALOGUE.get(name)
    if spec is None:
        raise UnknownEvent(name)
    if spec.producer != producer:
        raise ValueError(f"{producer} may not produce {name}")
    schema = schema_of(name)
    # dump then load: what travels is JSON-safe and passes the same validation the consumer runs
    body = schema.dump(payload)
    schema.load(body)
    return {"id": str(uuid.uuid4()), "name": name, "time": clock.now().isoformat(), "producer": producer,
            "version": 1, "payload": body}


def outbox_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The outbox (producer side) and processed_events (consumer side), same layout in every service."""
    outbox = Table(
        "outbox", metadata,
        Column("id", Integer, primary_key=True),
        Column("event_id", String(36), nullable=False),
        Column("name", String(64), nullable=False),
        Column("consumer", String(32), nullable=False),
        Column("envelope", Text, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("sent_at", UTCDateTime(), nullable=True, index=True),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text, nullable=True),
        UniqueConstraint("event_id", "consumer"),
    )
    processed = Table(
        "processed_events", metadata,
        Column("event_id", String(36), primary_key=True),
        Column("name", String(64), nullable=False),
        Column("processed_at", UTCDateTime(), nullable=False),
    )
    return outbox, processed


def emit(session: Session, outbox: Table, producer: str, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Write an event to the outbox inside the caller's transaction (it leaves only if that commits)."""
    envelope = make_envelope(name, producer, payload)
    text_env = json.dumps(envelope, ensure_ascii=False)
    for consumer in CATALOGUE[name].consumers:
        session.execute(insert(outbox).values(event_id=envelope["id"], name=name, consumer=consumer,
                                              envelope=text_env, created_at=clock.now(), attempts=0))
    return envelope


Handler = Callable[[Session, dict[str, Any], dict[str, Any]], None]
Item = tuple[dict[str, Any], dict[str, Any]]  # (payload as loaded, envelope)
ManyHandler = Callable[[Session, list[Item]], None]


def batched(many: ManyHandler) -> Handler:
    """A handler that takes a run of events of its name together, as (payload, envelope) pairs, in the order they
    came: a few statements for a message instead of a few for each event. The result is also the handler of
    one event; consume_all gives it each run of consecutive events of its name."""

    @functools.wraps(many)
    def one(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
        many(session, [(payload, envelope)])

    one.many = many  # type: ignore[attr-defined]
    return one


def consume(session: Session, processed: Table, envelope: dict[str, Any], handlers: dict[str, Handler]) -> bool:
    """Apply one event exactly once. Returns False when it was already processed (or not for us)."""
    return consume_all(session, processed, [envelope], handlers)[0]


def consume_all(session: Session, processed: Table, envelopes: Sequence[dict[str, Any]],
                handlers: dict[str, Handler]) -> list[bool]:
    """Apply a message's events in the caller's transaction, each exactly once: whether each was applied (an id
    given twice is applied once; an event not for us is not). A run of consecutive events of one name whose
    handler is ``batched`` goes to it together, in order."""
    mine = []
    for envelope in envelopes:
        name = envelope.get("name")
        if name in CATALOGUE and name in handlers:
            mine.append(envelope)
        else:
            log.warning("ignoring event %s", name)
    # One statement claims the event ids: an id processed before, or by a concurrent delivery (PostgreSQL waits
    # for that one's transaction and then skips it), does not come back. A look-up, a savepoint, the insert and
    # its release were four round trips for every event a worker takes, most of its time in a burst.
    rows = [{"event_id": str(e["id"]), "name": e["name"], "processed_at": clock.now()} for e in mine]
    claimed = set(insert_rows_or_skip(session, processed, rows).scalars()) if rows else set()
    outcomes = []
    run: list[Item] = []  # claimed events of one batched name, not yet applied
    for envelope in envelopes:
        event_id = str(envelope.get("id"))
        if event_id not in claimed:
            outcomes.append(False)
            continue
        claimed.discard(event_id)
        name = envelope["name"]
        if run and run[0][1]["name"] != name:
            _apply_run(session, handlers, run)
        item = (schema_of(name).load(envelope["payload"]), envelope)
        if hasattr(handlers[name], "many"):
            run.append(item)
        else:
            handlers[name](session, *item)
        outcomes.append(True)
    _apply_run(session, handlers, run)
    return outcomes


def _apply_run(session: Session, handlers: dict[str, Handler], run: list[Item]) -> None:
    if run:
        handlers[run[0][1]["name"]].many(session, list(run))  # type: ignore[attr-defined]
        run.clear()


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)
