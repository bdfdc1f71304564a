"""Database plumbing shared by the services: one engine and session per service, its own database,
Alembic migrations per service, and the column types every service uses."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    DateTime,
    MetaData,
    Table,
    Text,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import TypeDecorator

from .config import get_settings
from .errors import AppError

T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use services.common.clock")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


def make_base() -> type[DeclarativeBase]:
    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING)

    return Base


def ensure_database(url: str) -> None:
    """Create the service's own PostgreSQL database when it does not exist yet (trust/own credentials)."""
    u = make_url(url)
    if not u.drivername.startswith("postgresql"):
        if u.database:
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        return
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    finally:
        admin.dispose()


def _sqlite_lock_for_update(state: Any) -> None:
    """SELECT … FOR UPDATE on SQLite (the embedded default), which has no row locks and drops the clause: the
    transaction starts with BEGIN IMMEDIATE, taking the database's write lock (waiting up to the busy timeout)
    before it reads, so two requests counting the same wrong password or SMS code take turns as they do on
    PostgreSQL instead of both reading the same count (found by the security walk: 19 tries where 5 are allowed)."""
    if not state.is_select or getattr(state.statement, "_for_update_arg", None) is None:
        return
    conn = state.session.connection(bind_arguments=state.bind_arguments)
    if conn.dialect.name != "sqlite":
        return
    raw = conn.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:  # already writing: the lock is held
        raw.execute("BEGIN IMMEDIATE")


def xact_lock(session: Session, key: str) -> None:
    """Take turns on `key` until the transaction ends (PostgreSQL's advisory lock; SQLite has one writer at a time,
    and its SELECT … FOR UPDATE takes the write lock): two requests or workers on the same thing cannot each miss
    what the other has not committed yet."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


def savepoint(session: Session) -> Any:
    """session.begin_nested(), inside a real transaction on SQLite too. pysqlite emits its BEGIN only before
    INSERT, UPDATE or DELETE, so a SAVEPOINT opened before any of them began SQLite's transaction itself and its
    RELEASE committed it: an Excel import of 30 institutions committed row by row, and another writer in between
    left it half saved with no audit entry (the trial walk on the embedded default)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        raw = conn.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            raw.execute("BEGIN")
    return session.begin_nested()


def build_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        # hooked only once a SQLite engine exists: a process on PostgreSQL (the check-in's hot path) never runs it
        if not event.contains(Session, "do_orm_execute", _sqlite_lock_for_update):
            event.listen(Session, "do_orm_execute", _sqlite_lock_for_update)

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return eng
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


