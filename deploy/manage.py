"""Operator commands: migrate databases, (re)generate migrations.

    python -m deploy.manage upgrade [SERVICE ...]     bring each service's own database to head
    python -m deploy.manage makemigration SERVICE -m "what changed"
    python -m deploy.manage backfill-accounts         credits: open the trainee accounts missing for check-ins
    python -m deploy.manage rotate-pii [SERVICE ...]  re-encrypt every stored ID number and mobile (*_enc
                                                      columns, the outboxes' events) under CME_PII_KEYS' first key
    python -m deploy.manage check-pii [SERVICE ...]   count what the first key alone cannot read (exit 1 if any)
    python -m deploy.manage rotate-hash               recompute every keyed hash of an ID number or mobile under
                                                      CME_HASH_KEYS' first key, in every database (suite stopped;
                                                      deploy/rehash.py)
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import Any

from alembic import command
from sqlalchemy import Column, Table

from services.common.config import SERVICES, get_settings


def service_db(name: str):  # type: ignore[no-untyped-def]
    importlib.import_module(f"services.{name}.models")
    return importlib.import_module(f"services.{name}.db").db


# How long a migration waits for a lock on PostgreSQL. An upgrade runs while the old processes still serve (the local
# runner restarts them after it; compose recreates them after `migrate`): behind a transaction of theirs that read
# a table it alters, a migration would wait without end, and every later query on that table would queue behind
# its lock, hanging the running suite with it. Stopped instead, it is simply run again.
MIGRATION_LOCK_TIMEOUT = "10s"


class UpgradeStopped(RuntimeError):
    """A service's migrations stopped (on data a revision refuses, a lock it could not get, or a database that
    cannot be reached)."""

    def __init__(self, service: str, done: list[str], cause: BaseException):
        self.service, self.done = service, done
        why = " ".join(f"{type(cause).__name__}: {cause}".split())
        if "lock timeout" in why:
            why += (f" (another session holds a lock on its tables for over {MIGRATION_LOCK_TIMEOUT}: a long request "
                    "or task of the running suite; nothing was changed)")
        super().__init__(f"{service}: its database was not brought to head: {why}")


def _migration_lock_timeout() -> None:
    """libpq's PGOPTIONS for this process's connections (an operator's own lock_timeout there wins)."""
    options = os.environ.get("PGOPTIONS", "")
    if "lock_timeout" not in options:
        os.environ["PGOPTIONS"] = f"{options} -c lock_timeout={MIGRATION_LOCK_TIMEOUT}".strip()


def revision(name: str) -> str | None:
    """The revision a service's database is at (None: new, never migrated)."""
    from alembic.runtime.migration import MigrationContext

    from services.common.db import ensure_database

    sdb = service_db(name)
    ensure_database(sdb.url)
    with sdb.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(names: list[str]) -> None:
    """Each named service's database (default: all) to head, saying for each whether it moved and from where."""
    done: list[str] = []
    for name in names or SERVICES:
        try:
            before = revision(name)
            service_db(name).upgrade()
            after = revision(name)
        except Exception as exc:
            raise UpgradeStopped(name, list(done), exc) from exc
        done.append(name)
        if before == after:
            print(f"{name}: database at head, nothing to do ({after})")
        else:
            print(f"{name}: database at head, upgraded from {before or 'a new database'} to {after}")


def makemigration(name: str, message: str) -> None:
    """Autogenerate against a scratch SQLite database brought to the current head."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[f"CME_{name.upper()}_DATABASE_URL"] = f"sqlite:///{tmp}/scratch.db"
        get_settings.cache_clear()
        sdb = service_db(name)
        sdb.reset()
        sdb.upgrade()
        command.revision(sdb.alembic_config(), message=message, autogenerate=True)


def backfill_accounts() -> int:
    from services.credits.accounts.services import open_missing_accounts

    session = service_db("credits").new_session()
    try:
        opened = open_missing_accounts(session)
    finally:
        session.close()
    print(f"credits: {opened} trainee accounts opened")
    return opened


def _token_places(table: Table) -> tuple[list[Column], Column | None]:
    """Where a table keeps personal data encrypted: its *_enc columns and, in an outbox, the payloads of the
    events it keeps (a consumer restored or started empty is sent them again, so they too must stay readable)."""
    columns = [c for c in table.columns if c.name.endswith("_enc")]
    envelope = table.c.envelope if table.name == "outbox" and "envelope" in table.c else None
    return columns, envelope


def map_json(value: Any, wanted: Callable[[str], bool], fn: Callable[[str], str]) -> tuple[Any, int]:
    """The JSON value with every non-empty string under a key `wanted` accepts (at any depth) passed through fn,
    and how many fn changed (rotate-pii: the *_enc tokens; rotate-hash: the trainee keys)."""
    if isinstance(value, list):
        items = [map_json(v, wanted, fn) for v in value]
        return [v for v, _n in items], sum(n for _v, n in items)
    if not isinstance(value, dict):
        return value, 0
    out, count = {}, 0
    for key, v in value.items():
        if wanted(key) and isinstance(v, str) and v:
            out[key] = fn(v)
            n = int(out[key] != v)
        else:
            out[key], n = map_json(v, wanted, fn)
        count += n
    return out, count


def _map_tokens(value: Any, fn: Callable[[str], str]) -> tuple[Any, int]:
    """checkin.recorded carries id_enc and mobile_enc, credits' events lists of awards with their id_enc."""
    return map_json(value, lambda key: key.endswith("_enc"), fn)


def _scan_tokens(names: list[str], batch: int, fn: Callable[[str, str], str]) -> dict[str, int]:
    """Walk every token of the named services' databases, one committed batch of rows at a time, storing
    fn("service.table", token) where it differs from the token (a check returns it unchanged). Returns rows
    rewritten per service."""
    from sqlalchemy import select, update

    done: dict[str, int] = {}
    for name in names or SERVICES:
        sdb = service_db(name)
        rows_done = 0
        for table in sdb.metadata.sorted_tables:
            columns, envelope = _token_places(table)
            keys = list(table.primary_key.columns)
            if not columns and envelope is None:
                continue
            if len(keys) != 1:  # every table holding tokens has one id column; a new one must say how to walk it
                raise RuntimeError(f"{name}.{table.name}: personal data in a table without a single primary key")
            key, last, walked = keys[0], None, 0
            read = [*columns, *([envelope] if envelope is not None else [])]

            one = functools.partial(fn, f"{name}.{table.name}")
            while True:
                with sdb.engine.begin() as conn:
                    query = select(key, *read).order_by(key).limit(batch)
                    rows = conn.execute(query if last is None else query.where(key > last)).all()
                    for row in rows:
                        values: dict[str, Any] = {}
                        try:
                            for c in columns:
                                if row._mapping[c] and (new := one(row._mapping[c])) != row._mapping[c]:
                                    values[c.name] = new
                            if envelope is not None:
                                body, changed = _map_tokens(json.loads(row._mapping[envelope]), one)
                                if changed:
                                    values[envelope.name] = json.dumps(body, ensure_ascii=False)
                        except ValueError as exc:  # a key missing from CME_PII_KEYS: stop, and say where
                            raise RuntimeError(f"{name}.{table.name} id {row[0]}: {exc}") from exc
                        if values:
                            conn.execute(update(table).where(key == row[0]).values(**values))
                            rows_done += 1
                walked += len(rows)
                if len(rows) < batch:
                    break
                last = rows[-1][0]
                if walked % 50_000 < batch:  # an outbox of millions of events takes minutes: say how far
                    print(f"{name}.{table.name}: {walked} rows read", flush=True)
        done[name] = rows_done
    return done


def rotate_pii(names: list[str], batch: int = 500) -> dict[str, int]:
    """Re-encrypt every stored token under the first CME_PII_KEYS key, in the *_enc columns and in the events the
    outboxes keep, one committed batch at a time. Safe to stop and run again: a token the first key already reads
    is left as it is, so a second run rewrites only what the first did not reach. Returns rows per service."""
    from services.common import pii

    def rotate(_place: str, token: str) -> str:
        return token if pii.is_current(token) else pii.rotate(token)

    done = _scan_tokens(names, batch, rotate)
    for name, rows in done.items():
        print(f"{name}: {rows} rows re-encrypted")
    return done


def check_pii(names: list[str], batch: int = 500) -> dict[str, int]:
    """Count the stored tokens that the first CME_PII_KEYS key alone cannot read, by service and table: all 0
    means the other keys can be dropped. Reads only. Returns the count per "service.table" (0s left out)."""
    from services.common import pii

    stale: dict[str, int] = {}

    def count(place: str, token: str) -> str:
        if not pii.is_current(token):
            stale[place] = stale.get(place, 0) + 1
        return token

    _scan_tokens(names, batch, count)
    for place, count in sorted(stale.items()):
        print(f"{place}: {count} value{'' if count == 1 else 's'} not under the first key")
    print("every value is under the first key: the others can be removed" if not stale
          else "run rotate-pii, then check-pii again, before removing a key")
    return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("upgrade")
    up.add_argument("services", nargs="*")
    mk = sub.add_parser("makemigration")
    mk.add_argument("service", choices=SERVICES)
    mk.add_argument("-m", "--message", required=True)
    sub.add_parser("backfill-accounts")
    rot = sub.add_parser("rotate-pii")
    rot.add_argument("services", nargs="*")
    chk = sub.add_parser("check-pii")
    chk.add_argument("services", nargs="*")
    sub.add_parser("rotate-hash")
    args = parser.parse_args()
    if args.cmd == "upgrade":
        _migration_lock_timeout()
        try:
            upgrade(args.services)
        except UpgradeStopped as stopped:
            traceback.print_exc()
            # the last line is what the person on call reads first (the local runner shows it at the top)
            sys.exit(f"{stopped} (at head already: {', '.join(stopped.done) or 'none'}; fix what it names, then run "
                     "the upgrade again)")
    elif args.cmd == "backfill-accounts":
        backfill_accounts()
    elif args.cmd == "rotate-pii":
        rotate_pii(args.services)
    elif args.cmd == "check-pii":
        sys.exit(1 if check_pii(args.services) else 0)
    elif args.cmd == "rotate-hash":
        from deploy.rehash import rotate_hash

        try:
            rotate_hash([])  # every service at once: the trainee key must agree everywhere
        except RuntimeError as exc:
            sys.exit(f"rotate-hash: {exc}")
    else:
        makemigration(args.service, args.message)


if __name__ == "__main__":
    main()
