"""A trainee's scan stored by one call of a PostgreSQL function: the rules of record_checkin, in the database.

A lecture hall checks in hundreds of phones within minutes. Done through the ORM, a scan took seven round
trips (window, nonce, trainee, binding, address count, check-in, outbox) inside BEGIN ... COMMIT, and most of
its time went on building those statements. ``checkin_record_scan`` does the same work in one statement, in
one transaction of its own (the caller runs it in autocommit), and answers with an outcome:

    ok                      stored (created) or the check-in that already answers this nonce / trainee / window;
                            r_kind is its window's kind (the phone says 已签到 or 已签退 without a look-up)
    not_found               the window does not exist or is not the ticket's activity's; nothing stored
    activity_cancelled      the activity is 取消举办 / 标记未举办 (Activity.refuse_if_cancelled); the refusal is kept
    not_in_window           the scan's time is outside the window; the refusal is kept in refused_scans
    wechat_bound_to_other   this WeChat account is bound to another ID number; the refusal is kept
    id_name_mismatch        the name typed is not the one on record for the ID number (a scan never changes a
                            name); the refusal is kept. Typed on a WeChat account other than the trainee's own
                            with the right name, it checks in, flagged, changing nothing stored
    identity_required       a one-tap scan by a WeChat account bound to nobody; nothing stored

A binding made by a concurrent scan between the check and the insert raises SQLSTATE BOUND_ELSEWHERE
(the whole call is rolled back: no identity is kept for someone else's WeChat account); the caller keeps the
refusal. The stored check-in's ``checkin.recorded`` goes to the outbox in the same transaction, its envelope
written as services.common.events.make_envelope writes it (the test compares both).

Written for a hall's rate. In PL/pgSQL each statement, and each condition holding a sub-query, starts and ends
an executor of its own: the first look-up reads the window, the check-in an earlier submission of this nonce made
and the WeChat account's binding together; a sub-query runs only where it decides something; the address's recent
check-ins are read in one go. Counted by callgrind on one backend, a first scan went from 1.55 to 1.42 million
instructions with this text (of which PostgreSQL no longer builds two plans anew on every call, as it did for the
text before).

Institution-forced check-ins, and every check-in on SQLite (the embedded default of ``make up``), go through
record_checkin in Python; tests/checkin/test_record_checkin.py runs each rule through both.
"""

from __future__ import annotations

from typing import Any

BOUND_ELSEWHERE = "CKB01"

