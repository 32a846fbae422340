"""Field types: their config, how a client's value is checked and stored, how stored values
convert when a field changes type, and how they read inside formulas.

Stored shapes (the JSON ``data`` column, keyed by field id; an empty cell is an absent key):

    text, url      "string"
    number         1 / 2.5
    select         "op_..."
    multi_select   ["op_...", ...]
    date           "YYYY-MM-DD" or, with ``include_time``, "YYYY-MM-DDTHH:MM:SSZ" (UTC)
    checkbox       true / false
    file           [{"file_id", "key", "bucket", "filename", "content_type", "size", "uploaded_at"}, ...]
    relation       ["en_...", ...]
    user           "usr_..."
    formula        its result (dates as ISO strings, errors as empty)
    rollup         its result
    lookup         [values of the linked entries' field]
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from ..kernel.errors import ValidationFailed
from ..kernel.ids import new_id
from .models import Field
from .schema import COMPUTED_TYPES, options_of

__all__ = [
    "FIELD_TYPES",
    "ROLLUP_FUNCTIONS",
    "Invalid",
    "check_config",
    "normalizer",
    "convert_value",
    "display_value",
    "parse_date_value",
    "stored_result",
]

FIELD_TYPES = (
    "text",
    "number",
    "select",
    "multi_select",
    "date",
    "checkbox",
    "url",
    "file",
    "relation",
    "user",
    "formula",
    "rollup",
    "lookup",
)
ROLLUP_FUNCTIONS = ("count", "sum", "avg", "min", "max", "concat")
MAX_TEXT = 100_000
MAX_OPTIONS = 500


class Invalid(Exception):
    """A value that does not fit its field; the message goes into the 422 details."""


# ---------------------------------------------------------------- config


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(details={field: [message]})


def check_options(raw: Any, existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise _bad("config.options", "must be a list of {label, color}")
    if len(raw) > MAX_OPTIONS:
        raise _bad("config.options", f"at most {MAX_OPTIONS} options")
    by_id = {o["id"]: o for o in existing}
    by_label = {str(o["label"]).lower(): o for o in existing}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        if isinstance(item, str):
            item = {"label": item}
        if not isinstance(item, dict):
            raise _bad(f"config.options[{i}]", "must be an object with a label")
        label = item.get("label")
        if not isinstance(label, str) or not label.strip():
            raise _bad(f"config.options[{i}].label", "must be a non-empty string")
        label = label.strip()
        if label.lower() in seen:
            raise _bad(f"config.options[{i}].label", f"duplicate option '{label}'")
        seen.add(label.lower())
        color = item.get("color", "gray")
        if not isinstance(color, str) or len(color) > 32:
            raise _bad(f"config.options[{i}].color", "must be a short string")
        prior = by_id.get(item.get("id")) if isinstance(item.get("id"), str) else None
        prior = prior or by_label.get(label.lower())
        out.append({"id": prior["id"] if prior else new_id("option"), "label": label, "color": color})
    return out


def check_config(ftype: str, raw: Any, *, existing: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate a field's config for its type (relation/rollup/lookup targets are checked by
    the caller, which can see the database). Returns the config to store."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _bad("config", "must be an object")
    existing = existing or {}
    cfg: dict[str, Any] = {}
    if ftype in ("select", "multi_select"):
        cfg["options"] = check_options(raw.get("options", existing.get("options", [])), existing.get("options", []))
    elif ftype == "number":
        precision = raw.get("precision", existing.get("precision"))
        if precision is not None:
            if not isinstance(precision, int) or isinstance(precision, bool) or not 0 <= precision <= 10:
                raise _bad("config.precision", "must be an integer between 0 and 10")
            cfg["precision"] = precision
    elif ftype == "date":
        include_time = raw.get("include_time", existing.get("include_time", False))
        if not isinstance(include_time, bool):
            raise _bad("config.include_time", "must be true or false")
        cfg["include_time"] = include_time
    elif ftype == "relation":
        target = raw.get("table_id", existing.get("table_id"))
        if not isinstance(target, str) or not target:
            raise _bad("config.table_id", "a relation needs the id of the table it links to")
        multiple = raw.get("multiple", existing.get("multiple", True))
        if not isinstance(multiple, bool):
            raise _bad("config.multiple", "must be true or false")
        cfg.update(table_id=target, multiple=multiple)
    elif ftype == "user":
        multiple = raw.get("multiple", existing.get("multiple", False))
        if not isinstance(multiple, bool):
            raise _bad("config.multiple", "must be true or false")
        cfg["multiple"] = multiple
    elif ftype == "formula":
        expression = raw.get("expression", raw.get("formula", existing.get("expression")))
        if not isinstance(expression, str) or not expression.strip():
            raise _bad("config.expression", "a formula needs an expression")
        if len(expression) > 10_000:
            raise _bad("config.expression", "at most 10000 characters")
        cfg["expression"] = expression
    elif ftype in ("rollup", "lookup"):
        for key in ("relation_field", "target_field"):
            value = raw.get(key, existing.get(key))
            if not isinstance(value, str) or not value:
                raise _bad(f"config.{key}", "required (a field id or name)")
            cfg[key] = value
        if ftype == "rollup":
            fn = raw.get("function", existing.get("function", "count"))
            if fn not in ROLLUP_FUNCTIONS:
                raise _bad("config.function", f"must be one of {', '.join(ROLLUP_FUNCTIONS)}")
            cfg["function"] = fn
    return cfg


# ---------------------------------------------------------------- values in


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date_value(value: Any) -> date | datetime:
    """A date ("2025-01-15") or an aware datetime from an ISO string."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise Invalid("must be an ISO 8601 date string")
    text = value.strip()
    try:
        if _DATE_RE.match(text):
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Invalid("must be an ISO 8601 date (YYYY-MM-DD) or datetime") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_date(value: date | datetime, include_time: bool, tz: ZoneInfo) -> str:
    if include_time:
        if not isinstance(value, datetime):
            value = datetime.combine(value, time(0), tzinfo=tz)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        value = value.astimezone(tz).date()
    return value.isoformat()


