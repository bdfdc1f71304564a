"""Paged lists, one way for every service: the query arguments, the counting and slicing, the JSON shape."""

from __future__ import annotations

import math
from typing import Any

from marshmallow import Schema, fields
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from .inputs import half_width
from .schemas import Range

PER_PAGE = 20


def matches(text: str, *columns: Any) -> ColumnElement[bool]:
    """A search box's text found inside any of the columns, case-insensitive; % and _ are the characters typed
    (a search for "2026_99" finds 2026_99, not 2026-99, and "%" finds only a percent sign); 全角 digits and
    letters are their ASCII selves."""
    escaped = half_width(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(*(column.ilike(f"%{escaped}%", escape="\\") for column in columns))


class PageArgsSchema(Schema):
    """Mix into a query-string schema: ?page=&per_page=."""

    page = fields.Integer(load_default=1, validate=Range(1, 100000), metadata={"description": "页码"})
    per_page = fields.Integer(load_default=PER_PAGE, validate=Range(1, 100), metadata={"description": "每页条数"})


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    """The JSON shape of one page of `item`: {items, total, page, pages, per_page}."""
    return Schema.from_dict({"items": fields.List(fields.Nested(item)), "total": fields.Integer(),
                             "page": fields.Integer(), "pages": fields.Integer(), "per_page": fields.Integer()},
                            name=name)


def paginate(session: Session, stmt: Select[Any], args: dict[str, Any], *order_by: Any,
             scalars: bool = True) -> dict[str, Any]:
    """Count `stmt`, clamp the page to the last one (a stale link shows the last page, not nothing), slice."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    per_page = args.get("per_page") or PER_PAGE
    pages = max(1, math.ceil(total / per_page))
    page = min(args.get("page") or 1, pages)
    sliced = stmt.order_by(*order_by).limit(per_page).offset((page - 1) * per_page)
    items = session.scalars(sliced).all() if scalars else session.execute(sliced).all()
    return {"items": list(items), "total": total, "page": page, "pages": pages, "per_page": per_page}


def past_last(args: dict[str, Any], page: dict[str, Any]) -> int | None:
    """The page asked for when it lay past the last (paginate showed the last instead, a stale link): the list
    says so (the past_last_note macro); None otherwise."""
    return args["page"] if page["total"] and args["page"] > page["page"] else None


def keep_per_page(keep: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """A list's kept query with the rows per page asked for, so its pager's links stay at it (the default is left
    out of the address)."""
    per_page = args.get("per_page") or PER_PAGE
    return {**keep, "per_page": per_page} if per_page != PER_PAGE else keep
