"""Send and wait: a person's message, answered with the agent's next reply.

Scripts call an agent like a function: ``send_and_wait`` stores the message and returns it
with the first reply stored after it in its conversation (by ``seq``), or ``None`` once
``wait`` seconds have passed. A reply is an assistant message, whoever stored it: a webhook
agent's ``originate`` or a custom agent's reply, which is stored only once final (complete,
stopped or error). A custom agent's reply that says it answers an earlier message
(``meta.reply_to_seq``) is not this message's; interactive messages are questions to the
person (a tool's approval, say), not replies.

The conversation is watched before the message is stored, so a reply stored before the store
returns is not missed. The watch is fed by ``message.created`` events, this process's and,
with Redis, every other process's: waiting holds no database connection and reads nothing
until a reply may have arrived, then reads that message once.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

from ..events import bus
from ..kernel.waiters import Waiters
from ..kernel.auth import Principal, require_scope
from ..models.chat import Message
from . import files, messages
from .validation import check_wait

__all__ = ["send_and_wait", "arrivals"]

# By conversation id: (message id, seq) of each assistant message announced in it.
arrivals: Waiters[tuple[str, int]] = Waiters()


def _announced(payload: Mapping[str, Any]) -> None:
    if payload.get("role") == "assistant" and payload.get("kind", "text") != "interactive":
        arrivals.wake(str(payload.get("conversation_id")), (str(payload.get("id")), int(payload.get("seq") or 0)))


bus.listen("message.created", _announced)


async def send_and_wait(
    principal: Principal,
    conversation_id: str,
    content: str,
    *,
    wait: int | None = None,
    attachments: Any = None,
    link_base: str | None = None,
) -> tuple[Message, Message | None]:
    """The stored message and, with ``wait`` (0 to 60 seconds), its reply if one arrives in
    time. Without ``wait`` it is ``messages.send_user_message``."""
    if wait is None:
        return await messages.send_user_message(principal, conversation_id, content, attachments=attachments,
                                                link_base=link_base), None
    check_wait(wait)
    require_scope(principal, "conversations:read")  # the reply is read back: both rights before sending
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    with arrivals.watch(conversation_id) as watch:
        sent = await messages.send_user_message(principal, conversation_id, content, attachments=attachments,
                                                link_base=link_base)
        while True:
            try:
                message_id, seq = await watch.next(deadline - loop.time())
            except TimeoutError:
                # Pub/sub delivers at most once (a Redis reconnect can drop an announcement):
                # the stored messages have the last word.
                return sent, await _stored_reply(principal, sent, link_base)
            if seq <= sent.seq:
                continue
            reply = await _reply(principal, message_id, sent.seq, link_base)
            if reply is not None:
                return sent, reply


async def _stored_reply(principal: Principal, sent: Message, link_base: str | None) -> Message | None:
    later = await Message.filter(
        conversation_id=sent.conversation_id, seq__gt=sent.seq, role="assistant", kind="text"  # type: ignore[attr-defined]
    ).order_by("seq").limit(5).values_list("id", flat=True)
    for message_id in later:
        reply = await _reply(principal, str(message_id), sent.seq, link_base)
        if reply is not None:
            return reply
    return None


async def _reply(principal: Principal, message_id: str, asked_seq: int, link_base: str | None) -> Message | None:
    """The message if it answers the one at ``asked_seq``, with its files' download URLs."""
    reply = await Message.get_or_none(id=message_id)
    if reply is None:
        return None
    answers = (reply.meta or {}).get("reply_to_seq")
    if isinstance(answers, int) and answers < asked_seq:
        return None  # a custom agent's answer to an earlier message, stored after this one
    await files.sign_attachments(principal.org_id, [reply], link_base)
    return reply
