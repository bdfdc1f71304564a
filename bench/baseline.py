"""The benchmark's yardsticks: a bare Flask app, served by gunicorn behind the same nginx as the suite.

    POST /_bench/insert   one INSERT of the JSON body into a table, one commit (the check-in baseline)
    GET  /_bench/hello    a constant JSON answer (the projector refresh's baseline)

gunicorn -c deploy/gunicorn.conf.py bench.baseline:app, with BENCH_BASELINE_DATABASE_URL set (a database
of the benchmark's own, with the table made by bench/run.py before the workers start).
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, create_engine, func, insert

metadata = MetaData()
hits = Table("bench_hits", metadata,
             Column("id", Integer, primary_key=True),
             Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
             Column("body", Text, nullable=False))


def create_app(url: str | None = None) -> Flask:
    app = Flask(__name__)
    engine = create_engine(url or os.environ["BENCH_BASELINE_DATABASE_URL"], pool_pre_ping=True)

    @app.post("/_bench/insert")
    def insert_one():  # type: ignore[no-untyped-def]
        body = request.get_data(as_text=True)
        with engine.begin() as conn:
            new_id = conn.execute(insert(hits).values(body=body).returning(hits.c.id)).scalar_one()
        return jsonify({"id": new_id}), 201

    @app.get("/_bench/hello")
    def hello():  # type: ignore[no-untyped-def]
        return jsonify({"hello": "world"})

    return app


app = create_app() if os.environ.get("BENCH_BASELINE_DATABASE_URL") else None
