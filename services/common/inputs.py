"""Loading request input through schemas, one way in every service: query arguments of a page, JSON bodies,
marshmallow messages flattened to {field: Chinese sentence}."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from flask import request
from marshmallow import EXCLUDE, Schema, ValidationError

from .errors import BAD_JSON_MESSAGE, AppError
from .schemas import MAX_ID, STALE_PAGE, PageVersionForm, half_width, load_form, strip_blank


def flatten(messages: Any, labels: dict[str, str] | None = None) -> dict[str, str]:
    """marshmallow messages -> {field: first Chinese message}; nested lists say which row."""
    labels = labels or {}
    if not isinstance(messages, dict):
        return {"_schema": str(messages[0] if isinstance(messages, list) and messages else messages)}
    out: dict[str, str] = {}
    for key, value in messages.items():
        if isinstance(value, list) and value and isinstance(value[0], str):
            out[key] = value[0]
        elif isinstance(value, dict):
            parts = []
            for idx, sub in value.items():
                if isinstance(sub, dict):
                    inner = flatten(sub, labels)
                else:
                    inner = {"": str(sub[0] if isinstance(sub, list) else sub)}
                prefix = f"第 {int(idx) + 1} 行" if str(idx).isdigit() else str(idx)
                parts += [f"{prefix}{labels.get(k, k) if k else ''}：{v.rstrip('。')}" for k, v in inner.items()]
            out[key] = "；".join(parts) + "。"  # one sentence: "第 1 行单位：此项为必填项；第 2 行…。"
        else:
            out[key] = str(value)
    return out


def id_or_none(value: Any) -> int | None:
    """A form's or a path's id as a number, or None: ASCII digits only ('²'.isdigit() is true, int('²') fails)
    and within the id columns (a larger one reaches the database as an overflow)."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def page_version(form: Any) -> int | None:
    """The hidden version a page's form sends, or None when it is missing, blank or garbled: a page always
    sends one, so the caller refuses such a form as a stale page (409) instead of saving without the check
    that nobody else saved first (the JSON API may leave it out; a browser form never does)."""
    data, errors = load_form(PageVersionForm(), {"version": form.get("version") or ""})
    return None if errors or data is None else data["version"]


def require_page_version(form: Any) -> int:
    """page_version, or the stale page's 409 for a form whose answer needs no re-rendered page."""
    version = page_version(form)
    if version is None:
        raise AppError(409, "stale_page", STALE_PAGE)
    return version


PAGE_LABELS = {"page": "页码", "per_page": "每页条数"}



def folded(text: str) -> str:
    """A text as compared, not as shown: NFKC-folded (全角 digits and brackets as ASCII) with every space and line
    break gone (an institution's name, a spreadsheet's header or figure, a typed password)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or ""))


def typed_args() -> dict[str, str]:
    """The page's query arguments as typed: 全角 as ASCII, blanks missing (?year= is the page's default)."""
    return strip_blank({k: half_width(v).strip() for k, v in request.args.items()})


def load_query(schema: Schema, labels: dict[str, str]) -> dict[str, Any]:
    """Query arguments of a browser page: blanks are missing, unknown keys ignored, bad values a 422."""
    try:
        return schema.load(typed_args(), unknown=EXCLUDE)
    except ValidationError as exc:
        labels = {**PAGE_LABELS, **labels}  # every list page takes ?page= and ?per_page=
        fields = {labels.get(k, k): v for k, v in flatten(exc.messages).items()}
        raise AppError(422, "invalid_input", "查询条件有误，请修改后重新查询。", fields) from exc


def load_json(schema: Schema, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A JSON body through its schema; `labels` name the fields of nested rows in Chinese (第 1 行内容, not title)."""
    body = request.get_json(silent=True)
    if body is None:
        if request.is_json and request.get_data(cache=True).strip():
            # a body that says JSON and is not (truncated, or nested past the recursion limit): no "empty" save
            raise AppError(400, "bad_json", BAD_JSON_MESSAGE)
        body = {}
    if not isinstance(body, dict):
        raise AppError(422, "invalid_input", "请提交 JSON 对象。")
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise AppError(422, "invalid_input", "提交的内容有误，请按提示修改。", flatten(exc.messages, labels)) from exc


def keep_args(args: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k in names and v not in (None, "")}
