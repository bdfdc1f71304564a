"""Operator commands: migrate databases, (re)generate migrations.

    python -m deploy.manage upgrade [SERVICE ...]     bring each service's own database to head
    python -m deploy.manage makemigration SERVICE -m "what changed"
    python -m deploy.manage backfill-accounts         credits: open the trainee accounts missing for check-ins
    python -m deploy.manage rotate-pii [SERVICE ...]  re-encrypt every stored ID number and mobile (*_enc
                                                      columns) under the first key of CME_PII_KEYS
"""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile

from alembic import command

from services.common.config import SERVICES, get_settings


def service_db(name: str):  # type: ignore[no-untyped-def]
    importlib.import_module(f"services.{name}.models")
    return importlib.import_module(f"services.{name}.db").db


def upgrade(names: list[str]) -> None:
    for name in names or SERVICES:
        service_db(name).upgrade()
        print(f"{name}: database at head")


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


def rotate_pii(names: list[str], batch: int = 500) -> dict[str, int]:
    """Re-encrypt every *_enc column under the first CME_PII_KEYS key, one committed batch at a time (safe to
    stop and run again: a token already under the first key is simply encrypted again). Returns rows per service."""
    from sqlalchemy import select, update

    from services.common import pii

    done: dict[str, int] = {}
    for name in names or SERVICES:
        sdb = service_db(name)
        rows_done = 0
        for table in sdb.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name.endswith("_enc")]
            keys = list(table.primary_key.columns)
            if not columns or len(keys) != 1:
                continue
            key, last = keys[0], None
            while True:
                with sdb.engine.begin() as conn:
                    query = select(key, *columns).order_by(key).limit(batch)
                    rows = conn.execute(query if last is None else query.where(key > last)).all()
                    for row in rows:
                        values = {c.name: pii.rotate(row._mapping[c]) for c in columns if row._mapping[c]}
                        if values:
                            conn.execute(update(table).where(key == row[0]).values(**values))
                            rows_done += 1
                if len(rows) < batch:
                    break
                last = rows[-1][0]
        done[name] = rows_done
        print(f"{name}: {rows_done} rows re-encrypted")
    return done


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
    args = parser.parse_args()
    if args.cmd == "upgrade":
        upgrade(args.services)
    elif args.cmd == "backfill-accounts":
        backfill_accounts()
    elif args.cmd == "rotate-pii":
        rotate_pii(args.services)
    else:
        makemigration(args.service, args.message)


if __name__ == "__main__":
    main()