def _option_resolver(f: Field) -> Callable[[Any], str]:
    options = options_of(f)
    ids = {o["id"] for o in options}
    labels = {str(o["label"]).lower(): o["id"] for o in options}

    def resolve(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be an option label or op_ id")
        if value in ids:
            return value
        found = labels.get(value.strip().lower())
        if found is None:
            known = ", ".join(repr(o["label"]) for o in options[:20])
            raise Invalid(f"'{value}' is not an option of this field (options: {known})")
        return str(found)

    return resolve


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]
    raise Invalid("must be a list")


def normalizer(f: Field, tz: ZoneInfo) -> Callable[[Any], Any]:
    """A function turning a client's value into the stored value (None: empty) or raising Invalid.

    Relation and user values are checked for shape here; that they exist is checked in
    one query per write by the caller."""
    ftype = f.type
    cfg = f.config or {}
    if ftype in COMPUTED_TYPES:

        def computed(value: Any) -> Any:
            raise Invalid(f"'{f.name}' is a {ftype} field; its value is computed")

        return computed
    if ftype == "text":

        def text(value: Any) -> Any:
            if value.__class__ is str and 0 < len(value) <= MAX_TEXT:
                return value
            if value is None or value == "":
                return None
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise Invalid("must be a string")
            value = str(value)
            if len(value) > MAX_TEXT:
                raise Invalid(f"at most {MAX_TEXT} characters")
            return value

        return text
    if ftype == "number":
        precision = cfg.get("precision")

        def number(value: Any) -> Any:
            if value.__class__ is float and math.isfinite(value) and precision is not None:
                value = round(value, precision)
                return int(value) if precision == 0 else value
            if value is None or value == "":
                return None
            if isinstance(value, bool):
                raise Invalid("must be a number")
            if isinstance(value, str):
                try:
                    value = float(value) if any(c in value for c in ".eE") else int(value)
                except ValueError:
                    raise Invalid("must be a number") from None
            if isinstance(value, Decimal):
                value = float(value)
            if not isinstance(value, (int, float)):
                raise Invalid("must be a number")
            if isinstance(value, float):
                if not math.isfinite(value):
                    raise Invalid("must be a finite number")
                if precision is not None:
                    value = round(value, precision)
                    if precision == 0:
                        value = int(value)
                elif value.is_integer() and abs(value) < 2**53:
                    value = int(value)
            elif abs(value) >= 2**63:
                raise Invalid("is too large")
            return value

        return number
    if ftype == "select":
        resolve = _option_resolver(f)

        def select(value: Any) -> Any:
            if value is None or value == "":
                return None
            return resolve(value)

        return select
    if ftype == "multi_select":
        resolve = _option_resolver(f)

        def multi(value: Any) -> Any:
            if value is None:
                return None
            out = list(dict.fromkeys(resolve(v) for v in _as_list(value)))
            return out or None

        return multi
    if ftype == "date":
        include_time = bool(cfg.get("include_time"))

        def date_(value: Any) -> Any:
            if value is None or value == "":
                return None
            return format_date(parse_date_value(value), include_time, tz)

        return date_
    if ftype == "checkbox":

        def checkbox(value: Any) -> Any:
            if value is None:
                return None
            if not isinstance(value, bool):
                raise Invalid("must be true or false")
            return value

        return checkbox
    if ftype == "url":

        def url(value: Any) -> Any:
            if value is None or value == "":
                return None
            if not isinstance(value, str) or len(value) > 2048:
                raise Invalid("must be a URL string")
            parts = urlparse(value.strip())
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise Invalid("must be an http(s) URL")
            return value.strip()

        return url
    if ftype == "file":

        def files(value: Any) -> Any:
            # File ids (or file values read back, which carry ``file_id``): the store swaps
            # them for the confirmed files' values once it has looked them up.
            if value is None or value == []:
                return None
            items = value if isinstance(value, list) else [value]
            out: list[str] = []
            for item in items:
                fid = item.get("file_id", item.get("id")) if isinstance(item, dict) else item
                if not isinstance(fid, str) or not fid:
                    raise Invalid("must be a list of confirmed file ids (from POST /api/v1/files/confirm)")
                if fid not in out:
                    out.append(fid)
            return out
        return files
    if ftype == "relation":
        multiple = cfg.get("multiple", True)

        def relation(value: Any) -> Any:
            if value is None:
                return None
            ids = _as_list(value)
            for v in ids:
                if not isinstance(v, str) or not v.startswith("en_"):
                    raise Invalid("must be entry ids (en_...)")
            ids = list(dict.fromkeys(ids))
            if not multiple and len(ids) > 1:
                raise Invalid("links to at most one entry")
            return ids or None

        return relation
    if ftype == "user":
        multiple = cfg.get("multiple", False)

        def user(value: Any) -> Any:
            if value is None or value == "" or value == []:
                return None
            ids = _as_list(value)
            for v in ids:
                if not isinstance(v, str) or not v:
                    raise Invalid("must be a user id (usr_...) or email of a member")
            if multiple:
                return list(dict.fromkeys(ids))
            if len(ids) > 1:
                raise Invalid("holds at most one user")
            return ids[0]

        return user
    raise Invalid(f"unknown field type {ftype}")  # pragma: no cover - types are checked on create


