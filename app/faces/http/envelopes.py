"""Answer envelopes many routes share (each route's own answer types live beside it)."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from typing_extensions import TypedDict

from ...events.payloads import MessageJSON

__all__ = ["Data", "Success", "MessageSent"]

T = TypeVar("T")


class Data(TypedDict, Generic[T]):
    """The Data and Files APIs' envelope: ``{"data": ...}``."""

    data: T


class Success(TypedDict):
    success: Literal[True]


class MessageSent(TypedDict):
    success: Literal[True]
    message: MessageJSON
