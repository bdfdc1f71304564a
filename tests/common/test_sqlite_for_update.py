"""SELECT … FOR UPDATE on the embedded SQLite default: requests take turns, as row locks make them on
PostgreSQL, so a count of wrong passwords or SMS codes read and bumped in Python loses no try."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Integer, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from services.common.db import build_engine


class _Base(DeclarativeBase):
    pass


class Counter(_Base):
    __tablename__ = "counter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)


def _bump(engine, locked: bool) -> None:
    with Session(engine) as s:
        s.scalar(select(Counter.id))  # an earlier read outside a write does not stop the lock
        stmt = select(Counter).where(Counter.id == 1)
        row = s.scalar(stmt.with_for_update() if locked else stmt)
        seen = row.tries
        time.sleep(0.3)  # the argon2 check of a password, say
        row.tries = seen + 1
        s.commit()


def _run(tmp_path, locked: bool) -> int:
    engine = build_engine(f"sqlite:///{tmp_path / ('locked.db' if locked else 'plain.db')}")
    _Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Counter(id=1, tries=0))
        s.commit()
    threads = [threading.Thread(target=_bump, args=(engine, locked)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Session(engine) as s:
        return s.scalar(select(Counter.tries))


def test_for_update_makes_sqlite_transactions_take_turns(tmp_path):
    assert _run(tmp_path, locked=True) == 4
    assert _run(tmp_path, locked=False) < 4  # the same without FOR UPDATE loses tries: the test can fail


def test_savepoints_on_sqlite_stay_inside_the_transaction(tmp_path):
    """An import keeping good rows with a savepoint each committed row by row on SQLite (pysqlite's RELEASE of a
    savepoint opened outside BEGIN commits): a failure after some rows left them saved, unaudited. Through
    db.savepoint the rows wait for the transaction's commit, and its rollback takes them all back."""
    from services.common.db import savepoint

    engine = build_engine(f"sqlite:///{tmp_path / 'nested.db'}")
    _Base.metadata.create_all(engine)
    with Session(engine) as s:
        for n in (1, 2, 3):
            with savepoint(s):
                s.add(Counter(id=n, tries=n))
        with Session(engine) as other:
            assert other.scalars(select(Counter)).all() == []  # nothing committed yet
        s.rollback()
    with Session(engine) as s:
        assert s.scalars(select(Counter)).all() == []
