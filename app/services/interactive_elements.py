"""Interactive messages: check the elements an agent sends and the answer a person gives.

Pure functions, no I/O. Both collect every problem before raising one ``ValidationFailed``
whose ``details`` map a path to its problems:

    check_elements  paths such as ``elements``, ``elements[2].type``,
                    ``elements[3].inputs[1].input_type``, ``elements[1].options[0].value``
    check_answer    paths such as ``approved``, ``message``, ``selection``, ``data.amount``

Normalized elements (keys in this order; optional keys only when given):

    header, text  {"type", "text"}
    divider       {"type"}
    boolean       {"type", "text"?, "approve_label"?, "reject_label"?, "require_comment_on_reject"}
    buttons       {"type", "text"?, "options": [{"label", "value", "style"}]}
    fields        {"type", "inputs": [input, ...], "submit_label"?}
    input         {"name", "label", "input_type", "required", "placeholder"?,
                   "options"?: [{"label", "value"}], "min"?, "max"?, "default"?}

An input's ``default`` is stored in the same typed form as an answer's value.

Normalized answers:

    boolean  {"approved": bool, "message": str | None}
    buttons  {"selection": str}
    fields   {"data": {name: value}}, in the order of the inputs. A missing optional input takes
             its ``default`` if it has one and is otherwise left out (a checkbox is False).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from ..kernel.errors import ValidationFailed
from ..kernel.timefmt import iso, parse_moment

__all__ = [
    "ACTION_TYPES",
    "ELEMENT_TYPES",
    "INPUT_TYPES",
    "BUTTON_STYLES",
    "check_elements",
    "check_answer",
]

ACTION_TYPES = ("boolean", "buttons", "fields")
ELEMENT_TYPES = ("header", "text", "divider", "boolean", "buttons", "fields")
INPUT_TYPES = ("text", "textarea", "number", "email", "date", "datetime", "select", "checkbox", "url")
BUTTON_STYLES = ("primary", "danger", "default")

MAX_ELEMENTS = 50
MAX_TEXT = 3000
MAX_LABEL = 200
MAX_SHORT_LABEL = 50
MAX_BUTTONS = 10
MAX_INPUTS = 20
MAX_NAME = 64
MAX_SELECT_OPTIONS = 100
MAX_MESSAGE = 2000
MAX_ANSWER_TEXT = {"text": 1000, "textarea": 10000}
MAX_EMAIL = 320
MAX_URL = 2048

_ELEMENT_KEYS: dict[str, tuple[str, ...]] = {
    "header": ("type", "text"),
    "text": ("type", "text"),
    "divider": ("type",),
    "boolean": ("type", "text", "approve_label", "reject_label", "require_comment_on_reject"),
    "buttons": ("type", "text", "options"),
    "fields": ("type", "inputs", "submit_label"),
}
_BUTTON_KEYS = ("label", "value", "style")
_INPUT_KEYS = ("name", "label", "input_type", "required", "placeholder", "options", "min", "max", "default")
_SELECT_OPTION_KEYS = ("label", "value")
_ANSWER_KEY = {"boolean": "approved", "buttons": "selection", "fields": "data"}
_ANSWER_KEYS = {"boolean": ("approved", "message"), "buttons": ("selection",), "fields": ("data",)}

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INTEGER_RE = re.compile(r"[+-]?\d+")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}([.,]\d+)?)?(Z|[+-]\d{2}:?\d{2})")

_ACTIONS_PROBLEM = "must contain exactly one action element (boolean, buttons or fields)"


class _Problems:
    """Problems by path, in the order they were found."""

    def __init__(self) -> None:
        self.details: dict[str, list[str]] = {}

    def add(self, path: str, problem: str) -> None:
        self.details.setdefault(path, []).append(problem)

    def count(self) -> int:
        return sum(len(problems) for problems in self.details.values())

    def raise_if_any(self) -> None:
        if self.details:
            raise ValidationFailed(details=self.details)


def _one_of(values: tuple[str, ...] | list[str]) -> str:
    return "must be one of: " + ", ".join(values)


def _one_of_quoted(values: list[str]) -> str:
    return "must be one of: " + ", ".join(json.dumps(v, ensure_ascii=False) for v in values)


# ---------------------------------------------------------------- small checks


def _unknown_keys(p: _Problems, obj: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in obj:
        if key not in allowed:
            p.add(f"{path}.{key}", "is not a known key")


def _string(p: _Problems, value: object, where: str, *, max_length: int, min_length: int = 1) -> str | None:
    """``value`` if it is a string of the allowed length, else None with a problem recorded."""
    if not isinstance(value, str):
        p.add(where, "must be a string")
        return None
    if min_length and not value.strip():
        p.add(where, "must not be empty")
        return None
    if len(value) > max_length:
        p.add(where, f"must be at most {max_length} characters")
        return None
    return value


def _string_key(
    p: _Problems, obj: Mapping[str, Any], key: str, path: str, *, required: bool, max_length: int, min_length: int = 1
) -> str | None:
    if key not in obj:
        if required:
            p.add(f"{path}.{key}", "is required")
        return None
    return _string(p, obj[key], f"{path}.{key}", max_length=max_length, min_length=min_length)


def _bool_key(p: _Problems, obj: Mapping[str, Any], key: str, path: str) -> bool:
    """``obj[key]`` if present and a JSON boolean; False when absent."""
    value = obj.get(key, False)
    if not isinstance(value, bool):
        p.add(f"{path}.{key}", "must be true or false")
        return False
    return value


def _list_key(
    p: _Problems, obj: Mapping[str, Any], key: str, path: str, *, max_items: int, noun: str
) -> list[Any] | None:
    where = f"{path}.{key}"
    if key not in obj:
        p.add(where, "is required")
        return None
    value = obj[key]
    if not isinstance(value, list):
        p.add(where, "must be a list")
        return None
    if not value:
        p.add(where, "must not be empty")
        return None
    if len(value) > max_items:
        p.add(where, f"must have at most {max_items} {noun}")
        return None
    return value


# Numbers are stored as JSON and handed to automations: keep them exact in every JSON reader.
MAX_SAFE_NUMBER = 2**53


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= MAX_SAFE_NUMBER
    )


# ---------------------------------------------------------------- elements


def check_elements(elements: object) -> tuple[list[dict[str, Any]], str]:
    """Validate and normalize the `elements` of an interactive message; return (elements, action type)."""
    if not isinstance(elements, list):
        raise ValidationFailed(details={"elements": ["must be a list"]})
    if not elements:
        raise ValidationFailed(details={"elements": ["must not be empty"]})
    if len(elements) > MAX_ELEMENTS:
        raise ValidationFailed(details={"elements": [f"must have at most {MAX_ELEMENTS} elements"]})

    p = _Problems()
    normalized: list[dict[str, Any]] = []
    actions: list[str] = []
    for i, element in enumerate(elements):
        path = f"elements[{i}]"
        if not isinstance(element, Mapping):
            p.add(path, "must be an object")
            continue
        if "type" not in element:
            p.add(f"{path}.type", "is required")
            continue
        kind = element["type"]
        if not isinstance(kind, str) or kind not in ELEMENT_TYPES:
            p.add(f"{path}.type", _one_of(ELEMENT_TYPES))
            continue
        _unknown_keys(p, element, _ELEMENT_KEYS[kind], path)
        if kind in ACTION_TYPES:
            actions.append(kind)
        normalized.append(_CHECKS[kind](p, element, path))
    if len(actions) != 1:
        p.add("elements", _ACTIONS_PROBLEM)
    p.raise_if_any()
    return normalized, actions[0]


def _check_prose(p: _Problems, element: Mapping[str, Any], path: str) -> dict[str, Any]:
    text = _string_key(p, element, "text", path, required=True, max_length=MAX_TEXT)
    return {"type": element["type"], "text": text}


def _check_divider(p: _Problems, element: Mapping[str, Any], path: str) -> dict[str, Any]:
    return {"type": "divider"}


def _check_boolean(p: _Problems, element: Mapping[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "boolean"}
    if "text" in element:
        out["text"] = _string_key(p, element, "text", path, required=False, max_length=MAX_TEXT, min_length=0)
    for key in ("approve_label", "reject_label"):
        if key in element:
            out[key] = _string_key(p, element, key, path, required=False, max_length=MAX_SHORT_LABEL)
    out["require_comment_on_reject"] = _bool_key(p, element, "require_comment_on_reject", path)
    return out


def _check_buttons(p: _Problems, element: Mapping[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "buttons"}
    if "text" in element:
        out["text"] = _string_key(p, element, "text", path, required=False, max_length=MAX_TEXT, min_length=0)
    options: list[dict[str, Any]] = []
    seen: set[str] = set()
    for j, option in enumerate(_list_key(p, element, "options", path, max_items=MAX_BUTTONS, noun="options") or []):
        opath = f"{path}.options[{j}]"
        if not isinstance(option, Mapping):
            p.add(opath, "must be an object")
            continue
        _unknown_keys(p, option, _BUTTON_KEYS, opath)
        label = _string_key(p, option, "label", opath, required=True, max_length=MAX_LABEL)
        value = _string_key(p, option, "value", opath, required=True, max_length=MAX_LABEL)
        if value is not None:
            if value in seen:
                p.add(f"{opath}.value", "must be unique")
            seen.add(value)
        style = option.get("style", "default")
        if not isinstance(style, str) or style not in BUTTON_STYLES:
            p.add(f"{opath}.style", _one_of(BUTTON_STYLES))
        options.append({"label": label, "value": value, "style": style})
    out["options"] = options
    return out


def _check_fields(p: _Problems, element: Mapping[str, Any], path: str) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for j, raw in enumerate(_list_key(p, element, "inputs", path, max_items=MAX_INPUTS, noun="inputs") or []):
        ipath = f"{path}.inputs[{j}]"
        spec = _check_input(p, raw, ipath)
        name = spec.get("name")
        if isinstance(name, str):
            if name in seen:
                p.add(f"{ipath}.name", "must be unique")
            seen.add(name)
        inputs.append(spec)
    out: dict[str, Any] = {"type": "fields", "inputs": inputs}
    if "submit_label" in element:
        out["submit_label"] = _string_key(
            p, element, "submit_label", path, required=False, max_length=MAX_SHORT_LABEL
        )
    return out


def _check_input(p: _Problems, raw: object, path: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        p.add(path, "must be an object")
        return {}
    problems_before = p.count()
    _unknown_keys(p, raw, _INPUT_KEYS, path)

    name = _string_key(p, raw, "name", path, required=True, max_length=MAX_NAME)
    if name is not None and not _NAME_RE.fullmatch(name):
        p.add(f"{path}.name", "must start with a letter or underscore and hold only letters, digits and underscores")
    label = _string_key(p, raw, "label", path, required=True, max_length=MAX_LABEL)
    kind = raw.get("input_type")
    if "input_type" not in raw:
        p.add(f"{path}.input_type", "is required")
    elif not isinstance(kind, str) or kind not in INPUT_TYPES:
        p.add(f"{path}.input_type", _one_of(INPUT_TYPES))
        kind = None
    out: dict[str, Any] = {
        "name": name,
        "label": label,
        "input_type": kind,
        "required": _bool_key(p, raw, "required", path),
    }
    if "placeholder" in raw:
        out["placeholder"] = _string_key(
            p, raw, "placeholder", path, required=False, max_length=MAX_LABEL, min_length=0
        )

    if "options" in raw:
        if kind == "select":
            out["options"] = _check_select_options(p, raw["options"], f"{path}.options")
        elif kind is not None:
            p.add(f"{path}.options", "is only allowed for select inputs")
    elif kind == "select":
        p.add(f"{path}.options", "is required for select inputs")

    for key in ("min", "max"):
        if key not in raw:
            continue
        if kind is not None and kind != "number":
            p.add(f"{path}.{key}", "is only allowed for number inputs")
        elif not _is_number(raw[key]):
            p.add(f"{path}.{key}", "must be a number")
        else:
            out[key] = raw[key]
    if "min" in out and "max" in out and out["min"] > out["max"]:
        p.add(f"{path}.max", "must not be less than min")

    # A default is checked as an answer would be, once the input itself is sound.
    if "default" in raw and p.count() == problems_before:
        default = raw["default"]
        if _is_missing(default, out["input_type"]):
            p.add(f"{path}.default", "must not be empty")
        else:
            value, problem = _input_value(out, default)
            if problem is not None:
                p.add(f"{path}.default", problem)
            else:
                out["default"] = value
    return out


def _check_select_options(p: _Problems, raw: object, path: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        p.add(path, "must be a list")
        return []
    if not raw:
        p.add(path, "must not be empty")
        return []
    if len(raw) > MAX_SELECT_OPTIONS:
        p.add(path, f"must have at most {MAX_SELECT_OPTIONS} options")
        return []
    options: list[dict[str, Any]] = []
    seen: set[str] = set()
    for j, option in enumerate(raw):
        opath = f"{path}[{j}]"
        if isinstance(option, str):
            label = value = _string(p, option, opath, max_length=MAX_LABEL)
            value_path = opath
        elif isinstance(option, Mapping):
            _unknown_keys(p, option, _SELECT_OPTION_KEYS, opath)
            label = _string_key(p, option, "label", opath, required=True, max_length=MAX_LABEL)
            value = _string_key(p, option, "value", opath, required=True, max_length=MAX_LABEL)
            value_path = f"{opath}.value"
        else:
            p.add(opath, "must be a string or an object with label and value")
            continue
        if value is not None:
            if value in seen:
                p.add(value_path, "must be unique")
            seen.add(value)
        options.append({"label": label, "value": value})
    return options


_CHECKS = {
    "header": _check_prose,
    "text": _check_prose,
    "divider": _check_divider,
    "boolean": _check_boolean,
    "buttons": _check_buttons,
    "fields": _check_fields,
}


# ---------------------------------------------------------------- answers


def check_answer(elements: list[dict[str, Any]], answer: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a person's answer against the (already normalized) elements; return the normalized response."""
    action = next((e for e in elements if e.get("type") in ACTION_TYPES), None)
    if action is None:
        raise ValueError("the elements hold no action element; normalize them with check_elements first")
    kind: str = action["type"]
    if not isinstance(answer, Mapping):
        raise ValidationFailed(details={"answer": [f'must be an object with the key "{_ANSWER_KEY[kind]}"']})
    p = _Problems()
    _unknown_answer_keys(p, answer, _ANSWER_KEYS[kind])
    if kind == "boolean":
        result = _boolean_answer(p, action, answer)
    elif kind == "buttons":
        result = _buttons_answer(p, action, answer)
    else:
        result = _fields_answer(p, action, answer)
    p.raise_if_any()
    return result


