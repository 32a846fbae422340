"""The arguments of each Data API operation, once: the REST routes validate request bodies
with these models and the MCP server builds its tools' input schemas from the same models
(plus the ids a REST route takes from its path). Types are checked here; what depends on the
table (field names, filter operators, values) is checked by the store, for both faces."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, ValidationError
from pydantic import Field as Arg

from ..kernel.errors import ValidationFailed
from ..kernel.timefmt import parse_moment
from ..services import typing_indicators
from ..services.validation import MAX_WAIT_SECONDS
from ..store import query, structure

__all__ = [
    "Args", "checked", "changes", "moment", "validation_details", "MAX_INT", "PAGE_MAX",
    "Page", "DatabaseCreate", "DatabaseChanges", "TableCreate", "TableChanges", "FieldCreate", "FieldChanges",
    "EntryValues", "EntryChanges", "EntryList", "EntryQuery", "EntryBulk", "EntryAggregate", "NotesReplace", "NotesAppend",
    "UserMessage", "Originate", "InteractiveSend", "TypingData", "PushContent",
]

# 64-bit signed: the widest integer both SQLite and PostgreSQL store.
MAX_INT = 2**63 - 1
PAGE_MAX = 200


class Args(BaseModel):
    """Base of operation arguments: unknown keys are ignored, types are not coerced loosely."""

    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def validation_details(exc: ValidationError) -> dict[str, list[str]]:
    details: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        details.setdefault(_path(tuple(err["loc"])), []).append(err["msg"])
    return details


M = TypeVar("M", bound=BaseModel)


def checked(model: type[M], data: Any) -> M:
    """``data`` validated as ``model``: 422 ``validation_failed`` naming each bad key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc)) from exc


def changes(args: BaseModel, *ids: str) -> dict[str, Any]:
    """An update's keys as given (absent keys stay unchanged), without the ids and flags."""
    return {k: v for k, v in args.model_dump(exclude_unset=True).items() if k not in ids and k != "dry_run"}


