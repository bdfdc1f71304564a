"""Operator commands: migrate databases, (re)generate migrations.

    python -m deploy.manage upgrade [SERVICE ...]     bring each service's own database to head
    python -m deploy.manage makemigration SERVICE -m "what changed"
    python -m deploy.manage backfill-accounts         credits: open the trainee accounts missing for check-ins
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("upgrade")
    up.add_argument("services", nargs="*")
    mk = sub.add_parser("makemigration")
    mk.add_argument("service", choices=SERVICES)
    mk.add_argument("-m", "--message", required=True)
    sub.add_parser("backfill-accounts")
    args = parser.parse_args()
    if args.cmd == "upgrade":
        upgrade(args.services)
    elif args.cmd == "backfill-accounts":
        backfill_accounts()
    else:
        makemigration(args.service, args.message)


if __name__ == "__main__":
    main()