# ---------------------------------------------------------------- values out / conversion


def display_value(f: Field, value: Any, *, users: dict[str, str] | None = None) -> Any:
    """What a stored value reads as in text: option labels, joined lists, file names."""
    if value is None:
        return None
    ftype = f.type
    if ftype == "select":
        labels = {o["id"]: o["label"] for o in options_of(f)}
        return labels.get(value)
    if ftype == "multi_select":
        labels = {o["id"]: o["label"] for o in options_of(f)}
        return ", ".join(labels[v] for v in value if v in labels)
    if ftype == "file":
        return ", ".join(item.get("filename", "") for item in value)
    if ftype == "user":
        ids = value if isinstance(value, list) else [value]
        return ", ".join((users or {}).get(v) or v for v in ids)
    if isinstance(value, list):
        return ", ".join("" if v is None else str(v) for v in value)
    return value


_TRUE = {"true", "yes", "y", "1", "checked", "on", "x"}
_FALSE = {"false", "no", "n", "0", "unchecked", "off", ""}


def convert_value(old: Field, new_type: str, new_cfg: dict[str, Any], value: Any, tz: ZoneInfo) -> Any:
    """Convert a stored value of ``old`` to ``new_type``. Raises Invalid if it cannot."""
    if value is None:
        return None
    if new_type in COMPUTED_TYPES:
        return None
    probe = Field(id=old.id, name=old.name, type=new_type, config=new_cfg)
    text = display_value(old, value)
    if old.type == new_type and old.type not in ("select", "multi_select"):
        return normalizer(probe, tz)(value)
    if new_type == "text":
        if isinstance(text, bool):
            return "true" if text else "false"
        return None if text in (None, "") else str(text)
    if new_type == "number":
        if isinstance(value, bool):
            return 1 if value else 0
        if isinstance(value, (int, float)):
            return normalizer(probe, tz)(value)
        if isinstance(text, str):
            return normalizer(probe, tz)(text.strip().replace(",", ""))
        raise Invalid("not a number")
    if new_type == "checkbox":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return value != 0
        if isinstance(text, str) and text.strip().lower() in _TRUE | _FALSE:
            return text.strip().lower() in _TRUE
        raise Invalid("not a yes/no value")
    if new_type in ("select", "multi_select"):
        if old.type in ("select", "multi_select"):
            labels = [s.strip() for s in str(text).split(",")] if old.type == "multi_select" else [str(text)]
        elif isinstance(text, str):
            labels = [s.strip() for s in text.split(",")] if new_type == "multi_select" else [text.strip()]
        elif isinstance(text, (int, float)) and not isinstance(text, bool):
            labels = [str(text)]
        else:
            raise Invalid("not convertible to an option")
        labels = [lbl for lbl in labels if lbl]
        if new_type == "select" and len(labels) > 1:
            raise Invalid("holds several options")
        return normalizer(probe, tz)(labels if new_type == "multi_select" else (labels[0] if labels else None))
    if new_type in ("date", "url"):
        if isinstance(text, str):
            return normalizer(probe, tz)(text.strip())
        raise Invalid(f"not convertible to {new_type}")
    # file, relation, user: only from the same type
    if old.type == new_type:
        return normalizer(probe, tz)(value)
    raise Invalid(f"cannot convert {old.type} to {new_type}")


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


def revive(value: Any) -> Any:
    """A stored computed value as a formula input: ISO strings become dates again."""
    if isinstance(value, str):
        if _ISO_DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                return value
        if _ISO_DATETIME.match(value):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
    return value


def stored_result(value: Any) -> Any:
    """A formula/rollup result as stored JSON: dates as ISO strings, errors and "" as empty."""
    if value is None or isinstance(value, Exception):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value or None
    if isinstance(value, list):
        return value or None
    return str(value)