def _dialect_insert(dialect: str) -> Any:
    """The insert() of the backend: both know ON CONFLICT."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def insert_for(session: Any, model: Any) -> Any:
    """An INSERT that knows ON CONFLICT on both backends: one round trip instead of a savepoint dance."""
    return _dialect_insert(session.get_bind().dialect.name)(model)


@functools.lru_cache(maxsize=64)
def _insert_or_skip(dialect: str, table: Table, key: tuple[str, ...], returning: tuple[str, ...]) -> Any:
    """INSERT ... ON CONFLICT [(key)] DO NOTHING RETURNING the primary key (or the columns named), built once per
    table and backend and given the rows as parameters: a consumer's burst of events does not build, key and look
    up a statement for every row (a fifth of a worker's time went there with ``insert_for(...).values(...)``)."""
    columns = [table.c[name] for name in returning] or list(table.primary_key.columns)
    return _dialect_insert(dialect)(table).on_conflict_do_nothing(index_elements=list(key) or None).returning(
        *columns)


def insert_rows_or_skip(session: Any, table: Table, rows: list[dict[str, Any]], key: tuple[str, ...] = (),
                        returning: tuple[str, ...] = ()) -> Any:
    """INSERT ... ON CONFLICT [(key)] DO NOTHING RETURNING the primary key (or the columns named) of a list of rows
    (at least one, each with the same columns), in one statement; its result. Nothing comes back for a row that
    was there.

    On PostgreSQL the rows go as one JSON text, ``INSERT ... SELECT ... FROM json_populate_recordset(...)``: a
    statement of the same text whatever the number of rows, and one parameter. As a multi-row VALUES list, a
    message's 50 check-ins were 850 placeholders, a text too long for psycopg to keep parsed, so it parsed it anew
    for every message (a fifth of the credits worker's time), and PostgreSQL planned each length anew; as one array
    a column, psycopg's quoting of each element took as long. The rows are inserted in their order (of two with
    one key the first stays); what RETURNING gives back comes in no promised order."""
    if not rows:
        raise ValueError("insert_rows_or_skip needs at least one row")
    dialect = session.get_bind().dialect.name
    if dialect != "postgresql":
        return session.execute(_insert_or_skip(dialect, table, key, returning), rows)
    names = tuple(rows[0])
    return session.execute(_insert_json_or_skip(table, names, key, returning),
                           {"rows": json.dumps(rows, default=_json_value, ensure_ascii=False)})


def _json_value(value: Any) -> str:
    if isinstance(value, dt.datetime):  # as UTCDateTime stores it: aware, in UTC
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use services.common.clock")
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot go into insert_rows_or_skip")


@functools.lru_cache(maxsize=64)
def _insert_json_or_skip(table: Table, names: tuple[str, ...], key: tuple[str, ...],
                         returning: tuple[str, ...]) -> Any:
    # the table's own row type reads each value as its column's type (timestamps, JSON values, NULLs)
    row_type = literal_column(f'NULL::"{table.name}"')
    given = func.json_populate_recordset(row_type, cast(bindparam("rows", type_=Text), JSON)).table_valued(
        *names).alias("given")
    columns = [table.c[name] for name in returning] or list(table.primary_key.columns)
    insert = _dialect_insert("postgresql")
    return (insert(table).from_select(list(names), select(*(given.c[name] for name in names)))
            .on_conflict_do_nothing(index_elements=list(key) or None).returning(*columns))


class ServiceDB:
    """The database of one service."""

    def __init__(self, service: str, metadata: MetaData, migrations_dir: Path):
        self.service = service
        self.metadata = metadata
        self.migrations_dir = migrations_dir
        self._engine: Engine | None = None
        self._autocommit_engine: Engine | None = None
        self._scoped = scoped_session(sessionmaker(expire_on_commit=False))

    @property
    def session(self) -> scoped_session[Session]:
        """The request-scoped session, bound to this service's engine on first use in each process."""
        _ = self.engine
        return self._scoped

    @property
    def url(self) -> str:
        return get_settings().service_database_url(self.service)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.url)
            self._scoped.configure(bind=self._engine)
        return self._engine

    @property
    def autocommit_engine(self) -> Engine:
        """For single statements that are their own transaction and safe to repeat (checkin's scan function): its
        own small pool in autocommit, without the ping before each use, which costs a round trip. The caller
        repeats a call that met a connection the database dropped (see retry_dropped and call_row)."""
        if self._autocommit_engine is None:
            self._autocommit_engine = build_engine(self.url, pool_pre_ping=False, isolation_level="AUTOCOMMIT")
        return self._autocommit_engine

    def retry_dropped(self, work: Callable[[Connection], T]) -> T:
        """`work` on a connection of the autocommit engine: no BEGIN, COMMIT or ping around it. A pooled connection
        the database dropped (a restart) fails at once and is thrown away; `work` then runs once more on a new one.
        Only for work that is safe to repeat (reads, idempotent calls)."""

        def once() -> T:
            with self.autocommit_engine.connect() as conn:
                return work(conn)

        try:
            return once()
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return once()

    def call_row(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One PostgreSQL statement that is its own transaction and safe to repeat (checkin's scan function), on the
        autocommit pool's driver connection: a server-side prepared statement and positional parameters, without
        SQLAlchemy's statement and result layers around it (a quarter of the scan's Python time went there).
        Failures come out as SQLAlchemy's DBAPIError, with the parameters hidden (personal data), so callers and
        the 503 handlers see what retry_dropped gives; a dropped connection is thrown away and the call made once
        more on a new one."""
        engine = self.autocommit_engine
        dialect = engine.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        for attempt in (1, 2):
            try:
                fairy = engine.raw_connection()
            except dbapi_error as exc:  # refused (the server is down): raw_connection() leaves it unwrapped
                raise DBAPIError.instance(None, None, exc, dbapi_error, dialect=dialect) from exc
            try:
                with fairy.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                    cursor.execute(sql, params, prepare=True)
                    return cursor.fetchone()
            except dbapi_error as exc:
                dropped = dialect.is_disconnect(exc, fairy.dbapi_connection, None)
                if dropped:
                    fairy.invalidate(exc)
                if not dropped or attempt == 2:
                    raise DBAPIError.instance(sql, params, exc, dbapi_error, hide_parameters=True,
                                              connection_invalidated=dropped, dialect=dialect) from exc
            finally:
                fairy.close()
        raise AssertionError("unreachable")

    def reset(self) -> None:
        """Forget the engines (after settings changed, or in a forked worker)."""
        self._scoped.remove()
        for engine in (self._engine, self._autocommit_engine):
            if engine is not None:
                engine.dispose()
        self._engine = self._autocommit_engine = None

    def commit(self, conflict_message: str) -> None:
        """The request's one commit. A versioned row someone else changed meanwhile rolls it back and is a 409
        with `conflict_message` (what to reload), instead of the generic conflict answer."""
        session = self.session()
        try:
            session.commit()
        except StaleDataError:
            session.rollback()
            raise AppError(409, "conflict", conflict_message) from None

    def new_session(self) -> Session:
        return Session(bind=self.engine, expire_on_commit=False)

    def session_scope(self) -> Iterator[Session]:
        s = self.new_session()
        try:
            yield s
            s.commit()
        except Exception:
            s.rollback()
            raise
        finally:
            s.close()

    def alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(self.migrations_dir))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        cfg.attributes["service_db"] = self
        return cfg

    def upgrade(self) -> None:
        ensure_database(self.url)
        command.upgrade(self.alembic_config(), "head")


def run_migrations_online(context: Any, config: Config) -> None:
    """Body of every service's migrations/env.py."""
    sdb: ServiceDB = config.attributes["service_db"]
    with sdb.engine.connect() as conn:
        context.configure(connection=conn, target_metadata=sdb.metadata,
                          render_as_batch=conn.dialect.name == "sqlite", compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