def _unknown_answer_keys(p: _Problems, answer: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in answer:
        if key not in allowed:
            p.add(str(key), "is not a known key")


def _boolean_answer(p: _Problems, action: Mapping[str, Any], answer: Mapping[str, Any]) -> dict[str, Any]:
    approved = answer.get("approved")
    if "approved" not in answer:
        p.add("approved", "is required")
    elif not isinstance(approved, bool):
        p.add("approved", "must be true or false")
    message: str | None = None
    raw = answer.get("message")
    if raw is not None:
        if not isinstance(raw, str):
            p.add("message", "must be a string")
        else:
            message = raw.strip() or None
            if message is not None and len(message) > MAX_MESSAGE:
                p.add("message", f"must be at most {MAX_MESSAGE} characters")
    if approved is False and action["require_comment_on_reject"] and message is None and "message" not in p.details:
        p.add("message", "is required when rejecting")
    return {"approved": approved, "message": message}


def _buttons_answer(p: _Problems, action: Mapping[str, Any], answer: Mapping[str, Any]) -> dict[str, Any]:
    values = [option["value"] for option in action["options"]]
    selection = answer.get("selection")
    if "selection" not in answer:
        p.add("selection", "is required")
    elif not isinstance(selection, str) or selection not in values:
        p.add("selection", _one_of_quoted(values))
    return {"selection": selection}


def _fields_answer(p: _Problems, action: Mapping[str, Any], answer: Mapping[str, Any]) -> dict[str, Any]:
    if "data" not in answer:
        p.add("data", "is required")
        return {}
    data = answer["data"]
    if not isinstance(data, Mapping):
        p.add("data", "must be an object")
        return {}
    inputs: list[dict[str, Any]] = action["inputs"]
    names = {spec["name"] for spec in inputs}
    for key in data:
        if key not in names:
            p.add(f"data.{key}", "is not a known input")
    out: dict[str, Any] = {}
    for spec in inputs:
        name, kind = spec["name"], spec["input_type"]
        where = f"data.{name}"
        raw = data.get(name)
        if _is_missing(raw, kind):
            if spec["required"]:
                p.add(where, "is required")
            elif "default" in spec:
                out[name] = spec["default"]
            elif kind == "checkbox":
                out[name] = False
            continue
        value, problem = _input_value(spec, raw)
        if problem is not None:
            p.add(where, problem)
        elif kind == "checkbox" and spec["required"] and value is not True:
            p.add(where, "must be checked")
        else:
            out[name] = value
    return {"data": out}


def _is_missing(value: object, kind: str) -> bool:
    """Absent or null; for inputs other than checkboxes, a blank string too."""
    if value is None:
        return True
    return kind != "checkbox" and isinstance(value, str) and not value.strip()


def _input_value(spec: Mapping[str, Any], raw: object) -> tuple[Any, str | None]:
    """(typed value, None) or (None, problem) for one value of one input."""
    kind = spec["input_type"]
    if kind == "checkbox":
        return (raw, None) if isinstance(raw, bool) else (None, "must be true or false")
    if kind == "number":
        return _number_value(spec, raw)
    if not isinstance(raw, str):
        if kind == "select":
            return None, _one_of_quoted([option["value"] for option in spec["options"]])
        return None, "must be a string"
    if kind == "textarea":
        limit = MAX_ANSWER_TEXT[kind]
        return (raw, None) if len(raw) <= limit else (None, f"must be at most {limit} characters")
    text = raw.strip()
    if kind == "text":
        limit = MAX_ANSWER_TEXT[kind]
        return (text, None) if len(text) <= limit else (None, f"must be at most {limit} characters")
    if kind == "select":
        values = [option["value"] for option in spec["options"]]
        return (raw, None) if raw in values else (None, _one_of_quoted(values))
    if kind == "email":
        ok = len(text) <= MAX_EMAIL and _EMAIL_RE.fullmatch(text) is not None
        return (text, None) if ok else (None, "must be a valid email address")
    if kind == "date":
        return _date_value(text)
    if kind == "datetime":
        return _datetime_value(text)
    return _url_value(text)


def _number_value(spec: Mapping[str, Any], raw: object) -> tuple[Any, str | None]:
    problem = "must be a number"
    value: int | float
    if isinstance(raw, bool):
        return None, problem
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float):
        if not math.isfinite(raw):
            return None, problem
        value = int(raw) if raw.is_integer() else raw
    elif isinstance(raw, str):
        text = raw.strip()
        if not _NUMBER_RE.fullmatch(text):
            return None, problem
        try:
            if _INTEGER_RE.fullmatch(text):
                value = int(text)
            else:
                parsed = float(text)
                if not math.isfinite(parsed):
                    return None, problem
                value = int(parsed) if parsed.is_integer() else parsed
        except ValueError:  # more digits than Python converts
            return None, problem
    else:
        return None, problem
    if abs(value) > MAX_SAFE_NUMBER:
        return None, f"must be between -{MAX_SAFE_NUMBER} and {MAX_SAFE_NUMBER}"
    if "min" in spec and value < spec["min"]:
        return None, f"must be at least {spec['min']}"
    if "max" in spec and value > spec["max"]:
        return None, f"must be at most {spec['max']}"
    return value, None


def _date_value(text: str) -> tuple[Any, str | None]:
    problem = "must be a date as YYYY-MM-DD"
    if not _DATE_RE.fullmatch(text):
        return None, problem
    try:
        date.fromisoformat(text)
    except ValueError:
        return None, problem
    return text, None


def _datetime_value(text: str) -> tuple[Any, str | None]:
    problem = "must be an ISO 8601 date and time with a timezone, such as 2024-01-15T10:30:00Z"
    moment = parse_moment(text) if _DATETIME_RE.fullmatch(text) else None
    return (iso(moment), None) if moment is not None else (None, problem)


def _url_value(text: str) -> tuple[Any, str | None]:
    problem = "must be an http or https URL with a host"
    if len(text) > MAX_URL or any(c.isspace() for c in text):
        return None, problem
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError for a port out of range
        host = parts.hostname
    except ValueError:
        return None, problem
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None, problem
    return text, None
