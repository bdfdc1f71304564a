"""A trainee's scan stored by one call of a PostgreSQL function: the rules of record_checkin, in the database.

A lecture hall checks in hundreds of phones within minutes. Done through the ORM, a scan took seven round
trips (window, nonce, trainee, binding, address count, check-in, outbox) inside BEGIN ... COMMIT, and most of
its time went on building those statements. ``checkin_record_scan`` does the same work in one statement, in
one transaction of its own (the caller runs it in autocommit), and answers with an outcome:

    ok                      stored (created) or the check-in that already answers this nonce / trainee / window
    not_found               the window does not exist or is not the ticket's activity's; nothing stored
    not_in_window           the scan's time is outside the window; the refusal is kept in refused_scans
    wechat_bound_to_other   this WeChat account is bound to another ID number; the refusal is kept
    identity_required       a one-tap scan by a WeChat account bound to nobody; nothing stored

A binding made by a concurrent scan between the check and the insert raises SQLSTATE BOUND_ELSEWHERE
(the whole call is rolled back: no identity is kept for someone else's WeChat account); the caller keeps the
refusal. The stored check-in's ``checkin.recorded`` goes to the outbox in the same transaction, its envelope
written as services.common.events.make_envelope writes it (the test compares both).

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
    p_unit text, p_event_id text, p_event_time text, p_consumers text[])
RETURNS TABLE (r_outcome text, r_checkin_id integer, r_scanned_at timestamptz, r_created boolean, r_forced boolean,
               r_name text)
LANGUAGE plpgsql AS $fn$
DECLARE
    w record;
    c record;
    t record;
    v_bound integer;
    v_new boolean := false;
    v_binding integer;
    v_flags text[] := '{}';
    v_seen integer[] := '{}';
    v_other integer;
    v_envelope text;
    v_event_id text := coalesce(p_event_id, gen_random_uuid()::text);
BEGIN
    SELECT cw.id, cw.activity_id, cw.kind, cw.starts_at, cw.ends_at, a.offering_id, a.institution_id INTO w
      FROM checkin_windows cw JOIN activities a ON a.id = cw.activity_id
     WHERE cw.id = p_window_id;
    IF NOT FOUND OR w.activity_id <> p_activity_id THEN
        RETURN QUERY SELECT 'not_found', NULL::integer, NULL::timestamptz, false, false, NULL::text;
        RETURN;
    END IF;

    -- a repeated submission (double tap, retry) answers with the first result
    SELECT * INTO c FROM checkins WHERE nonce = p_nonce;
    IF FOUND THEN
        RETURN QUERY SELECT 'ok'::text, c.id, c.scanned_at, false, c.forced,
                            (SELECT tr.name::text FROM trainees tr WHERE tr.id = c.trainee_id);
        RETURN;
    END IF;

    IF NOT (w.starts_at <= p_scanned_at AND p_scanned_at <= w.ends_at) THEN
        INSERT INTO refused_scans (at, activity_id, window_id, reason, openid, trainee_key, address_hash)
        VALUES (p_now, w.activity_id, w.id, 'not_in_window', p_openid, NULL, p_address_hash);
        RETURN QUERY SELECT 'not_in_window', NULL::integer, NULL::timestamptz, false, false, NULL::text;
        RETURN;
    END IF;

    IF p_trainee_key IS NOT NULL THEN
        -- one WeChat account binds to one ID number: refused before anything typed is kept
        IF p_openid IS NOT NULL THEN
            SELECT b.trainee_id INTO v_bound FROM wechat_bindings b WHERE b.openid = p_openid;
            IF v_bound IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM trainees tr WHERE tr.id = v_bound AND tr.trainee_key = p_trainee_key)
            THEN
                INSERT INTO refused_scans (at, activity_id, window_id, reason, openid, trainee_key, address_hash)
                VALUES (p_now, w.activity_id, w.id, 'wechat_bound_to_other', p_openid, p_trainee_key,
                        p_address_hash);
                RETURN QUERY SELECT 'wechat_bound_to_other', NULL::integer, NULL::timestamptz, false, false, NULL::text;
                RETURN;
            END IF;
        END IF;
        -- later details win (a new mobile, a new unit); the ID number stays
        INSERT INTO trainees AS tr (trainee_key, id_enc, name, mobile_enc, mobile_hash, title, unit, created_at,
                                    updated_at)
        VALUES (p_trainee_key, p_id_enc, p_name, p_mobile_enc, p_mobile_hash, p_title, p_unit, p_now, p_now)
        ON CONFLICT (trainee_key) DO UPDATE SET name = EXCLUDED.name, mobile_enc = EXCLUDED.mobile_enc,
            mobile_hash = EXCLUDED.mobile_hash, title = EXCLUDED.title, unit = EXCLUDED.unit,
            updated_at = EXCLUDED.updated_at
        RETURNING * INTO t;
        v_new := t.created_at = t.updated_at;  -- both set only on insert
    ELSE
        SELECT tr.* INTO t FROM wechat_bindings b JOIN trainees tr ON tr.id = b.trainee_id
         WHERE b.openid = p_openid;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'identity_required', NULL::integer, NULL::timestamptz, false, false, NULL::text;
            RETURN;
        END IF;
    END IF;

    IF p_openid IS NOT NULL THEN
        INSERT INTO wechat_bindings (openid, trainee_id, bound_at) VALUES (p_openid, t.id, p_now)
        ON CONFLICT (openid) DO NOTHING RETURNING id INTO v_binding;
        IF v_binding IS NULL THEN
            SELECT b.trainee_id INTO v_bound FROM wechat_bindings b WHERE b.openid = p_openid;
            IF v_bound <> t.id THEN  -- a concurrent scan bound it first: undo everything
                RAISE EXCEPTION 'wechat_bound_to_other' USING ERRCODE = 'CKB01';
            END IF;
        ELSIF NOT v_new AND EXISTS (SELECT 1 FROM wechat_bindings b
                                     WHERE b.trainee_id = t.id AND b.openid <> p_openid) THEN
            v_flags := v_flags || 'id_on_new_wechat'::text;
        END IF;
    END IF;

    -- many identities from one address: look for other trainees one at a time, newest first, and stop at the
    -- limit. A hall behind one NAT has thousands of check-ins from its address: each look-up reads the index on
    -- (address_hash, recorded_at) backwards from now and stops at its first row (LIMIT 1 keeps the planner on
    -- it); one query for all of them was planned as a bitmap scan that read every row of the address each scan.
    IF p_address_hash IS NOT NULL THEN
        WHILE cardinality(v_seen) < p_max_identities LOOP
            SELECT ch.trainee_id INTO v_other FROM checkins ch
             WHERE ch.address_hash = p_address_hash AND ch.recorded_at >= p_since
               AND ch.trainee_id <> t.id AND ch.trainee_id <> ALL (v_seen)
             ORDER BY ch.recorded_at DESC LIMIT 1;
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
    VALUES (w.activity_id, w.id, t.id, p_scanned_at, p_now, p_nonce, p_openid, p_address_hash, false, NULL, NULL,
            to_json(v_flags))
    ON CONFLICT DO NOTHING RETURNING * INTO c;
    IF NOT FOUND THEN
        SELECT * INTO c FROM checkins ch WHERE ch.window_id = w.id AND ch.trainee_id = t.id;
        IF NOT FOUND THEN
            SELECT * INTO c FROM checkins ch WHERE ch.nonce = p_nonce;
        END IF;
        RETURN QUERY SELECT 'ok'::text, c.id, c.scanned_at, false, c.forced,
                            (SELECT tr.name::text FROM trainees tr WHERE tr.id = c.trainee_id);
        RETURN;
    END IF;

    v_envelope := json_build_object(
        'id', v_event_id, 'name', 'checkin.recorded', 'time', p_event_time, 'producer', 'checkin', 'version', 1,
        'payload', json_build_object(
            'checkin_id', c.id, 'activity_id', w.activity_id, 'offering_id', w.offering_id,
            'institution_id', w.institution_id, 'window_id', w.id, 'window_kind', w.kind,
            'window_starts_at', checkin_iso(w.starts_at), 'window_ends_at', checkin_iso(w.ends_at),
            'trainee_key', t.trainee_key, 'name', t.name, 'id_enc', t.id_enc, 'mobile_enc', t.mobile_enc,
            'title', t.title, 'unit', t.unit, 'scanned_at', checkin_iso(c.scanned_at), 'forced', false,
            'flags', to_json(v_flags)))::text;
    INSERT INTO outbox (event_id, name, consumer, envelope, created_at, attempts)
    SELECT v_event_id, 'checkin.recorded', consumer, v_envelope, p_now, 0 FROM unnest(p_consumers) AS consumer;
    RETURN QUERY SELECT 'ok'::text, c.id, c.scanned_at, true, false, t.name::text;
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
            connection.exec_driver_sql(statement)  # as written: no bind parameters in the function bodies

# the function's arguments in order; CALL takes them as one tuple (ServiceDB.call_row, positional)
CALL_ARGS = ("activity_id", "window_id", "nonce", "scanned_at", "now", "openid", "address_hash", "since",
             "max_identities", "trainee_key", "id_enc", "name", "mobile_enc", "mobile_hash", "title", "unit",
             "event_id", "event_time", "consumers")
CALL = ("SELECT r_outcome, r_checkin_id, r_scanned_at, r_created, r_forced, r_name FROM checkin_record_scan("
        + ", ".join(["%s"] * len(CALL_ARGS)) + ")")
