"""`python -m deploy.manage rotate-hash`: every keyed hash of an ID number or a mobile recomputed under the first
key of CME_HASH_KEYS (DESIGN §5: the keys come from one rotatable key set).

The keyed hash of an ID number (trainee_key) is a trainee's key in every service, and travels in events, so the
rotation is done with the suite stopped, after every event was delivered (the command refuses while an outbox
holds unsent events), in every service's database in one run. Each hash is recomputed from the value it hashes:
a row's own encrypted ID number or mobile (id_enc, mobile_enc); a row that keeps only the hash (an exclusion, an
export job, a refused scan, the events the outboxes keep) takes the new value of the same old hash from the rows
of its database that have both. SMS codes (five minutes' life) are deleted. What cannot be recomputed is left and
counted: a refused scan of an ID number never stored, and the check-ins' address hashes (their only use is the
ten-minute "many identities from one address" rule). Safe to stop and run again: a hash already under the first
key is left as it is.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Table, delete, func, select, update

from services.common import pii
from services.common.config import SERVICES

KEY = "trainee_key"


def _service_db(name: str):  # type: ignore[no-untyped-def]
    from deploy.manage import service_db

    return service_db(name)


def _single_key(name: str, table: Table):  # type: ignore[no-untyped-def]
    keys = list(table.primary_key.columns)
    if len(keys) != 1:  # every table holding hashes has one id column; a new one must say how to walk it
        raise RuntimeError(f"{name}.{table.name}: hashes in a table without a single primary key")
    return keys[0]


def _rows(sdb, table: Table, key, columns: list, batch: int):  # type: ignore[no-untyped-def]
    """(connection, rows) one committed batch at a time, ordered by the table's id."""
    last = None
    while True:
        with sdb.engine.begin() as conn:
            query = select(key, *columns).order_by(key).limit(batch)
            rows = conn.execute(query if last is None else query.where(key > last)).all()
            yield conn, rows
        if len(rows) < batch:
            return
        last = rows[-1][0]


def _plain(name: str, table: Table, row: Any, token: str) -> str:
    try:
        return pii.decrypt(token)
    except ValueError as exc:  # a key missing from CME_PII_KEYS: stop, and say where
        raise RuntimeError(f"{name}.{table.name} id {row[0]}: {exc}") from exc


def _new_keys(name: str, sdb, batch: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """old trainee_key -> new, from every row of the database that keeps both the hash and the ID number."""
    mapping: dict[str, str] = {}
    for table in sdb.metadata.sorted_tables:
        if KEY not in table.c or "id_enc" not in table.c:
            continue
        key = _single_key(name, table)
        for _conn, rows in _rows(sdb, table, key, [table.c[KEY], table.c.id_enc], batch):
            for row in rows:
                if row[2]:
                    mapping[row[1]] = pii.id_hash(_plain(name, table, row, row[2]))
    return mapping


def _map_keys(value: Any, mapping: dict[str, str]) -> tuple[Any, int]:
    """The JSON value with every trainee_key (at any depth) replaced by its new value, and how many changed."""
    from deploy.manage import map_json

    return map_json(value, lambda key: key == KEY, lambda old: mapping.get(old, old))


def rotate_hash(names: list[str], batch: int = 500) -> dict[str, dict[str, int]]:
    """Recompute every stored keyed hash under the first CME_HASH_KEYS key; returns, per service, rows rewritten,
    SMS codes deleted and hashes that could not be recomputed (kept as they were)."""
    names = names or list(SERVICES)
    for name in names:  # first, for every service: nothing may be on its way under the old hashes
        sdb = _service_db(name)
        if "outbox" in sdb.metadata.tables:
            outbox = sdb.metadata.tables["outbox"]
            with sdb.engine.connect() as conn:
                unsent = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)))
                if unsent.scalar_one():
                    raise RuntimeError(f"{name}: events not yet sent; start the suite until cme_outbox_unsent is 0 "
                                       "everywhere (and cme_queue_length too), stop it, then rotate")
    report: dict[str, dict[str, int]] = {}
    for name in names:
        sdb = _service_db(name)
        mapping = _new_keys(name, sdb, batch)
        current = set(mapping.values())
        done = {"rows": 0, "sms_codes_deleted": 0, "not_recomputed": 0}
        for table in sdb.metadata.sorted_tables:
            cols = table.c
            if table.name == "sms_codes":
                with sdb.engine.begin() as conn:
                    done["sms_codes_deleted"] += conn.execute(delete(table)).rowcount or 0
                continue
            has_key, has_mobile = KEY in cols, "mobile_hash" in cols and "mobile_enc" in cols
            envelope = cols.envelope if table.name == "outbox" and "envelope" in cols else None
            if not (has_key or has_mobile or envelope is not None):
                continue
            key = _single_key(name, table)
            read = [c for c in (cols.get(KEY), cols.get("id_enc"), cols.get("mobile_hash"), cols.get("mobile_enc"),
                                envelope) if c is not None]
            for conn, rows in _rows(sdb, table, key, read, batch):
                for row in rows:
                    got, values = row._mapping, {}
                    if has_key:
                        old = got[cols[KEY]]
                        if "id_enc" in cols and got[cols.id_enc]:
                            new = pii.id_hash(_plain(name, table, row, got[cols.id_enc]))
                        else:
                            new = mapping.get(old, old)
                            if new == old and old not in current:
                                done["not_recomputed"] += 1
                        if new != old:
                            values[KEY] = new
                    if has_mobile and got[cols.mobile_enc]:
                        new = pii.mobile_hash(_plain(name, table, row, got[cols.mobile_enc]))
                        if new != got[cols.mobile_hash]:
                            values["mobile_hash"] = new
                    if envelope is not None:
                        body, changed = _map_keys(json.loads(got[envelope]), mapping)
                        if changed:
                            values[envelope.name] = json.dumps(body, ensure_ascii=False)
                    if values:
                        conn.execute(update(table).where(key == row[0]).values(**values))
                        done["rows"] += 1
        report[name] = done
        print(f"{name}: {done['rows']} rows rehashed, {done['sms_codes_deleted']} SMS codes deleted, "
              f"{done['not_recomputed']} hashes without their value here (left as they were)", flush=True)
    return report