# CREATE OR REPLACE cannot change a function's arguments or result: such a change drops it first (as here).
DROP_RECORD_SCAN = "DROP FUNCTION IF EXISTS checkin_record_scan"
CHECKIN_RECORD_SCAN = r"""
CREATE FUNCTION checkin_record_scan(
    p_activity_id integer, p_window_id integer, p_nonce text, p_scanned_at timestamptz, p_now timestamptz,
    p_openid text, p_address_hash text, p_since timestamptz, p_max_identities integer,
    p_trainee_key text, p_id_enc text, p_name text, p_mobile_enc text, p_mobile_hash text, p_title text,
    p_unit text, p_event_id text, p_event_time text, p_consumers text[],
    OUT r_outcome text, OUT r_checkin_id integer, OUT r_scanned_at timestamptz, OUT r_created boolean,
    OUT r_forced boolean, OUT r_name text, OUT r_kind text)
LANGUAGE plpgsql AS $fn$
DECLARE
    w record;
    c record;
    v_trainee_id integer;
    v_trainee_key text;
    v_name text;
    v_id_enc text;
    v_mobile_enc text;
    v_title text;
    v_unit text;
    v_new boolean := false;
    v_bound integer;
    v_later boolean;
    v_binding integer;
    v_flags text[] := '{}';
    v_seen integer[] := '{}';
    v_rows integer := 0;
    v_other integer;
    v_envelope text;
    v_event_id text := coalesce(p_event_id, gen_random_uuid()::text);
BEGIN
    r_created := false;
    r_forced := false;
    -- one look-up: the window and its activity, the check-in this nonce already answered with (a repeated
    -- submission: double tap, retry), and the trainee this WeChat account is bound to
    SELECT cw.id, cw.activity_id, cw.kind, cw.starts_at, cw.ends_at, cw.title, a.offering_id, a.institution_id,
           a.cancelled_at,
           (SELECT ck.id FROM checkins ck WHERE ck.nonce = p_nonce) AS answered_by,
           bt.id AS bound_id, bt.trainee_key AS bound_key, bt.name AS bound_name, bt.id_enc AS bound_id_enc,
           bt.mobile_enc AS bound_mobile_enc, bt.title AS bound_title, bt.unit AS bound_unit,
           b.later AS bound_later
      INTO w
      FROM checkin_windows cw JOIN activities a ON a.id = cw.activity_id
      LEFT JOIN (wechat_bindings b JOIN trainees bt ON bt.id = b.trainee_id) ON b.openid = p_openid
     WHERE cw.id = p_window_id;
    IF NOT FOUND OR w.activity_id <> p_activity_id THEN
        r_outcome := 'not_found';
        RETURN;
    END IF;
    r_kind := w.kind;  -- the answer says 已签到 or 已签退, whichever way it goes

    IF w.answered_by IS NOT NULL THEN
        SELECT ck.id, ck.scanned_at, ck.forced, tr.name::text INTO r_checkin_id, r_scanned_at, r_forced, r_name
          FROM checkins ck JOIN trainees tr ON tr.id = ck.trainee_id
         WHERE ck.id = w.answered_by;
        r_outcome := 'ok';
        RETURN;
    END IF;

    IF w.cancelled_at IS NOT NULL THEN
        INSERT INTO refused_scans (at, activity_id, window_id, reason, openid, trainee_key, address_hash)
        VALUES (p_now, w.activity_id, w.id, 'activity_cancelled', p_openid, NULL, p_address_hash);
        r_outcome := 'activity_cancelled';
        RETURN;
    END IF;

    IF NOT (w.starts_at <= p_scanned_at AND p_scanned_at <= w.ends_at) THEN
        INSERT INTO refused_scans (at, activity_id, window_id, reason, openid, trainee_key, address_hash)
        VALUES (p_now, w.activity_id, w.id, 'not_in_window', p_openid, NULL, p_address_hash);
        r_outcome := 'not_in_window';
        RETURN;
    END IF;

    IF p_trainee_key IS NOT NULL THEN
        -- one WeChat account binds to one ID number: refused before anything typed is kept
        IF w.bound_key <> p_trainee_key THEN
            INSERT INTO refused_scans (at, activity_id, window_id, reason, openid, trainee_key, address_hash)
            VALUES (p_now, w.activity_id, w.id, 'wechat_bound_to_other', p_openid, p_trainee_key, p_address_hash);
            r_outcome := 'wechat_bound_to_other';
            RETURN;
        END IF;
        -- later details win (a new mobile, a new unit), typed on the trainee's own WeChat account (the first
        -- bound, not one bound later beside it) or on the first; the ID number and the name stay (a name is
        -- corrected by the committee, 更正姓名)
        INSERT INTO trainees AS tr (trainee_key, id_enc, name, mobile_enc, mobile_hash, title, unit, created_at,
                                    updated_at)
        VALUES (p_trainee_key, p_id_enc, p_name, p_mobile_enc, p_mobile_hash, p_title, p_unit, p_now, p_now)
        ON CONFLICT (trainee_key) DO UPDATE SET mobile_enc = EXCLUDED.mobile_enc,
            mobile_hash = EXCLUDED.mobile_hash, title = EXCLUDED.title, unit = EXCLUDED.unit,
            updated_at = EXCLUDED.updated_at
         WHERE tr.name = EXCLUDED.name AND ((w.bound_id IS NOT NULL AND NOT w.bound_later)
            OR NOT EXISTS (SELECT 1 FROM wechat_bindings b WHERE b.trainee_id = tr.id AND b.openid <> p_openid))
        RETURNING tr.id, tr.trainee_key, tr.name, tr.id_enc, tr.mobile_enc, tr.title, tr.unit,
                  tr.created_at = tr.updated_at  -- both set only on insert: a new trainee
        INTO v_trainee_id, v_trainee_key, v_name, v_id_enc, v_mobile_enc, v_title, v_unit, v_new;
        IF NOT FOUND THEN
            -- another name than the one on record, or the ID number is bound to another WeChat account: what was
            -- typed changes nothing, and it checks in (flagged below) only with the name on record
            SELECT tr.id, tr.trainee_key, tr.name, tr.id_enc, tr.mobile_enc, tr.title, tr.unit, false
              INTO v_trainee_id, v_trainee_key, v_name, v_id_enc, v_mobile_enc, v_title, v_unit, v_new
              FROM trainees tr WHERE tr.trainee_key = p_trainee_key;
            IF v_name <> p_name THEN
                INSERT INTO refused_scans (at, activity_id, window_id, reason, openid, trainee_key, address_hash)
                VALUES (p_now, w.activity_id, w.id, 'id_name_mismatch', p_openid, p_trainee_key, p_address_hash);
                r_outcome := 'id_name_mismatch';
                RETURN;
            END IF;
        END IF;
    ELSIF w.bound_id IS NULL THEN
        r_outcome := 'identity_required';
        RETURN;
    ELSE
        v_trainee_id := w.bound_id;
        v_trainee_key := w.bound_key;
        v_name := w.bound_name;
        v_id_enc := w.bound_id_enc;
        v_mobile_enc := w.bound_mobile_enc;
        v_title := w.bound_title;
        v_unit := w.bound_unit;
    END IF;

    -- bind the WeChat account (not yet bound: bound to this trainee was found above, to another refused); one
    -- bound while another is bound to the ID number marks every check-in made through it
    IF p_openid IS NOT NULL AND w.bound_id IS NULL THEN
        v_later := NOT v_new AND EXISTS (SELECT 1 FROM wechat_bindings b
                                          WHERE b.trainee_id = v_trainee_id AND b.openid <> p_openid);
        INSERT INTO wechat_bindings (openid, trainee_id, bound_at, later) VALUES (p_openid, v_trainee_id, p_now,
                                                                                  v_later)
        ON CONFLICT (openid) DO NOTHING RETURNING id INTO v_binding;
        IF v_binding IS NULL THEN
            SELECT b.trainee_id INTO v_bound FROM wechat_bindings b WHERE b.openid = p_openid;
            IF v_bound <> v_trainee_id THEN  -- a concurrent scan bound it first: undo everything
                RAISE EXCEPTION 'wechat_bound_to_other' USING ERRCODE = 'CKB01';
            END IF;
        ELSIF v_later THEN
            v_flags := v_flags || 'id_on_new_wechat'::text;
        END IF;
    ELSIF w.bound_later THEN
        v_flags := v_flags || 'id_on_new_wechat'::text;
    END IF;

    -- many identities from one address: count other trainees among its check-ins of the last minutes, newest
    -- first, and stop at the limit. A hall behind one NAT has thousands of check-ins from its address: they are
    -- read backwards along the index on (address_hash, recorded_at), a few rows in one go (LIMIT keeps the
    -- planner on the index; without it, a bitmap scan read every row of the address each scan); only when those
    -- rows are a few trainees over and over (one's sign-ins of many sessions) does it look further back, one
    -- other trainee at a time.
    IF p_address_hash IS NOT NULL THEN
        FOR v_other IN SELECT ck.trainee_id FROM checkins ck
                        WHERE ck.address_hash = p_address_hash AND ck.recorded_at >= p_since
                          AND ck.trainee_id <> v_trainee_id
                        ORDER BY ck.recorded_at DESC LIMIT 3 * p_max_identities LOOP
            v_rows := v_rows + 1;
            IF v_other <> ALL (v_seen) THEN
                v_seen := v_seen || v_other;
                EXIT WHEN cardinality(v_seen) >= p_max_identities;
            END IF;
        END LOOP;
        WHILE cardinality(v_seen) < p_max_identities AND v_rows = 3 * p_max_identities LOOP
            SELECT ck.trainee_id INTO v_other FROM checkins ck
             WHERE ck.address_hash = p_address_hash AND ck.recorded_at >= p_since
               AND ck.trainee_id <> v_trainee_id AND ck.trainee_id <> ALL (v_seen)
             ORDER BY ck.recorded_at DESC LIMIT 1;
            EXIT WHEN NOT FOUND;
            v_seen := v_seen || v_other;
        END LOOP;
        IF cardinality(v_seen) + 1 > p_max_identities THEN
            v_flags := v_flags || 'many_identities_same_address'::text;
        END IF;
    END IF;

    -- ON CONFLICT DO NOTHING covers both keys: a repeated nonce and a second scan in the same window
    INSERT INTO checkins (activity_id, window_id, trainee_id, scanned_at, recorded_at, nonce, openid, address_hash,
                          forced, forced_reason, forced_by, flags)
    VALUES (w.activity_id, w.id, v_trainee_id, p_scanned_at, p_now, p_nonce, p_openid, p_address_hash, false, NULL,
            NULL, to_json(v_flags))
    ON CONFLICT DO NOTHING RETURNING * INTO c;
    IF NOT FOUND THEN
        SELECT ck.id, ck.scanned_at, ck.forced, tr.name::text INTO r_checkin_id, r_scanned_at, r_forced, r_name
          FROM checkins ck JOIN trainees tr ON tr.id = ck.trainee_id
         WHERE ck.window_id = w.id AND ck.trainee_id = v_trainee_id;
        IF NOT FOUND THEN
            SELECT ck.id, ck.scanned_at, ck.forced, tr.name::text INTO r_checkin_id, r_scanned_at, r_forced, r_name
              FROM checkins ck JOIN trainees tr ON tr.id = ck.trainee_id
             WHERE ck.nonce = p_nonce;
        END IF;
        r_outcome := 'ok';
        RETURN;
    END IF;

    -- the envelope as make_envelope writes it; format() and to_json of the text values only: json_build_object
    -- looked up the output function of each of its 50 keys and values on every call
    v_envelope := format(
        '{"id":%s,"name":"checkin.recorded","time":%s,"producer":"checkin","version":1,"payload":{'
        '"checkin_id":%s,"activity_id":%s,"offering_id":%s,"institution_id":%s,"window_id":%s,"window_kind":%s,'
        '"window_starts_at":"%s","window_ends_at":"%s","window_title":%s,"trainee_key":%s,"name":%s,"id_enc":%s,'
        '"mobile_enc":%s,"title":%s,"unit":%s,"scanned_at":"%s","forced":false,"flags":%s}}',
        to_json(v_event_id), to_json(p_event_time), c.id, w.activity_id, w.offering_id, w.institution_id, w.id,
        to_json(w.kind), checkin_iso(w.starts_at), checkin_iso(w.ends_at), to_json(w.title::text),
        to_json(v_trainee_key), to_json(v_name),
        to_json(v_id_enc), to_json(v_mobile_enc), to_json(v_title), to_json(v_unit), checkin_iso(c.scanned_at),
        to_json(v_flags));
    INSERT INTO outbox (event_id, name, consumer, envelope, created_at, attempts)
    SELECT v_event_id, 'checkin.recorded', consumer, v_envelope, p_now, 0 FROM unnest(p_consumers) AS consumer;
    r_outcome := 'ok';
    r_checkin_id := c.id;
    r_scanned_at := c.scanned_at;
    r_created := true;
    r_name := v_name;
END
$fn$;
"""

