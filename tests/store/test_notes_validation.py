"""TipTap notes validation: accepted shapes, every rejection, and the size limits."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.kernel.errors import ValidationFailed
from app.store.notes import (
    MAX_CHARACTERS,
    MAX_JSON_BYTES,
    append_nodes,
    character_count,
    validate_document,
    validate_nodes,
)

# The contract's examples, verbatim.
SEED_GET_NOTES = {
    "type": "doc",
    "content": [
        {
            "type": "heading",
            "attrs": {"level": 1},
            "content": [{"type": "text", "text": "Meeting Notes"}],
        },
        {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": "Discussed the "},
                {"type": "text", "marks": [{"type": "bold"}], "text": "Q1 roadmap"},
                {"type": "text", "text": " with the team."},
            ],
        },
    ],
}
SEED_PATCH_NOTES = {
    "type": "doc",
    "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "Replaced notes content."}]}
    ],
}
SEED_APPEND_PARAGRAPH = [
    {"type": "paragraph", "content": [{"type": "text", "text": "Appended a new paragraph."}]}
]
SEED_APPEND_LOG = [
    {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Update Log"}]},
    {
        "type": "bulletList",
        "content": [
            {
                "type": "listItem",
                "content": [
                    {
                        "type": "paragraph",
                        "content": [
                            {"type": "text", "marks": [{"type": "bold"}], "text": "Feb 17:"},
                            {"type": "text", "text": " API integration complete"},
                        ],
                    }
                ],
            },
            {
                "type": "listItem",
                "content": [
                    {
                        "type": "paragraph",
                        "content": [
                            {"type": "text", "marks": [{"type": "bold"}], "text": "Feb 18:"},
                            {"type": "text", "text": " Deployed to production"},
                        ],
                    }
                ],
            },
        ],
    },
]


def text(value: str, *marks: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": value}
    if marks:
        node["marks"] = list(marks)
    return node


def para(*inline: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(inline)}


def doc(*blocks: Any) -> dict[str, Any]:
    return {"type": "doc", "content": list(blocks)}


def item(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "listItem", "content": list(blocks)}


def link(href: str, **attrs: Any) -> dict[str, Any]:
    return {"type": "link", "attrs": {"href": href, **attrs}}


EVERYTHING = doc(
    {"type": "heading", "attrs": {"level": 1}, "content": [text("Title")]},
    {"type": "heading", "attrs": {"level": 2}, "content": [text("Sub")]},
    {"type": "heading", "attrs": {"level": 3}},
    para(
        text("bold", {"type": "bold"}),
        text("italic", {"type": "italic"}),
        text("strike", {"type": "strike"}),
        text("code", {"type": "code"}),
        text("all", {"type": "bold"}, {"type": "italic"}, {"type": "strike"}),
        {"type": "hardBreak"},
        text("site", link("https://a.io/b?c=d#e", target="_blank", rel="noopener", **{"class": None})),
        text("plain http", link("http://example.com")),
        text("mail", link("mailto:ops@example.com"), {"type": "bold"}),
    ),
    {"type": "paragraph"},
    {"type": "paragraph", "attrs": {}, "content": []},
    {
        "type": "bulletList",
        "content": [
            item(para(text("one"))),
            item(para(text("two")), {"type": "bulletList", "content": [item(para(text("nested")))]}),
        ],
    },
    {"type": "orderedList", "attrs": {"start": 3, "type": None}, "content": [item(para(text("three")))]},
    {"type": "orderedList", "content": [item(para(text("first")))]},
    {"type": "blockquote", "content": [para(text("quoted")), {"type": "orderedList", "content": [item(para())]}]},
    {"type": "codeBlock", "attrs": {"language": "python"}, "content": [text("print('hi')\n")]},
    {"type": "codeBlock", "attrs": {"language": None}, "content": [text("x = 1")]},
    {"type": "codeBlock"},
    {"type": "horizontalRule"},
    para({"type": "hardBreak", "marks": [{"type": "bold"}]}, text("after break")),
)


@pytest.mark.parametrize(
    "document",
    [SEED_GET_NOTES, SEED_PATCH_NOTES, EVERYTHING, doc()],
    ids=["seed-get", "seed-patch", "every-node-and-mark", "empty"],
)
def test_good_documents_pass(document: dict[str, Any]) -> None:
    before = copy.deepcopy(document)
    validate_document(document)
    assert document == before


@pytest.mark.parametrize(
    "nodes", [SEED_APPEND_PARAGRAPH, SEED_APPEND_LOG], ids=["paragraph", "update-log"]
)
def test_seed_append_examples_are_valid_nodes(nodes: list[dict[str, Any]]) -> None:
    validate_nodes(nodes)


def _problems(value: Any, *, nodes: bool = False) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as caught:
        if nodes:
            validate_nodes(value)
        else:
            validate_document(value)
    error = caught.value
    assert error.status == 422 and error.code == "validation_failed"
    assert isinstance(error.details, dict)
    return error.details


REJECTIONS: list[tuple[str, Any, str, str]] = [
    ("not-an-object", ["doc"], "notes", "TipTap document"),
    ("null", None, "notes", "TipTap document"),
    ("wrong-doc-type", {"type": "document", "content": []}, "notes.type", '"doc"'),
    ("missing-content", {"type": "doc"}, "notes.content", "array"),
    ("content-not-array", {"type": "doc", "content": {}}, "notes.content", "array"),
    ("doc-unknown-key", {"type": "doc", "content": [], "attrs": {}}, "notes.attrs", "unknown key"),
    ("unknown-node", doc({"type": "table", "content": []}), "notes.content[0].type", "unknown node type 'table'"),
    ("image-node", doc({"type": "image", "attrs": {"src": "https://x.io/a.png"}}), "notes.content[0].type", "unknown node type 'image'"),
    ("nested-doc", doc(doc()), "notes.content[0].type", "unknown node type 'doc'"),
    ("node-not-object", doc("hello"), "notes.content[0]", "object"),
    ("node-without-type", doc({"content": []}), "notes.content[0].type", "required"),
    ("heading-level-4", doc({"type": "heading", "attrs": {"level": 4}}), "notes.content[0].attrs.level", "1, 2 or 3"),
    ("heading-level-0", doc({"type": "heading", "attrs": {"level": 0}}), "notes.content[0].attrs.level", "1, 2 or 3"),
    ("heading-level-text", doc({"type": "heading", "attrs": {"level": "1"}}), "notes.content[0].attrs.level", "1, 2 or 3"),
    ("heading-level-bool", doc({"type": "heading", "attrs": {"level": True}}), "notes.content[0].attrs.level", "1, 2 or 3"),
    ("heading-without-level", doc({"type": "heading", "content": [text("x")]}), "notes.content[0].attrs.level", "requires"),
    ("heading-unknown-attr", doc({"type": "heading", "attrs": {"level": 1, "id": "x"}}), "notes.content[0].attrs.id", "unknown attribute 'id'"),
    ("paragraph-align", doc({"type": "paragraph", "attrs": {"textAlign": "left"}}), "notes.content[0].attrs.textAlign", "unknown attribute"),
    ("attrs-not-object", doc({"type": "paragraph", "attrs": []}), "notes.content[0].attrs", "object"),
    ("ordered-start-negative", doc({"type": "orderedList", "attrs": {"start": -1}, "content": [item(para())]}), "notes.content[0].attrs.start", ">= 0"),
    ("ordered-start-text", doc({"type": "orderedList", "attrs": {"start": "2"}, "content": [item(para())]}), "notes.content[0].attrs.start", "whole number"),
    ("code-language-number", doc({"type": "codeBlock", "attrs": {"language": 5}}), "notes.content[0].attrs.language", "string"),
    ("code-with-marks", doc({"type": "codeBlock", "content": [text("x", {"type": "bold"})]}), "notes.content[0].content[0].marks", "cannot have marks"),
    ("code-with-break", doc({"type": "codeBlock", "content": [{"type": "hardBreak"}]}), "notes.content[0].content[0].type", "hardBreak"),
    ("code-with-paragraph", doc({"type": "codeBlock", "content": [para()]}), "notes.content[0].content[0].type", "not allowed inside codeBlock"),
    ("rule-with-content", doc({"type": "horizontalRule", "content": [text("x")]}), "notes.content[0].content", "cannot have content"),
    ("list-item-at-top", doc(item(para())), "notes.content[0].type", "only allowed inside bulletList or orderedList"),
    ("list-item-in-paragraph", doc(para(item(para()))), "notes.content[0].content[0].type", "only allowed inside"),
    ("paragraph-in-list", doc({"type": "bulletList", "content": [para()]}), "notes.content[0].content[0].type", "not allowed inside bulletList"),
    ("empty-bullet-list", doc({"type": "bulletList", "content": []}), "notes.content[0].content", "at least one listItem"),
    ("ordered-list-no-content", doc({"type": "orderedList"}), "notes.content[0].content", "at least one listItem"),
    ("empty-list-item", doc({"type": "bulletList", "content": [item()]}), "notes.content[0].content[0].content", "at least one block"),
    ("text-at-top", doc(text("loose")), "notes.content[0].type", "wrap it in a paragraph"),
    ("text-in-blockquote", doc({"type": "blockquote", "content": [text("x")]}), "notes.content[0].content[0].type", "not allowed directly inside blockquote"),
    ("heading-in-heading", doc({"type": "heading", "attrs": {"level": 1}, "content": [{"type": "heading", "attrs": {"level": 2}}]}), "notes.content[0].content[0].type", "not allowed inside heading"),
    ("break-at-top", doc({"type": "hardBreak"}), "notes.content[0].type", "hardBreak"),
    ("empty-text", doc(para(text(""))), "notes.content[0].content[0].text", "non-empty"),
    ("text-not-string", doc(para({"type": "text", "text": 5})), "notes.content[0].content[0].text", "non-empty string"),
    ("text-missing", doc(para({"type": "text"})), "notes.content[0].content[0].text", "non-empty string"),
    ("text-unknown-key", doc(para({"type": "text", "text": "x", "style": "red"})), "notes.content[0].content[0].style", "unknown key"),
    ("text-with-content", doc(para({"type": "text", "text": "x", "content": []})), "notes.content[0].content[0].content", "unknown key"),
    ("node-unknown-key", doc({"type": "paragraph", "text": "x"}), "notes.content[0].text", "unknown key"),
    ("content-not-array", doc({"type": "paragraph", "content": "x"}), "notes.content[0].content", "array"),
    ("marks-not-array", doc(para({"type": "text", "text": "x", "marks": {"type": "bold"}})), "notes.content[0].content[0].marks", "array"),
    ("mark-not-object", doc(para(text("x", "bold"))), "notes.content[0].content[0].marks[0]", "object"),  # type: ignore[arg-type]
    ("mark-without-type", doc(para(text("x", {"attrs": {}}))), "notes.content[0].content[0].marks[0].type", "required"),
    ("mark-underline", doc(para(text("a")), para(text("b")), para(text("x", {"type": "bold"}), text("y", {"type": "bold"}, {"type": "underline"}))), "notes.content[2].content[1].marks[1].type", "unknown mark 'underline'"),
    ("mark-type-not-text", doc(para(text("x", {"type": ["bold"]}))), "notes.content[0].content[0].marks[0].type", "unknown mark"),
    ("node-type-not-text", doc({"type": {"name": "paragraph"}}), "notes.content[0].type", "required"),
    ("mark-highlight", doc(para(text("x", {"type": "highlight"}))), "notes.content[0].content[0].marks[0].type", "unknown mark 'highlight'"),
    ("mark-unknown-key", doc(para(text("x", {"type": "bold", "color": "red"}))), "notes.content[0].content[0].marks[0].color", "unknown key"),
    ("bold-with-attrs", doc(para(text("x", {"type": "bold", "attrs": {"weight": 700}}))), "notes.content[0].content[0].marks[0].attrs.weight", "unknown attribute"),
    ("link-without-href", doc(para(text("x", {"type": "link"}))), "notes.content[0].content[0].marks[0].attrs.href", "requires attrs.href"),
    ("link-javascript", doc(para(text("x", link("javascript:alert(1)")))), "notes.content[0].content[0].marks[0].attrs.href", "http(s) or mailto"),
    ("link-ftp", doc(para(text("x", link("ftp://example.com/file")))), "notes.content[0].content[0].marks[0].attrs.href", "http(s) or mailto"),
    ("link-relative", doc(para(text("x", link("/path")))), "notes.content[0].content[0].marks[0].attrs.href", "http(s) or mailto"),
    ("link-no-host", doc(para(text("x", link("https://")))), "notes.content[0].content[0].marks[0].attrs.href", "http(s) or mailto"),
    ("link-empty-mailto", doc(para(text("x", link("mailto:")))), "notes.content[0].content[0].marks[0].attrs.href", "http(s) or mailto"),
    ("link-with-space", doc(para(text("x", link("https://exa mple.com")))), "notes.content[0].content[0].marks[0].attrs.href", "spaces"),
    ("link-href-number", doc(para(text("x", link(5)))), "notes.content[0].content[0].marks[0].attrs.href", "string"),  # type: ignore[arg-type]
    ("link-bad-ipv6", doc(para(text("x", link("http://[::1")))), "notes.content[0].content[0].marks[0].attrs.href", "valid URL"),
    ("link-unknown-attr", doc(para(text("x", link("https://a.io", onclick="x")))), "notes.content[0].content[0].marks[0].attrs.onclick", "unknown attribute"),
    ("link-target-number", doc(para(text("x", link("https://a.io", target=1)))), "notes.content[0].content[0].marks[0].attrs.target", "string"),
]


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
def test_rejections_point_at_the_offending_path(document: Any, path: str, message: str) -> None:
    details = _problems(document)
    assert path in details, details
    assert any(message in problem for problem in details[path]), details[path]


def test_brief_example_path_for_unknown_mark() -> None:
    document = doc(
        para(text("a")),
        para(text("b")),
        para(text("x", {"type": "bold"}, {"type": "underline"})),
    )
    assert _problems(document) == {"notes.content[2].content[0].marks[1].type": ["unknown mark 'underline'"]}


def test_every_problem_is_reported_at_once() -> None:
    document = doc(
        {"type": "table"},
        para(text("")),
        {"type": "heading", "attrs": {"level": 9}},
        para(text("x", link("javascript:void(0)"))),
    )
    assert set(_problems(document)) == {
        "notes.content[0].type",
        "notes.content[1].content[0].text",
        "notes.content[2].attrs.level",
        "notes.content[3].content[0].marks[0].attrs.href",
    }


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    node: dict[str, Any] = para(text("deep"))
    for _ in range(200):
        node = {"type": "blockquote", "content": [node]}
    details = _problems(doc(node))
    assert any("nested more than" in problem for problems in details.values() for problem in problems)


def test_custom_field_prefix() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_document(doc({"type": "table"}), field="body")
    assert caught.value.details == {"body.content[0].type": ["unknown node type 'table'"]}


# ------------------------------------------------------------------ validate_nodes


@pytest.mark.parametrize(
    ("nodes", "path", "message"),
    [
        ([], "content", "non-empty array"),
        (None, "content", "non-empty array"),
        ({"type": "paragraph"}, "content", "non-empty array"),
        ([item(para())], "content[0].type", "only allowed inside bulletList"),
        ([text("x")], "content[0].type", "wrap it in a paragraph"),
        ([para(), {"type": "video"}], "content[1].type", "unknown node type 'video'"),
        ([para(text("x", {"type": "underline"}))], "content[0].content[0].marks[0].type", "unknown mark"),
    ],
    ids=["empty", "null", "object", "list-item", "bare-text", "unknown-node", "unknown-mark"],
)
def test_validate_nodes_rejections(nodes: Any, path: str, message: str) -> None:
    details = _problems(nodes, nodes=True)
    assert path in details and any(message in problem for problem in details[path]), details


def test_validate_nodes_custom_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_nodes([{"type": "video"}], field="nodes")
    assert list(caught.value.details) == ["nodes[0].type"]


# ------------------------------------------------------------------ character count and limits


def test_character_count_counts_text_and_link_hrefs() -> None:
    assert character_count(SEED_GET_NOTES) == len("Meeting Notes") + len("Discussed the ") + len(
        "Q1 roadmap"
    ) + len(" with the team.")
    linked = doc(para(text("docs", link("https://a.io")), text("é😀")))
    assert character_count(linked) == 4 + len("https://a.io") + 2
    assert character_count(None) == 0
    assert character_count({"type": "doc", "content": ["junk", {"type": "text"}, {"type": "text", "text": "ab", "marks": ["x"]}]}) == 2


def _doc_with_characters(count: int) -> dict[str, Any]:
    return doc(para(text("a" * count)))


def test_exactly_the_character_limit_is_accepted() -> None:
    validate_document(_doc_with_characters(MAX_CHARACTERS))
    validate_document(doc(para(text("é" * MAX_CHARACTERS))))  # characters, not bytes


def test_one_character_over_the_limit_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_document(_doc_with_characters(MAX_CHARACTERS + 1))
    assert caught.value.status == 422
    assert "50,000 characters" in caught.value.message and "50,001" in caught.value.message
    assert list(caught.value.details) == ["notes"]


def test_link_hrefs_count_toward_the_character_limit() -> None:
    href = "https://a.io/" + "p" * 87  # 100 characters
    assert len(href) == 100
    at_limit = doc(para(text("a" * (MAX_CHARACTERS - 100), link(href))))
    validate_document(at_limit)
    over = doc(para(text("a" * (MAX_CHARACTERS - 99), link(href))))
    with pytest.raises(ValidationFailed, match="50,001 characters"):
        validate_document(over)


def _sized_doc(size: int) -> dict[str, Any]:
    """A document of exactly ``size`` bytes of compact JSON, well under the character limit."""
    marks = [{"type": "bold"}, {"type": "italic"}, {"type": "strike"}, {"type": "code"}]
    nodes = [text("a", *marks) for _ in range(9_000)]
    document = doc(para(*nodes), {"type": "codeBlock", "attrs": {"language": ""}})
    base = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    assert base < size
    document["content"][1]["attrs"]["language"] = "x" * (size - base)
    return document


def test_exactly_one_megabyte_of_json_is_accepted() -> None:
    document = _sized_doc(MAX_JSON_BYTES)
    assert character_count(document) < MAX_CHARACTERS
    validate_document(document)


def test_one_byte_over_one_megabyte_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_document(_sized_doc(MAX_JSON_BYTES + 1))
    assert "1,000,000" in caught.value.message and "1,000,001 bytes" in caught.value.message


# ------------------------------------------------------------------ append_nodes


def test_append_to_nothing_creates_a_document() -> None:
    result = append_nodes(None, SEED_APPEND_PARAGRAPH)
    assert result == {"type": "doc", "content": SEED_APPEND_PARAGRAPH}
    validate_document(result)


def test_append_keeps_existing_content_and_does_not_mutate() -> None:
    existing = copy.deepcopy(SEED_GET_NOTES)
    result = append_nodes(existing, SEED_APPEND_LOG)
    assert existing == SEED_GET_NOTES
    assert result["content"] == SEED_GET_NOTES["content"] + SEED_APPEND_LOG
    assert result["type"] == "doc"
    validate_document(result)


def test_append_rejects_invalid_nodes_with_content_paths() -> None:
    with pytest.raises(ValidationFailed) as caught:
        append_nodes(SEED_PATCH_NOTES, [para(text("x", {"type": "underline"}))])
    assert list(caught.value.details) == ["content[0].content[0].marks[0].type"]
    with pytest.raises(ValidationFailed):
        append_nodes(None, [])


def test_append_refuses_to_cross_the_character_limit() -> None:
    existing = _doc_with_characters(MAX_CHARACTERS - 1)
    assert character_count(append_nodes(existing, [para(text("b"))])) == MAX_CHARACTERS
    with pytest.raises(ValidationFailed) as caught:
        append_nodes(existing, [para(text("bc"))])
    assert "50,001" in caught.value.message
    assert list(caught.value.details) == ["content"]


def test_append_to_a_corrupt_document_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        append_nodes({"type": "doc", "content": "oops"}, SEED_APPEND_PARAGRAPH)  # type: ignore[arg-type]
