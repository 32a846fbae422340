"""Answer shapes more than one face returns (REST and MCP), built once."""

from __future__ import annotations

from typing import Any, Literal

from typing_extensions import TypedDict

from ..events.payloads import ConversationJSON, MessageJSON, conversation_json, message_json
from ..kernel.timefmt import iso
from ..services import push
from ..services.messages import MessagePage
from ..store.models import StoredFile

__all__ = [
    "ConversationPageJSON", "MessagePageJSON", "PushSentJSON", "FileJSON",
    "push_sent_json", "file_json", "conversation_page_json", "message_page_json",
]


class CursorMeta(TypedDict):
    next_cursor: str | None


class ConversationPageJSON(TypedDict):
    conversations: list[ConversationJSON]
    meta: CursorMeta


class MessagePageMeta(TypedDict):
    has_more: bool
    last_seq: int


class MessagePageJSON(TypedDict):
    messages: list[MessageJSON]
    meta: MessagePageMeta


class PushSentJSON(TypedDict):
    success: Literal[True]
    email: str
    notification_id: str
    devices_succeeded: int
    devices_failed: int
    devices_queued: int
    total_devices: int


class FileJSON(TypedDict):
    id: str
    filename: str
    content_type: str
    size_bytes: int
    entry_id: str | None
    field_id: str | None
    created_at: str | None
    updated_at: str | None


def conversation_page_json(rows: list[Any], next_cursor: str | None) -> ConversationPageJSON:
    return {"conversations": [conversation_json(c) for c in rows], "meta": {"next_cursor": next_cursor}}


def message_page_json(page: MessagePage) -> MessagePageJSON:
    return {
        "messages": [message_json(m, page.interactions.get(m.id)) for m in page.messages],
        "meta": {"has_more": page.has_more, "last_seq": page.last_seq},
    }


def push_sent_json(result: push.SendResult) -> PushSentJSON:
    return {
        "success": True,
        "email": result.email,
        "notification_id": result.notification_id,
        "devices_succeeded": result.succeeded,
        "devices_failed": result.failed,
        "devices_queued": result.queued,
        "total_devices": result.total,
    }


def file_json(f: StoredFile) -> FileJSON:
    return {
        "id": f.id,
        "filename": f.filename,
        "content_type": f.content_type,
        "size_bytes": f.size_bytes,
        "entry_id": f.entry_id,
        "field_id": f.field_id,
        "created_at": iso(f.created_at),
        "updated_at": iso(f.updated_at),
    }