# ISO 8601 in UTC with microseconds, whatever the session's TimeZone (what the event schemas read). STABLE, as
# to_char is: PostgreSQL inlines a SQL function only when it is declared no less volatile than its body, and
# declared IMMUTABLE each of the envelope's three calls ran through the SQL-function executor (the scan function
# made ~13 % fewer calls/s in pgbench).
CHECKIN_ISO = r"""
CREATE OR REPLACE FUNCTION checkin_iso(ts timestamptz) RETURNS text
LANGUAGE sql STABLE AS $fn$
    SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00'
$fn$;
"""

STATEMENTS = (CHECKIN_ISO, DROP_RECORD_SCAN, CHECKIN_RECORD_SCAN)
DROP_STATEMENTS = (DROP_RECORD_SCAN, "DROP FUNCTION IF EXISTS checkin_iso")


def install(connection: Any, statements: tuple[str, ...] = STATEMENTS) -> None:
    """Make (or drop) the functions as written here, on PostgreSQL only: on SQLite (the embedded default) scans go
    through record_checkin in Python. Used by create_all and by the migrations, which make the current text."""
    if connection.dialect.name == "postgresql":
        for statement in statements:
            # as written: without parameters the driver leaves the bodies' % (format()'s %s) alone
            connection.exec_driver_sql(statement, execution_options={"no_parameters": True})

# the function's arguments in order; CALL takes them as one tuple (ServiceDB.call_row, positional)
CALL_ARGS = ("activity_id", "window_id", "nonce", "scanned_at", "now", "openid", "address_hash", "since",
             "max_identities", "trainee_key", "id_enc", "name", "mobile_enc", "mobile_hash", "title", "unit",
             "event_id", "event_time", "consumers")
CALL = ("SELECT r_outcome, r_checkin_id, r_scanned_at, r_created, r_forced, r_name, r_kind"
        " FROM checkin_record_scan("
        + ", ".join(["%s"] * len(CALL_ARGS)) + ")")