def moment(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 date-time argument (422 naming ``field`` when it is not one)."""
    if value is None:
        return None
    parsed = parse_moment(value)
    if parsed is None:
        raise ValidationFailed(details={field: ["must be an ISO 8601 date-time with a time zone, e.g. 2026-01-15T10:30:00Z"]})
    return parsed


# ---------------------------------------------------------------- the operations


class Page(Args):
    limit: int = Arg(50, ge=1, le=PAGE_MAX, description="Page size (at most 200).")
    offset: int = Arg(0, ge=0, le=MAX_INT, description="How many to skip.")


class DatabaseCreate(Args):
    name: str = Arg(description="The database's name.", examples=["CRM"])
    description: str | None = Arg(None, description="What the database holds.")
    color: str | None = Arg(None, description="A display color, e.g. #3b82f6.")


class DatabaseChanges(Args):
    name: str | None = None
    description: str | None = None
    color: str | None = None


class TableCreate(Args):
    name: str = Arg(description="The table's name. A Name text field is added automatically.", examples=["Deals"])


class TableChanges(Args):
    name: str | None = None
    position: int | None = Arg(None, ge=0, le=structure.MAX_POSITION)


_FIELD_TYPE = (
    "One of text, number, select, multi_select, date, checkbox, url, file, relation, user, formula, rollup, lookup."
)


class FieldCreate(Args):
    name: str = Arg(examples=["Stage"])
    field_type: str = Arg(validation_alias=AliasChoices("field_type", "type"), description=_FIELD_TYPE, examples=["select"])
    config: dict[str, Any] | None = Arg(
        None, description="Type settings: select options, a formula's expression, a relation's table_id ..."
    )


class FieldChanges(Args):
    name: str | None = None
    field_type: str | None = Arg(None, validation_alias=AliasChoices("field_type", "type"), description=_FIELD_TYPE)
    config: dict[str, Any] | None = Arg(None, description="Merged into the current config (not replaced).")
    dry_run: bool = Arg(False, description="Report what a type change would convert, change nothing.")


class EntryValues(Args):
    values: dict[str, Any] | None = Arg(
        None, description="Field names or display ids (fd_...) mapped to values; select options by label or id.",
        examples=[{"Name": "Acme renewal", "Stage": "Won"}],
    )


class EntryChanges(Args):
    values: dict[str, Any] = Arg(description="Only the fields named are changed (a merge).")


# Filters, sorts and bulk operations are checked by the store, which reports them with the
# contract's own codes (invalid_filter, invalid_sort); the schema still says their shape.
_LIST_OR_GROUP: dict[str, Any] = {"type": ["array", "object", "null"]}


class EntryList(Args):
    """``GET .../entries``: the query string's simple form of ``EntryQuery``."""

    sort: str | None = Arg(None, description="Field:direction pairs, e.g. Status:asc,Name:desc.")
    search: str | None = Arg(None, description="Full-text search over the entry's text.")
    limit: int | None = Arg(None, ge=1, le=query.MAX_CURSOR_LIMIT, description="50 by default; at most 200, or 1000 "
                            "with a cursor.")
    offset: int | None = Arg(None, ge=0, le=MAX_INT)
    cursor: str | None = Arg(None, description="next_cursor of the previous page; empty for the first keyset page.")


class EntryQuery(Args):
    filters: Any = Arg(
        None,
        description='AND-combined filters, e.g. [{"field": "Status", "op": "is", "value": "Done"}]; '
        'or a group {"or": [...]}.',
        json_schema_extra=_LIST_OR_GROUP,
    )
    sort: Any = Arg(
        None, description='e.g. [{"field": "Due", "direction": "asc"}].', json_schema_extra=_LIST_OR_GROUP
    )
    search: str | None = Arg(None, description="Full-text search over the entry's text.")
    limit: int | None = Arg(None, ge=1, le=query.MAX_CURSOR_LIMIT)
    offset: int | None = Arg(None, ge=0, le=MAX_INT)
    cursor: str | None = Arg(None, description="next_cursor of the previous page (keyset pagination).")
    timezone: str | None = Arg(None, description="IANA zone for relative dates; the organization's by default.")


class EntryBulk(Args):
    operations: Any = Arg(
        json_schema_extra={"type": "array", "items": {"type": "object"}},
        description='Up to 100 of {"action": "create"|"update"|"delete", "id"?: "en_...", "values"?: {...}}.',
    )
    atomic: bool = Arg(False, description="All or nothing.")


class EntryAggregate(Args):
    function: str = Arg(description="count, distinct_count, sum, average, min or max.")
    field_id: str | None = Arg(
        None, validation_alias=AliasChoices("field_id", "field"), description="Required for all but count."
    )
    field_type: str | None = Arg(None, description="Optional hint; the field's own type decides.")
    filters: Any = Arg(None, json_schema_extra=_LIST_OR_GROUP)
    search: str | None = None
    group_by: Any = Arg(None, description="A field to group the results by.", json_schema_extra={"type": ["string", "null"]})


class NotesReplace(Args):
    notes: dict[str, Any] | None = Arg(description="A TipTap JSON document, or null to clear the notes.")


class NotesAppend(Args):
    nodes: list[Any] = Arg(
        validation_alias=AliasChoices("nodes", "content"), description="TipTap block nodes appended at the end."
    )


# ---------------------------------------------------------------- conversations


class UserMessage(Args):
    content: str = Arg(description="The message text (markdown).", examples=["Where is my order #1042?"])
    attachments: list[str] | None = Arg(None, description="Ids of confirmed files sent with the message.")
    wait: int | None = Arg(None, ge=0, le=MAX_WAIT_SECONDS, description="Seconds (at most 60) to wait for the agent's "
                           "reply, answered as `reply` (null if none came in time).")


class Originate(Args):
    content: str = Arg(description="The message text (markdown).", examples=["It shipped this morning."])
    role: str = Arg(description='Always "assistant": the agent speaks.', examples=["assistant"])
    external_message_id: str | None = Arg(None, description="Your id for the message: a repeat is refused (409).")
    attachments: list[str] | None = Arg(None, description="Ids of confirmed files sent with the message.")


class InteractiveSend(Args):
    callback_url: str = Arg(description="Where the answer is POSTed, signed.", examples=["https://automation.example/approve"])
    callback_id: str = Arg(description="Your id, echoed in the callback.", examples=["refund-1042"])
    elements: Any = Arg(
        json_schema_extra={"type": "array", "items": {"type": "object"}},
        description="header / text / divider elements and one action: boolean, buttons or fields.",
        examples=[[{"type": "text", "text": "Refund $42 to Ada?"}, {"type": "boolean", "require_comment_on_reject": True}]],
    )
    expires_at: str | None = Arg(None, description="ISO 8601 date-time; unanswered by then, it expires.")


class TypingData(Args):
    typing: bool = Arg(examples=[True])
    label: str | None = Arg(None, max_length=typing_indicators.MAX_LABEL, description="e.g. Searching the web...")
    show_dots: bool = True
    timeout: int = Arg(typing_indicators.DEFAULT_TIMEOUT_MS, ge=1, le=typing_indicators.MAX_TIMEOUT_MS,
                       description="Milliseconds until the indicator clears itself.")


def _requires(*names: str) -> Callable[[dict[str, Any], type[BaseModel]], None]:
    """Mark keys required in the schema that the service itself checks (and words the error for)."""

    def extra(schema: dict[str, Any], _: type[BaseModel]) -> None:
        schema["required"] = [*dict.fromkeys([*schema.get("required", []), *names])]

    return extra


class PushContent(Args):
    """Checked by the push service (the same rule for every face); typed here for schemas."""

    model_config = ConfigDict(**Args.model_config, json_schema_extra=_requires("title", "body"))

    title: Any = Arg(None, json_schema_extra={"type": "string"}, examples=["Approval needed"])
    body: Any = Arg(None, json_schema_extra={"type": "string"}, examples=["Refund $42 to Ada?"])
    priority: Any = Arg(None, json_schema_extra={"enum": ["low", "normal", "medium", "high", "critical", None]})
    sound: Any = Arg(None, json_schema_extra={"type": ["string", "null"]})
    badge: Any = Arg(None, json_schema_extra={"type": ["integer", "null"]})
    data: Any = Arg(None, json_schema_extra={"type": ["object", "null"]}, description="Custom data; "
                    "data.workflow_state starts a Live Activity.")
