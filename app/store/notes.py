"""Entry notes: validation of TipTap JSON documents.

A document is ``{"type": "doc", "content": [block, ...]}``. Accepted nodes (StarterKit names):

    block   heading (attrs.level 1-3, required)   paragraph          blockquote (blocks)
            bulletList / orderedList (listItems; orderedList attrs.start >= 0, attrs.type)
            listItem (blocks; only inside lists)  codeBlock (attrs.language; plain text only)
            horizontalRule (no content)
    inline  text (non-empty ``text``, optional ``marks``)   hardBreak (line break inside a block)
    marks   bold, italic, strike, code, link (attrs.href required: http, https or mailto;
            TipTap's own target / rel / class attrs are accepted)

Nodes may carry only the keys ``type``, ``attrs``, ``content`` (and ``text`` / ``marks`` for
text); ``attrs: {}`` is fine everywhere. Anything else raises ValidationFailed whose details
point at the offending path, e.g. ``{"notes.content[2].content[0].marks[1].type": ["unknown
mark 'underline'"]}``.

Limits: 50,000 characters (text plus link hrefs) and 1,000,000 bytes of JSON (UTF-8, compact
separators). Both raise ValidationFailed (422) with a message naming the limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field as dataclass_field
from typing import Any
from urllib.parse import urlsplit

from ..kernel.errors import ValidationFailed

__all__ = [
    "MAX_CHARACTERS",
    "MAX_JSON_BYTES",
    "append_nodes",
    "character_count",
    "validate_document",
    "validate_nodes",
]

MAX_CHARACTERS = 50_000
MAX_JSON_BYTES = 1_000_000
MAX_DEPTH = 64  # nesting of nodes (lists in lists, quotes in quotes...)
_MAX_REPORTED = 50  # problems listed in details before giving up

Attr = Callable[[Any], "str | None"]  # returns a problem, or None when the value is fine


def _level(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 3
    return None if ok else "heading level must be 1, 2 or 3"


def _start(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return None if ok else "must be a whole number >= 0"


def _optional_text(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "must be a string or null"


def _href(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "link href is required and must be a string"
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        return "link href must not contain spaces or control characters"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "link href is not a valid URL"
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.netloc:
        return None
    if scheme == "mailto" and parts.path:
        return None
    return "link href must be an http(s) or mailto URL"


@dataclass(frozen=True)
class _Spec:
    content: frozenset[str] | None = None  # allowed child types; None: no content at all
    attrs: dict[str, Attr] = dataclass_field(default_factory=dict)
    required: frozenset[str] = frozenset()
    min_children: int = 0
    marks_allowed: bool = True  # may child text carry marks (not in codeBlock)


BLOCKS = frozenset(
    {
        "heading",
        "paragraph",
        "bulletList",
        "orderedList",
        "blockquote",
        "codeBlock",
        "horizontalRule",
    }
)
INLINE = frozenset({"text", "hardBreak"})
_ITEMS = frozenset({"listItem"})

_NODES: dict[str, _Spec] = {
    "doc": _Spec(content=BLOCKS),
    "heading": _Spec(content=INLINE, attrs={"level": _level}, required=frozenset({"level"})),
    "paragraph": _Spec(content=INLINE),
    "bulletList": _Spec(content=_ITEMS, min_children=1),
    "orderedList": _Spec(
        content=_ITEMS, min_children=1, attrs={"start": _start, "type": _optional_text}
    ),
    "listItem": _Spec(content=BLOCKS, min_children=1),
    "blockquote": _Spec(content=BLOCKS),
    "codeBlock": _Spec(
        content=frozenset({"text"}), attrs={"language": _optional_text}, marks_allowed=False
    ),
    "horizontalRule": _Spec(),
    "hardBreak": _Spec(),
}

_MARKS: dict[str, _Spec] = {
    "bold": _Spec(),
    "italic": _Spec(),
    "strike": _Spec(),
    "code": _Spec(),
    "link": _Spec(
        attrs={
            "href": _href,
            "target": _optional_text,
            "rel": _optional_text,
            "class": _optional_text,
        },
        required=frozenset({"href"}),
    ),
}

_NODE_KEYS = frozenset({"type", "attrs", "content"})
_TEXT_KEYS = frozenset({"type", "text", "marks"})
_MARK_KEYS = frozenset({"type", "attrs"})


class _Checker:
    """Walks a document, collecting problems by path and counting characters."""

    def __init__(self) -> None:
        self.problems: dict[str, list[str]] = {}
        self.characters = 0

    def fail(self, path: str, message: str) -> None:
        if len(self.problems) < _MAX_REPORTED:
            self.problems.setdefault(path, []).append(message)

    def children(self, nodes: Any, path: str, parent: str, spec: _Spec, depth: int) -> None:
        if not isinstance(nodes, list):
            self.fail(path, "must be an array of nodes")
            return
        if len(nodes) < spec.min_children:
            wanted = "listItem" if spec.content == _ITEMS else "block node"
            self.fail(path, f"{parent} must contain at least one {wanted}")
        for index, node in enumerate(nodes):
            self.node(node, f"{path}[{index}]", parent, spec, depth)

    def node(self, node: Any, path: str, parent: str, parent_spec: _Spec, depth: int) -> None:
        if not isinstance(node, dict):
            self.fail(path, "must be an object with a type")
            return
        kind = node.get("type")
        allowed = parent_spec.content or frozenset()
        if not isinstance(kind, str):
            self.fail(f"{path}.type", "node type is required")
            return
        if kind != "text" and (kind not in _NODES or kind == "doc"):
            self.fail(f"{path}.type", f"unknown node type {kind!r}")
            return
        if kind not in allowed:
            self.fail(f"{path}.type", _misplaced(kind, parent))
            return
        if depth > MAX_DEPTH:
            self.fail(path, f"nodes are nested more than {MAX_DEPTH} levels deep")
            return
        if kind == "text":
            self.text(node, path, parent, parent_spec.marks_allowed)
            return
        spec = _NODES[kind]
        if kind == "hardBreak":  # TipTap may keep marks on a hard break
            self.keys(node, path, _NODE_KEYS | {"marks"})
            self.marks(node.get("marks"), f"{path}.marks", parent, parent_spec.marks_allowed)
        else:
            self.keys(node, path, _NODE_KEYS)
        self.attrs(node.get("attrs"), f"{path}.attrs", spec, kind)
        if spec.content is None:
            if node.get("content") not in (None, []):
                self.fail(f"{path}.content", f"{kind} cannot have content")
        elif "content" in node or spec.min_children:
            self.children(node.get("content", []), f"{path}.content", kind, spec, depth + 1)

    def text(self, node: dict[str, Any], path: str, parent: str, marks_allowed: bool) -> None:
        self.keys(node, path, _TEXT_KEYS)
        text = node.get("text")
        if not isinstance(text, str) or not text:
            self.fail(f"{path}.text", "text must be a non-empty string")
        else:
            self.characters += len(text)
        self.marks(node.get("marks"), f"{path}.marks", parent, marks_allowed)

    def marks(self, marks: Any, path: str, parent: str, marks_allowed: bool) -> None:
        if marks is None:
            return
        if not marks_allowed and marks != []:
            self.fail(path, f"text in {parent} cannot have marks")
            return
        if not isinstance(marks, list):
            self.fail(path, "must be an array of marks")
            return
        for index, mark in enumerate(marks):
            self.mark(mark, f"{path}[{index}]")

    def mark(self, mark: Any, path: str) -> None:
        if not isinstance(mark, dict):
            self.fail(path, "must be an object with a type")
            return
        kind = mark.get("type")
        if not isinstance(kind, str) or kind not in _MARKS:
            self.fail(f"{path}.type", f"unknown mark {kind!r}" if kind else "mark type is required")
            return
        self.keys(mark, path, _MARK_KEYS)
        attrs = mark.get("attrs")
        self.attrs(attrs, f"{path}.attrs", _MARKS[kind], kind)
        if kind == "link" and isinstance(attrs, dict) and isinstance(attrs.get("href"), str):
            self.characters += len(attrs["href"])

    def attrs(self, attrs: Any, path: str, spec: _Spec, kind: str) -> None:
        if attrs is None:
            attrs = {}
        if not isinstance(attrs, dict):
            self.fail(path, "attrs must be an object")
            return
        for name in sorted(spec.required - attrs.keys()):
            self.fail(f"{path}.{name}", f"{kind} requires attrs.{name}")
        for name, value in attrs.items():
            check = spec.attrs.get(name)
            if check is None:
                self.fail(f"{path}.{name}", f"unknown attribute {name!r} for {kind}")
            elif (problem := check(value)) is not None:
                self.fail(f"{path}.{name}", problem)

    def keys(self, node: dict[str, Any], path: str, allowed: frozenset[str]) -> None:
        for key in node:
            if key not in allowed:
                self.fail(f"{path}.{key}", f"unknown key {key!r}")


def _misplaced(kind: str, parent: str) -> str:
    if kind == "listItem":
        return "listItem is only allowed inside bulletList or orderedList"
    if kind == "text":
        return f"text is not allowed directly inside {parent} (wrap it in a paragraph)"
    if kind == "hardBreak":
        return f"hardBreak is only allowed inside paragraph or heading, not {parent}"
    return f"{kind} is not allowed inside {parent}"


def _raise_problems(checker: _Checker) -> None:
    if checker.problems:
        raise ValidationFailed("Invalid notes document.", details=checker.problems)


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _check_limits(value: Any, characters: int, field: str, what: str) -> None:
    if characters > MAX_CHARACTERS:
        raise ValidationFailed(
            f"{what} too long: {characters:,} characters (text and link addresses); "
            f"the limit is {MAX_CHARACTERS:,} characters.",
            details={field: [f"exceeds {MAX_CHARACTERS:,} characters ({characters:,})"]},
        )
    size = _json_bytes(value)
    if size > MAX_JSON_BYTES:
        raise ValidationFailed(
            f"{what} too large: {size:,} bytes of JSON; "
            f"the limit is {MAX_JSON_BYTES:,} bytes (1 MB).",
            details={field: [f"exceeds {MAX_JSON_BYTES:,} bytes of JSON ({size:,})"]},
        )


def validate_document(doc: Any, *, field: str = "notes") -> None:
    """Raise ValidationFailed unless ``doc`` is an acceptable notes document within the limits."""
    checker = _Checker()
    if not isinstance(doc, dict):
        checker.fail(field, 'must be a TipTap document: {"type": "doc", "content": [...]}')
    else:
        if doc.get("type") != "doc":
            checker.fail(f"{field}.type", 'document type must be "doc"')
        checker.keys(doc, field, frozenset({"type", "content"}))
        if not isinstance(doc.get("content"), list):
            checker.fail(f"{field}.content", "document content must be an array of block nodes")
        else:
            checker.children(doc["content"], f"{field}.content", "doc", _NODES["doc"], 1)
    _raise_problems(checker)
    _check_limits(doc, checker.characters, field, "Notes are")


def validate_nodes(nodes: Any, *, field: str = "content") -> None:
    """Raise ValidationFailed unless ``nodes`` is a non-empty array of valid block nodes."""
    checker = _Checker()
    if not isinstance(nodes, list) or not nodes:
        checker.fail(field, "must be a non-empty array of block nodes")
    else:
        checker.children(nodes, field, "doc", _NODES["doc"], 1)
    _raise_problems(checker)
    _check_limits(nodes, checker.characters, field, "Content is")


def character_count(doc: Any) -> int:
    """Characters counted against the limit: text plus link hrefs (tolerates odd input)."""
    total = 0
    stack = [doc]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if node.get("type") == "text" and isinstance(node.get("text"), str):
            total += len(node["text"])
            for mark in node.get("marks") or []:
                attrs = mark.get("attrs") if isinstance(mark, dict) else None
                if isinstance(attrs, dict) and mark.get("type") == "link":
                    href = attrs.get("href")
                    total += len(href) if isinstance(href, str) else 0
        content = node.get("content")
        if isinstance(content, list):
            stack.extend(content)
    return total


def append_nodes(doc: dict[str, Any] | None, nodes: list[Any]) -> dict[str, Any]:
    """A new document: ``doc`` (or an empty one) with ``nodes`` appended, within the limits."""
    validate_nodes(nodes)
    existing: list[Any] = []
    if doc is not None:
        if not isinstance(doc, dict) or not isinstance(doc.get("content"), list):
            raise ValidationFailed(
                "The stored notes are not a valid document; replace them first.",
                details={"notes": ["stored notes are not a TipTap document"]},
            )
        existing = doc["content"]
    result = {"type": "doc", "content": [*existing, *nodes]}
    _check_limits(result, character_count(result), "content", "Notes would be")
    return result
