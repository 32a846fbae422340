"""Chat and approval tools (beyond the seed): any MCP client can read conversations, speak
as the agent, ask a person for approval and wait for the answer, push a notification and show
a typing indicator. Each calls the service its REST route calls, with that route's scope."""

from __future__ import annotations

from typing import Any

from pydantic import Field as Arg

from ...events.payloads import conversation_json, message_json
from ...kernel.auth import Principal
from ...services import conversations, interactive, messages, push, typing_indicators
from .. import arguments as a
from ..results import conversation_page_json, message_page_json, push_sent_json
from .tools import ids_only, link_base, settings, tool, with_ids

_WAIT = Arg(0, ge=0, le=interactive.MAX_WAIT_SECONDS, description="Seconds to wait for the answer (at most 60).")


class ConversationPage(a.Args):
    limit: int = Arg(50, ge=1, le=a.PAGE_MAX)
    cursor: str | None = Arg(None, description="meta.next_cursor of the previous page.")


class MessageWindow(a.Args):
    after_seq: int | None = Arg(None, ge=0, le=a.MAX_INT, description="Messages after this seq (oldest first).")
    before_seq: int | None = Arg(None, ge=0, le=a.MAX_INT, description="The newest page before this seq.")
    limit: int = Arg(50, ge=1, le=a.PAGE_MAX)


class Approval(a.InteractiveSend):
    """The interactive message REST sends, with the callback optional: the asker may wait."""

    callback_url: str | None = Arg(None, description="Also POST the answer here, signed (optional).")  # type: ignore[assignment]
    callback_id: str | None = Arg(None, description="Your id, echoed in the callback.")  # type: ignore[assignment]
    wait_seconds: float = _WAIT


class Answer(a.Args):
    wait_seconds: float = _WAIT


class Typing(a.TypingData):
    pass


class PushSend(a.PushContent):
    email: str = Arg(description="The member to notify.")


def _state(message: Any, interaction: Any) -> dict[str, Any]:
    """An approval's state for the asker: pending, responded (with the answer) or expired."""
    out: dict[str, Any] = {"message_id": message.id, "conversation_id": message.conversation_id}
    if interaction is not None:
        out["status"] = interaction.status
        if interaction.status == "responded":
            out["answer"] = interaction.response
            out["responded_by"] = {"user_id": interaction.responded_by_id, "email": interaction.responded_by_email}
    out["message"] = message_json(message, interaction)
    return out


@tool("conversation_list", "An agent's conversations, newest first.",
      with_ids("ConversationList", ConversationPage, "agent_id"), read_only=True)
async def conversation_list(p: Principal, args: Any) -> Any:
    return conversation_page_json(*await conversations.list_conversations(p, args.agent_id, limit=args.limit, cursor=args.cursor))


@tool("conversation_get", "One conversation.", ids_only("ConversationGet", "conversation_id"), read_only=True)
async def conversation_get(p: Principal, args: Any) -> Any:
    return {"conversation": conversation_json(await conversations.get_conversation(p, args.conversation_id))}


@tool("conversation_messages", "A conversation's messages, oldest first.",
      with_ids("ConversationMessages", MessageWindow, "conversation_id"), read_only=True)
async def conversation_messages(p: Principal, args: Any) -> Any:
    return message_page_json(await messages.list_messages(
        p, args.conversation_id, after_seq=args.after_seq, before_seq=args.before_seq, limit=args.limit, link_base=link_base()
    ))


@tool("message_send", "Send a message in a conversation as its agent (originate).",
      with_ids("MessageSend", a.Originate, "conversation_id"))
async def message_send(p: Principal, args: Any) -> Any:
    message = await messages.originate(
        p, args.conversation_id, args.content, role=args.role, external_message_id=args.external_message_id,
        attachments=args.attachments, link_base=link_base(),
    )
    return {"message": message_json(message)}


@tool("ask_approval", "Ask the conversation's person to approve, choose or fill in a form. Returns the answer if it "
      "arrives within wait_seconds, else the pending message_id to pass to get_answer.",
      with_ids("AskApproval", Approval, "conversation_id"))
async def ask_approval(p: Principal, args: Any) -> Any:
    return _state(*await interactive.send_and_wait(
        p,
        args.conversation_id,
        wait=args.wait_seconds,
        callback_url=args.callback_url,
        callback_id=args.callback_id,
        elements=args.elements,
        expires_at=a.moment(args.expires_at, "expires_at"),
        allow_private=settings().allow_private_webhooks,
        callback_optional=True,
    ))


@tool("get_answer", "An approval's state and answer, waiting up to wait_seconds for it.",
      with_ids("GetAnswer", Answer, "message_id"), read_only=True)
async def get_answer(p: Principal, args: Any) -> Any:
    message, interaction = await interactive.get_message(p, args.message_id, wait=args.wait_seconds)
    return _state(message, interaction)


@tool("push_send", "Send a push notification to every device of a member (by email).", PushSend)
async def push_send(p: Principal, args: Any) -> Any:
    content = push.check_content(
        title=args.title, body=args.body, priority=args.priority, sound=args.sound, badge=args.badge, data=args.data
    )
    return push_sent_json(await push.send(p, email=args.email, content=content))


@tool("typing_set", "Show or clear the agent's typing indicator in a conversation.",
      with_ids("TypingSet", Typing, "agent_id", "conversation_id"))
async def typing_set(p: Principal, args: Any) -> Any:
    await typing_indicators.set_typing(
        p, args.agent_id, args.conversation_id, typing=args.typing, label=args.label, show_dots=args.show_dots,
        timeout_ms=args.timeout,
    )
    return {"success": True}
