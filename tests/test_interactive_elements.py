"""Interactive messages: the elements an agent sends and the answer a person gives (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from app.kernel.errors import ValidationFailed
from app.services.interactive_elements import check_answer, check_elements

ACTIONS_PROBLEM = "must contain exactly one action element (boolean, buttons or fields)"
BOOLEAN: dict[str, Any] = {"type": "boolean"}


def element_problems(elements: object) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as info:
        check_elements(elements)
    details: dict[str, list[str]] = info.value.details
    return details


def answer_problems(elements: list[dict[str, Any]], answer: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as info:
        check_answer(elements, answer)
    details: dict[str, list[str]] = info.value.details
    return details


def one_input(**spec: Any) -> list[dict[str, Any]]:
    """Elements with one fields action holding one input (name "x", label "X" unless given)."""
    return [{"type": "fields", "inputs": [{"name": "x", "label": "X", **spec}]}]


def normalized_input(**spec: Any) -> dict[str, Any]:
    elements, _ = check_elements(one_input(**spec))
    result: dict[str, Any] = elements[0]["inputs"][0]
    return result


def input_problems(**spec: Any) -> dict[str, list[str]]:
    return element_problems(one_input(**spec))


# ---------------------------------------------------------------- the seed's examples


def test_seed_invoice_example() -> None:
    elements = [
        {"type": "header", "text": "Invoice Approval"},
        {"type": "text", "text": "Invoice #1234 for $5,000"},
        {"type": "boolean"},
    ]
    assert check_elements(elements) == (
        [
            {"type": "header", "text": "Invoice Approval"},
            {"type": "text", "text": "Invoice #1234 for $5,000"},
            {"type": "boolean", "require_comment_on_reject": False},
        ],
        "boolean",
    )


def test_seed_expense_example() -> None:
    elements = [
        {"type": "header", "text": "Submit Expense"},
        {
            "type": "fields",
            "submit_label": "Submit",
            "inputs": [{"name": "amount", "label": "Amount ($)", "input_type": "number", "required": True}],
        },
    ]
    normalized, action = check_elements(elements)
    assert action == "fields"
    assert normalized == [
        {"type": "header", "text": "Submit Expense"},
        {
            "type": "fields",
            "inputs": [{"name": "amount", "label": "Amount ($)", "input_type": "number", "required": True}],
            "submit_label": "Submit",
        },
    ]
    assert check_answer(normalized, {"data": {"amount": "5000"}}) == {"data": {"amount": 5000}}
    assert answer_problems(normalized, {"data": {}}) == {"data.amount": ["is required"]}


# ---------------------------------------------------------------- the list of elements


@pytest.mark.parametrize("elements", [None, {}, "header", 3, {"type": "boolean"}])
def test_elements_must_be_a_list(elements: object) -> None:
    assert element_problems(elements) == {"elements": ["must be a list"]}


def test_elements_must_not_be_empty() -> None:
    assert element_problems([]) == {"elements": ["must not be empty"]}


def test_at_most_50_elements() -> None:
    fifty = [{"type": "divider"}] * 49 + [BOOLEAN]
    assert len(check_elements(fifty)[0]) == 50
    assert element_problems([{"type": "divider"}, *fifty]) == {"elements": ["must have at most 50 elements"]}


@pytest.mark.parametrize("element", ["header", None, 1, ["type", "text"]])
def test_element_must_be_an_object(element: object) -> None:
    assert element_problems([BOOLEAN, element]) == {"elements[1]": ["must be an object"]}


def test_element_type_is_required() -> None:
    assert element_problems([BOOLEAN, {"text": "hi"}]) == {"elements[1].type": ["is required"]}


@pytest.mark.parametrize("kind", ["image", "Header", "", None, 1])
def test_element_type_must_be_known(kind: object) -> None:
    assert element_problems([{"type": kind}, BOOLEAN]) == {
        "elements[0].type": ["must be one of: header, text, divider, boolean, buttons, fields"]
    }


@pytest.mark.parametrize(
    ("element", "key"),
    [
        ({"type": "header", "text": "Hi", "colour": "red"}, "colour"),
        ({"type": "text", "text": "Hi", "style": "primary"}, "style"),
        ({"type": "divider", "text": "---"}, "text"),
        ({"type": "boolean", "options": []}, "options"),
        ({"type": "buttons", "options": [{"label": "A", "value": "a"}], "inputs": []}, "inputs"),
        ({"type": "fields", "inputs": [{"name": "a", "label": "A", "input_type": "text"}], "text": "x"}, "text"),
    ],
)
def test_unknown_element_keys(element: dict[str, Any], key: str) -> None:
    others = [{"type": "divider"}] if element["type"] in ("boolean", "buttons", "fields") else [BOOLEAN]
    assert element_problems([*others, element]) == {f"elements[1].{key}": ["is not a known key"]}


@pytest.mark.parametrize(
    "elements",
    [
        [{"type": "header", "text": "Hi"}],
        [{"type": "divider"}, {"type": "text", "text": "nothing to do"}],
    ],
)
def test_no_action_element(elements: list[dict[str, Any]]) -> None:
    assert element_problems(elements) == {"elements": [ACTIONS_PROBLEM]}


@pytest.mark.parametrize(
    "actions",
    [
        [BOOLEAN, BOOLEAN],
        [BOOLEAN, {"type": "buttons", "options": [{"label": "A", "value": "a"}]}],
        [
            {"type": "fields", "inputs": [{"name": "a", "label": "A", "input_type": "text"}]},
            {"type": "buttons", "options": [{"label": "A", "value": "a"}]},
        ],
    ],
)
def test_two_action_elements(actions: list[dict[str, Any]]) -> None:
    assert element_problems([{"type": "header", "text": "Hi"}, *actions]) == {"elements": [ACTIONS_PROBLEM]}


def test_all_problems_are_collected() -> None:
    elements = [
        {"type": "header"},
        {"type": "text", "text": 5},
        {"type": "divider", "colour": "red"},
        {
            "type": "fields",
            "inputs": [
                {"name": "a", "label": "A", "input_type": "text"},
                {"name": "b", "label": "B", "input_type": "color"},
            ],
        },
        {"type": "boolean", "require_comment_on_reject": "yes"},
    ]
    assert element_problems(elements) == {
        "elements[0].text": ["is required"],
        "elements[1].text": ["must be a string"],
        "elements[2].colour": ["is not a known key"],
        "elements[3].inputs[1].input_type": [
            "must be one of: text, textarea, number, email, date, datetime, select, checkbox, url"
        ],
        "elements[4].require_comment_on_reject": ["must be true or false"],
        "elements": [ACTIONS_PROBLEM],
    }


def test_order_is_kept() -> None:
    elements = [
        BOOLEAN,
        {"type": "text", "text": "b"},
        {"type": "divider"},
        {"type": "header", "text": "a"},
    ]
    assert [e["type"] for e in check_elements(elements)[0]] == ["boolean", "text", "divider", "header"]


# ---------------------------------------------------------------- header, text, divider


@pytest.mark.parametrize("kind", ["header", "text"])
@pytest.mark.parametrize("text", ["x", "Invoice #1234", "a" * 3000, "  padded  "])
def test_prose_good(kind: str, text: str) -> None:
    assert check_elements([{"type": kind, "text": text}, BOOLEAN])[0][0] == {"type": kind, "text": text}


@pytest.mark.parametrize("kind", ["header", "text"])
@pytest.mark.parametrize(
    ("element", "problem"),
    [
        ({}, "is required"),
        ({"text": None}, "must be a string"),
        ({"text": 5}, "must be a string"),
        ({"text": ["a"]}, "must be a string"),
        ({"text": ""}, "must not be empty"),
        ({"text": "   "}, "must not be empty"),
        ({"text": "a" * 3001}, "must be at most 3000 characters"),
    ],
)
def test_prose_bad(kind: str, element: dict[str, Any], problem: str) -> None:
    assert element_problems([BOOLEAN, {"type": kind, **element}]) == {"elements[1].text": [problem]}


def test_divider() -> None:
    assert check_elements([{"type": "divider"}, BOOLEAN])[0][0] == {"type": "divider"}
    assert element_problems([{"type": "divider", "label": "x"}, BOOLEAN]) == {
        "elements[0].label": ["is not a known key"]
    }


# ---------------------------------------------------------------- boolean


def test_boolean_good() -> None:
    element = {
        "type": "boolean",
        "text": "Pay it?",
        "approve_label": "Pay",
        "reject_label": "Hold",
        "require_comment_on_reject": True,
    }
    assert check_elements([element]) == ([element], "boolean")


def test_boolean_empty_prompt_is_allowed() -> None:
    assert check_elements([{"type": "boolean", "text": ""}])[0][0]["text"] == ""


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("text", 1, "must be a string"),
        ("text", "a" * 3001, "must be at most 3000 characters"),
        ("approve_label", "", "must not be empty"),
        ("approve_label", "a" * 51, "must be at most 50 characters"),
        ("approve_label", True, "must be a string"),
        ("reject_label", " ", "must not be empty"),
        ("reject_label", "a" * 51, "must be at most 50 characters"),
        ("require_comment_on_reject", "true", "must be true or false"),
        ("require_comment_on_reject", 1, "must be true or false"),
        ("require_comment_on_reject", None, "must be true or false"),
    ],
)
def test_boolean_bad(key: str, value: object, problem: str) -> None:
    assert element_problems([{"type": "boolean", key: value}]) == {f"elements[0].{key}": [problem]}


def test_boolean_labels_at_limit() -> None:
    element = {"type": "boolean", "approve_label": "a" * 50, "reject_label": "r" * 50}
    assert check_elements([element])[0][0]["approve_label"] == "a" * 50


# ---------------------------------------------------------------- buttons


def test_buttons_good_and_style_default() -> None:
    element = {
        "type": "buttons",
        "text": "Priority?",
        "options": [
            {"label": "Low", "value": "low"},
            {"label": "High", "value": "high", "style": "primary"},
            {"label": "Drop", "value": "drop", "style": "danger"},
            {"label": "Later", "value": "later", "style": "default"},
        ],
    }
    assert check_elements([element]) == (
        [
            {
                "type": "buttons",
                "text": "Priority?",
                "options": [
                    {"label": "Low", "value": "low", "style": "default"},
                    {"label": "High", "value": "high", "style": "primary"},
                    {"label": "Drop", "value": "drop", "style": "danger"},
                    {"label": "Later", "value": "later", "style": "default"},
                ],
            }
        ],
        "buttons",
    )


def test_buttons_ten_options_allowed() -> None:
    options = [{"label": str(i), "value": str(i)} for i in range(10)]
    assert len(check_elements([{"type": "buttons", "options": options}])[0][0]["options"]) == 10


@pytest.mark.parametrize(
    ("element", "path", "problem"),
    [
        ({}, "options", "is required"),
        ({"options": {"label": "A", "value": "a"}}, "options", "must be a list"),
        ({"options": []}, "options", "must not be empty"),
        (
            {"options": [{"label": str(i), "value": str(i)} for i in range(11)]},
            "options",
            "must have at most 10 options",
        ),
        ({"options": ["a"]}, "options[0]", "must be an object"),
        ({"options": [{"value": "a"}]}, "options[0].label", "is required"),
        ({"options": [{"label": "A"}]}, "options[0].value", "is required"),
        ({"options": [{"label": "", "value": "a"}]}, "options[0].label", "must not be empty"),
        ({"options": [{"label": "A", "value": 1}]}, "options[0].value", "must be a string"),
        ({"options": [{"label": "a" * 201, "value": "a"}]}, "options[0].label", "must be at most 200 characters"),
        ({"options": [{"label": "A", "value": "a" * 201}]}, "options[0].value", "must be at most 200 characters"),
        (
            {"options": [{"label": "A", "value": "a", "style": "blue"}]},
            "options[0].style",
            "must be one of: primary, danger, default",
        ),
        (
            {"options": [{"label": "A", "value": "a", "style": None}]},
            "options[0].style",
            "must be one of: primary, danger, default",
        ),
        ({"options": [{"label": "A", "value": "a", "icon": "x"}]}, "options[0].icon", "is not a known key"),
        ({"options": [{"label": "A", "value": "a"}], "text": 3}, "text", "must be a string"),
        ({"options": [{"label": "A", "value": "a"}], "text": "a" * 3001}, "text", "must be at most 3000 characters"),
    ],
)
def test_buttons_bad(element: dict[str, Any], path: str, problem: str) -> None:
    assert element_problems([{"type": "header", "text": "Hi"}, {"type": "buttons", **element}]) == {
        f"elements[1].{path}": [problem]
    }


def test_buttons_duplicate_value_is_reported_on_the_duplicate() -> None:
    options = [
        {"label": "A", "value": "a"},
        {"label": "B", "value": "b"},
        {"label": "A again", "value": "a"},
    ]
    assert element_problems([{"type": "buttons", "options": options}]) == {
        "elements[0].options[2].value": ["must be unique"]
    }


def test_buttons_values_label_may_repeat() -> None:
    options = [{"label": "Same", "value": "a"}, {"label": "Same", "value": "b"}]
    assert check_elements([{"type": "buttons", "options": options}])[1] == "buttons"


# ---------------------------------------------------------------- fields: the element


def test_fields_full_normalization() -> None:
    element = {
        "type": "fields",
        "submit_label": "Send",
        "inputs": [
            {"name": "title", "label": "Title", "input_type": "text", "placeholder": "Short title", "default": " Hi "},
            {"name": "notes", "label": "Notes", "input_type": "textarea"},
            {"name": "amount", "label": "Amount", "input_type": "number", "min": 0, "max": 10.5, "default": "2.50"},
            {"name": "email", "label": "Email", "input_type": "email", "required": False},
            {"name": "day", "label": "Day", "input_type": "date", "default": "2024-02-29"},
            {"name": "at", "label": "At", "input_type": "datetime", "default": "2024-01-15T12:30:00+02:00"},
            {
                "name": "priority",
                "label": "Priority",
                "input_type": "select",
                "required": True,
                "options": ["low", {"label": "High!", "value": "high"}],
                "default": "low",
            },
            {"name": "agree", "label": "Agree", "input_type": "checkbox", "default": True},
            {"name": "_link2", "label": "Link", "input_type": "url"},
        ],
    }
    normalized, action = check_elements([element])
    assert action == "fields"
    assert normalized == [
        {
            "type": "fields",
            "inputs": [
                {
                    "name": "title",
                    "label": "Title",
                    "input_type": "text",
                    "required": False,
                    "placeholder": "Short title",
                    "default": "Hi",
                },
                {"name": "notes", "label": "Notes", "input_type": "textarea", "required": False},
                {
                    "name": "amount",
                    "label": "Amount",
                    "input_type": "number",
                    "required": False,
                    "min": 0,
                    "max": 10.5,
                    "default": 2.5,
                },
                {"name": "email", "label": "Email", "input_type": "email", "required": False},
                {"name": "day", "label": "Day", "input_type": "date", "required": False, "default": "2024-02-29"},
                {
                    "name": "at",
                    "label": "At",
                    "input_type": "datetime",
                    "required": False,
                    "default": "2024-01-15T10:30:00Z",
                },
                {
                    "name": "priority",
                    "label": "Priority",
                    "input_type": "select",
                    "required": True,
                    "options": [{"label": "low", "value": "low"}, {"label": "High!", "value": "high"}],
                    "default": "low",
                },
                {"name": "agree", "label": "Agree", "input_type": "checkbox", "required": False, "default": True},
                {"name": "_link2", "label": "Link", "input_type": "url", "required": False},
            ],
            "submit_label": "Send",
        }
    ]


@pytest.mark.parametrize(
    ("element", "path", "problem"),
    [
        ({}, "inputs", "is required"),
        ({"inputs": {"name": "a"}}, "inputs", "must be a list"),
        ({"inputs": []}, "inputs", "must not be empty"),
        (
            {"inputs": [{"name": f"n{i}", "label": "L", "input_type": "text"} for i in range(21)]},
            "inputs",
            "must have at most 20 inputs",
        ),
        ({"inputs": ["amount"]}, "inputs[0]", "must be an object"),
        (
            {"inputs": [{"name": "a", "label": "A", "input_type": "text"}], "submit_label": ""},
            "submit_label",
            "must not be empty",
        ),
        (
            {"inputs": [{"name": "a", "label": "A", "input_type": "text"}], "submit_label": "a" * 51},
            "submit_label",
            "must be at most 50 characters",
        ),
        (
            {"inputs": [{"name": "a", "label": "A", "input_type": "text"}], "submit_label": False},
            "submit_label",
            "must be a string",
        ),
    ],
)
def test_fields_bad(element: dict[str, Any], path: str, problem: str) -> None:
    assert element_problems([{"type": "fields", **element}]) == {f"elements[0].{path}": [problem]}


def test_fields_twenty_inputs_allowed() -> None:
    inputs = [{"name": f"n{i}", "label": "L", "input_type": "text"} for i in range(20)]
    assert len(check_elements([{"type": "fields", "inputs": inputs}])[0][0]["inputs"]) == 20


def test_input_path_points_into_the_list() -> None:
    elements = [
        {"type": "header", "text": "Form"},
        {"type": "text", "text": "Fill it in"},
        {"type": "divider"},
        {
            "type": "fields",
            "inputs": [
                {"name": "a", "label": "A", "input_type": "text"},
                {"name": "b", "label": "B", "input_type": "colour"},
            ],
        },
    ]
    assert list(element_problems(elements)) == ["elements[3].inputs[1].input_type"]


@pytest.mark.parametrize("name", ["a", "_", "Amount_2", "_x9", "a" * 64])
def test_input_name_good(name: str) -> None:
    assert normalized_input(name=name, input_type="text")["name"] == name


NAME_PROBLEM = "must start with a letter or underscore and hold only letters, digits and underscores"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("1abc", NAME_PROBLEM),
        ("a-b", NAME_PROBLEM),
        ("a b", NAME_PROBLEM),
        ("a.b", NAME_PROBLEM),
        ("abc\n", NAME_PROBLEM),
        ("montant_€", NAME_PROBLEM),
        ("", "must not be empty"),
        ("a" * 65, "must be at most 64 characters"),
        (7, "must be a string"),
    ],
)
def test_input_name_bad(name: object, problem: str) -> None:
    assert input_problems(name=name, input_type="text") == {"elements[0].inputs[0].name": [problem]}


def test_input_name_required() -> None:
    elements = [{"type": "fields", "inputs": [{"label": "A", "input_type": "text"}]}]
    assert element_problems(elements) == {"elements[0].inputs[0].name": ["is required"]}


def test_input_names_unique() -> None:
    inputs = [
        {"name": "a", "label": "A", "input_type": "text"},
        {"name": "b", "label": "B", "input_type": "text"},
        {"name": "a", "label": "A2", "input_type": "number"},
    ]
    assert element_problems([{"type": "fields", "inputs": inputs}]) == {
        "elements[0].inputs[2].name": ["must be unique"]
    }


@pytest.mark.parametrize(
    ("spec", "path", "problem"),
    [
        ({"label": None}, "label", "must be a string"),
        ({"label": ""}, "label", "must not be empty"),
        ({"label": "a" * 201}, "label", "must be at most 200 characters"),
        ({"required": "true"}, "required", "must be true or false"),
        ({"required": 0}, "required", "must be true or false"),
        ({"placeholder": "a" * 201}, "placeholder", "must be at most 200 characters"),
        ({"placeholder": 1}, "placeholder", "must be a string"),
        ({"pattern": ".*"}, "pattern", "is not a known key"),
    ],
)
def test_input_keys_bad(spec: dict[str, Any], path: str, problem: str) -> None:
    assert input_problems(input_type="text", **spec) == {f"elements[0].inputs[0].{path}": [problem]}


def test_input_label_required() -> None:
    elements = [{"type": "fields", "inputs": [{"name": "a", "input_type": "text"}]}]
    assert element_problems(elements) == {"elements[0].inputs[0].label": ["is required"]}


def test_input_type_required() -> None:
    assert input_problems() == {"elements[0].inputs[0].input_type": ["is required"]}


@pytest.mark.parametrize("input_type", ["colour", "Text", "", None, 1])
def test_input_type_must_be_known(input_type: object) -> None:
    assert input_problems(input_type=input_type) == {
        "elements[0].inputs[0].input_type": [
            "must be one of: text, textarea, number, email, date, datetime, select, checkbox, url"
        ]
    }


@pytest.mark.parametrize(
    "input_type", ["text", "textarea", "number", "email", "date", "datetime", "select", "checkbox", "url"]
)
def test_every_input_type_is_accepted(input_type: str) -> None:
    extra: dict[str, Any] = {"options": ["a"]} if input_type == "select" else {}
    spec = normalized_input(input_type=input_type, **extra)
    assert spec["input_type"] == input_type and spec["required"] is False


def test_placeholder_may_be_empty() -> None:
    assert normalized_input(input_type="text", placeholder="")["placeholder"] == ""


# ---------------------------------------------------------------- fields: select options


def test_select_options_strings_and_objects() -> None:
    spec = normalized_input(input_type="select", options=["a", {"label": "Bee", "value": "b"}, "c"])
    assert spec["options"] == [
        {"label": "a", "value": "a"},
        {"label": "Bee", "value": "b"},
        {"label": "c", "value": "c"},
    ]


def test_select_hundred_options_allowed() -> None:
    assert len(normalized_input(input_type="select", options=[str(i) for i in range(100)])["options"]) == 100


@pytest.mark.parametrize(
    ("options", "path", "problem"),
    [
        ("a,b", "options", "must be a list"),
        ([], "options", "must not be empty"),
        ([str(i) for i in range(101)], "options", "must have at most 100 options"),
        (["a", "b", "a"], "options[2]", "must be unique"),
        (["a", {"label": "A", "value": "a"}], "options[1].value", "must be unique"),
        ([""], "options[0]", "must not be empty"),
        (["a" * 201], "options[0]", "must be at most 200 characters"),
        ([1], "options[0]", "must be a string or an object with label and value"),
        ([{"label": "A"}], "options[0].value", "is required"),
        ([{"value": "a"}], "options[0].label", "is required"),
        ([{"label": "A", "value": "a", "style": "primary"}], "options[0].style", "is not a known key"),
    ],
)
def test_select_options_bad(options: object, path: str, problem: str) -> None:
    assert input_problems(input_type="select", options=options) == {f"elements[0].inputs[0].{path}": [problem]}


def test_select_needs_options() -> None:
    assert input_problems(input_type="select") == {
        "elements[0].inputs[0].options": ["is required for select inputs"]
    }


@pytest.mark.parametrize("input_type", ["text", "textarea", "number", "checkbox", "url"])
def test_options_only_for_select(input_type: str) -> None:
    assert input_problems(input_type=input_type, options=["a"]) == {
        "elements[0].inputs[0].options": ["is only allowed for select inputs"]
    }


# ---------------------------------------------------------------- fields: min and max


def test_min_max_good() -> None:
    spec = normalized_input(input_type="number", min=-1.5, max=3)
    assert (spec["min"], spec["max"]) == (-1.5, 3)
    spec = normalized_input(input_type="number", min=2, max=2)
    assert (spec["min"], spec["max"]) == (2, 2)


@pytest.mark.parametrize("key", ["min", "max"])
@pytest.mark.parametrize("value", ["1", True, None, float("nan"), float("inf"), [1]])
def test_min_max_must_be_numbers(key: str, value: object) -> None:
    assert input_problems(input_type="number", **{key: value}) == {
        f"elements[0].inputs[0].{key}": ["must be a number"]
    }


@pytest.mark.parametrize("key", ["min", "max"])
@pytest.mark.parametrize("input_type", ["text", "date", "select"])
def test_min_max_only_for_number(key: str, input_type: str) -> None:
    extra: dict[str, Any] = {"options": ["a"]} if input_type == "select" else {}
    assert input_problems(input_type=input_type, **{key: 1}, **extra) == {
        f"elements[0].inputs[0].{key}": ["is only allowed for number inputs"]
    }


def test_min_above_max() -> None:
    assert input_problems(input_type="number", min=5, max=4.5) == {
        "elements[0].inputs[0].max": ["must not be less than min"]
    }


# ---------------------------------------------------------------- fields: defaults


@pytest.mark.parametrize(
    ("spec", "default", "expected"),
    [
        ({"input_type": "text"}, "  hello ", "hello"),
        ({"input_type": "textarea"}, " line\n", " line\n"),
        ({"input_type": "number"}, 3, 3),
        ({"input_type": "number"}, "4.0", 4),
        ({"input_type": "number", "min": 1, "max": 5}, 5, 5),
        ({"input_type": "email"}, "a@example.com", "a@example.com"),
        ({"input_type": "date"}, "2024-12-31", "2024-12-31"),
        ({"input_type": "datetime"}, "2024-01-15T10:30:00.9Z", "2024-01-15T10:30:00Z"),
        ({"input_type": "select", "options": ["a", "b"]}, "b", "b"),
        ({"input_type": "checkbox"}, False, False),
        ({"input_type": "url"}, "https://example.com/x", "https://example.com/x"),
    ],
)
def test_default_good(spec: dict[str, Any], default: object, expected: object) -> None:
    value = normalized_input(default=default, **spec)["default"]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("spec", "default", "problem"),
    [
        ({"input_type": "text"}, 5, "must be a string"),
        ({"input_type": "text"}, "a" * 1001, "must be at most 1000 characters"),
        ({"input_type": "text"}, "", "must not be empty"),
        ({"input_type": "text"}, None, "must not be empty"),
        ({"input_type": "number"}, "five", "must be a number"),
        ({"input_type": "number", "max": 5}, 6, "must be at most 5"),
        ({"input_type": "number", "min": 1}, 0.5, "must be at least 1"),
        ({"input_type": "email"}, "nobody", "must be a valid email address"),
        ({"input_type": "date"}, "2023-02-29", "must be a date as YYYY-MM-DD"),
        (
            {"input_type": "datetime"},
            "2024-01-15T10:30:00",
            "must be an ISO 8601 date and time with a timezone, such as 2024-01-15T10:30:00Z",
        ),
        ({"input_type": "select", "options": ["a", "b"]}, "c", 'must be one of: "a", "b"'),
        ({"input_type": "checkbox"}, "true", "must be true or false"),
        ({"input_type": "url"}, "ftp://example.com", "must be an http or https URL with a host"),
    ],
)
def test_default_bad(spec: dict[str, Any], default: object, problem: str) -> None:
    assert input_problems(default=default, **spec) == {"elements[0].inputs[0].default": [problem]}


# ---------------------------------------------------------------- answers: shape


@pytest.mark.parametrize(
    ("elements", "key"),
    [
        ([BOOLEAN], "approved"),
        ([{"type": "buttons", "options": [{"label": "A", "value": "a"}]}], "selection"),
        (one_input(input_type="text"), "data"),
    ],
)
@pytest.mark.parametrize("answer", [None, [], "yes", True])
def test_answer_must_be_an_object(elements: list[dict[str, Any]], key: str, answer: object) -> None:
    normalized, _ = check_elements(elements)
    assert answer_problems(normalized, answer) == {"answer": [f'must be an object with the key "{key}"']}


def test_wrong_shape_names_the_expected_key() -> None:
    boolean, _ = check_elements([BOOLEAN])
    assert answer_problems(boolean, {"selection": "a"}) == {
        "selection": ["is not a known key"],
        "approved": ["is required"],
    }
    buttons, _ = check_elements([{"type": "buttons", "options": [{"label": "A", "value": "a"}]}])
    assert answer_problems(buttons, {"approved": True}) == {
        "approved": ["is not a known key"],
        "selection": ["is required"],
    }
    fields, _ = check_elements(one_input(input_type="text"))
    assert answer_problems(fields, {"x": "hi"}) == {"x": ["is not a known key"], "data": ["is required"]}


def test_answer_needs_normalized_elements_with_an_action() -> None:
    with pytest.raises(ValueError):
        check_answer([{"type": "header", "text": "Hi"}], {"approved": True})


# ---------------------------------------------------------------- answers: boolean


def boolean_elements(*, require_comment: bool = False) -> list[dict[str, Any]]:
    elements, _ = check_elements([{"type": "boolean", "require_comment_on_reject": require_comment}])
    return elements


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"approved": True}, {"approved": True, "message": None}),
        ({"approved": False}, {"approved": False, "message": None}),
        ({"approved": True, "message": "  Looks good \n"}, {"approved": True, "message": "Looks good"}),
        ({"approved": False, "message": "   "}, {"approved": False, "message": None}),
        ({"approved": False, "message": None}, {"approved": False, "message": None}),
        ({"approved": True, "message": " " + "m" * 2000 + " "}, {"approved": True, "message": "m" * 2000}),
    ],
)
def test_boolean_answer_good(answer: dict[str, Any], expected: dict[str, Any]) -> None:
    assert check_answer(boolean_elements(), answer) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"approved": "true"}, {"approved": ["must be true or false"]}),
        ({"approved": 1}, {"approved": ["must be true or false"]}),
        ({"approved": None}, {"approved": ["must be true or false"]}),
        ({}, {"approved": ["is required"]}),
        ({"approved": True, "message": 5}, {"message": ["must be a string"]}),
        ({"approved": True, "message": "m" * 2001}, {"message": ["must be at most 2000 characters"]}),
        ({"approved": True, "comment": "x"}, {"comment": ["is not a known key"]}),
    ],
)
def test_boolean_answer_bad(answer: dict[str, Any], expected: dict[str, list[str]]) -> None:
    assert answer_problems(boolean_elements(), answer) == expected


@pytest.mark.parametrize("message", [None, "", "   "])
def test_reject_without_comment(message: str | None) -> None:
    answer = {"approved": False} if message is None else {"approved": False, "message": message}
    assert answer_problems(boolean_elements(require_comment=True), answer) == {
        "message": ["is required when rejecting"]
    }
    assert check_answer(boolean_elements(require_comment=False), answer) == {"approved": False, "message": None}


def test_reject_with_comment_and_approve_without() -> None:
    elements = boolean_elements(require_comment=True)
    assert check_answer(elements, {"approved": False, "message": "Too high"}) == {
        "approved": False,
        "message": "Too high",
    }
    assert check_answer(elements, {"approved": True}) == {"approved": True, "message": None}


# ---------------------------------------------------------------- answers: buttons


def buttons_elements() -> list[dict[str, Any]]:
    options = [{"label": "Low", "value": "low"}, {"label": "High", "value": "high"}]
    elements, _ = check_elements([{"type": "buttons", "options": options}])
    return elements


def test_buttons_answer_good() -> None:
    assert check_answer(buttons_elements(), {"selection": "high"}) == {"selection": "high"}


@pytest.mark.parametrize("selection", ["medium", "High", "", None, 1, ["low"]])
def test_buttons_answer_not_an_option(selection: object) -> None:
    assert answer_problems(buttons_elements(), {"selection": selection}) == {
        "selection": ['must be one of: "low", "high"']
    }


def test_buttons_answer_missing_selection() -> None:
    assert answer_problems(buttons_elements(), {}) == {"selection": ["is required"]}


# ---------------------------------------------------------------- answers: fields


def fields_answer(value: object, **spec: Any) -> dict[str, Any]:
    elements, _ = check_elements(one_input(**spec))
    return check_answer(elements, {"data": {"x": value}})


def fields_answer_problems(value: object, **spec: Any) -> dict[str, list[str]]:
    elements, _ = check_elements(one_input(**spec))
    return answer_problems(elements, {"data": {"x": value}})


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ({"input_type": "text"}, "  hello  ", "hello"),
        ({"input_type": "text"}, "a" * 1000, "a" * 1000),
        ({"input_type": "textarea"}, "  two\nlines ", "  two\nlines "),
        ({"input_type": "textarea"}, "a" * 10000, "a" * 10000),
        ({"input_type": "number"}, 42, 42),
        ({"input_type": "number"}, -3.25, -3.25),
        ({"input_type": "number"}, 7.0, 7),
        ({"input_type": "number"}, "5000", 5000),
        ({"input_type": "number"}, " -12 ", -12),
        ({"input_type": "number"}, "2.50", 2.5),
        ({"input_type": "number"}, "1e3", 1000),
        ({"input_type": "number"}, ".5", 0.5),
        ({"input_type": "email"}, " ann@example.com ", "ann@example.com"),
        ({"input_type": "date"}, "2024-02-29", "2024-02-29"),
        ({"input_type": "datetime"}, "2024-01-15T10:30:00Z", "2024-01-15T10:30:00Z"),
        ({"input_type": "datetime"}, "2024-01-15T12:30:00+02:00", "2024-01-15T10:30:00Z"),
        ({"input_type": "datetime"}, "2024-01-15T05:00-0530", "2024-01-15T10:30:00Z"),
        ({"input_type": "datetime"}, "2024-01-15T10:30:00.123456Z", "2024-01-15T10:30:00Z"),
        ({"input_type": "datetime"}, "2024-01-15T10:30Z", "2024-01-15T10:30:00Z"),
        ({"input_type": "select", "options": ["low", {"label": "High", "value": "high"}]}, "high", "high"),
        ({"input_type": "checkbox"}, True, True),
        ({"input_type": "checkbox"}, False, False),
        ({"input_type": "url"}, "https://example.com/a?b=c", "https://example.com/a?b=c"),
        ({"input_type": "url"}, "http://localhost:8080", "http://localhost:8080"),
    ],
)
def test_field_value_good(spec: dict[str, Any], value: object, expected: object) -> None:
    result = fields_answer(value, **spec)["data"]["x"]
    assert result == expected and type(result) is type(expected)


DATETIME_PROBLEM = "must be an ISO 8601 date and time with a timezone, such as 2024-01-15T10:30:00Z"
URL_PROBLEM = "must be an http or https URL with a host"


@pytest.mark.parametrize(
    ("spec", "value", "problem"),
    [
        ({"input_type": "text"}, 5, "must be a string"),
        ({"input_type": "text"}, "a" * 1001, "must be at most 1000 characters"),
        ({"input_type": "textarea"}, ["a"], "must be a string"),
        ({"input_type": "textarea"}, "a" * 10001, "must be at most 10000 characters"),
        ({"input_type": "number"}, True, "must be a number"),
        ({"input_type": "number"}, "five", "must be a number"),
        ({"input_type": "number"}, "1,000", "must be a number"),
        ({"input_type": "number"}, "1_000", "must be a number"),
        ({"input_type": "number"}, "NaN", "must be a number"),
        ({"input_type": "number"}, "inf", "must be a number"),
        ({"input_type": "number"}, "1e999", "must be a number"),
        ({"input_type": "number"}, "9" * 5000, "must be a number"),
        ({"input_type": "number"}, float("nan"), "must be a number"),
        ({"input_type": "number"}, [1], "must be a number"),
        ({"input_type": "email"}, "ann", "must be a valid email address"),
        ({"input_type": "email"}, "ann@example", "must be a valid email address"),
        ({"input_type": "email"}, "a n@example.com", "must be a valid email address"),
        ({"input_type": "email"}, "a" * 310 + "@example.com", "must be a valid email address"),
        ({"input_type": "email"}, 1, "must be a string"),
        ({"input_type": "date"}, "2023-02-29", "must be a date as YYYY-MM-DD"),
        ({"input_type": "date"}, "2024-13-01", "must be a date as YYYY-MM-DD"),
        ({"input_type": "date"}, "15/01/2024", "must be a date as YYYY-MM-DD"),
        ({"input_type": "date"}, "20240115", "must be a date as YYYY-MM-DD"),
        ({"input_type": "date"}, "2024-01-15T10:30:00Z", "must be a date as YYYY-MM-DD"),
        ({"input_type": "date"}, 20240115, "must be a string"),
        ({"input_type": "datetime"}, "2024-01-15T10:30:00", DATETIME_PROBLEM),
        ({"input_type": "datetime"}, "2024-01-15", DATETIME_PROBLEM),
        ({"input_type": "datetime"}, "2024-01-15 10:30:00Z", DATETIME_PROBLEM),
        ({"input_type": "datetime"}, "2024-02-30T10:30:00Z", DATETIME_PROBLEM),
        ({"input_type": "datetime"}, "2024-01-15T25:30:00Z", DATETIME_PROBLEM),
        ({"input_type": "datetime"}, "yesterday", DATETIME_PROBLEM),
        ({"input_type": "select", "options": ["low", "high"]}, "medium", 'must be one of: "low", "high"'),
        ({"input_type": "select", "options": ["1", "2"]}, 1, 'must be one of: "1", "2"'),
        ({"input_type": "checkbox"}, "true", "must be true or false"),
        ({"input_type": "checkbox"}, 1, "must be true or false"),
        ({"input_type": "checkbox"}, "", "must be true or false"),
        ({"input_type": "url"}, "example.com", URL_PROBLEM),
        ({"input_type": "url"}, "ftp://example.com", URL_PROBLEM),
        ({"input_type": "url"}, "javascript:alert(1)", URL_PROBLEM),
        ({"input_type": "url"}, "https://", URL_PROBLEM),
        ({"input_type": "url"}, "https://exa mple.com", URL_PROBLEM),
        ({"input_type": "url"}, "http://example.com:99999", URL_PROBLEM),
        ({"input_type": "url"}, "http://[::1", URL_PROBLEM),
        ({"input_type": "url"}, "https://example.com/" + "a" * 2048, URL_PROBLEM),
    ],
)
def test_field_value_bad(spec: dict[str, Any], value: object, problem: str) -> None:
    assert fields_answer_problems(value, **spec) == {"data.x": [problem]}


@pytest.mark.parametrize(("value", "ok"), [(0, True), (10, True), (-0.01, False), (10.5, False), ("3", True)])
def test_number_range(value: object, ok: bool) -> None:
    spec = {"input_type": "number", "min": 0, "max": 10}
    if ok:
        assert fields_answer(value, **spec) == {"data": {"x": int(str(value))}}
    elif value == -0.01:
        assert fields_answer_problems(value, **spec) == {"data.x": ["must be at least 0"]}
    else:
        assert fields_answer_problems(value, **spec) == {"data.x": ["must be at most 10"]}


def test_number_range_applies_to_strings_and_fractional_bounds() -> None:
    spec = {"input_type": "number", "min": 0.5, "max": 1.5}
    assert fields_answer_problems("0.4", **spec) == {"data.x": ["must be at least 0.5"]}
    assert fields_answer_problems("2", **spec) == {"data.x": ["must be at most 1.5"]}
    assert fields_answer("1.5", **spec) == {"data": {"x": 1.5}}


@pytest.mark.parametrize(
    "input_type", ["text", "textarea", "number", "email", "date", "datetime", "select", "checkbox", "url"]
)
@pytest.mark.parametrize("value", [None, "", "  ", "absent"])
def test_required_missing(input_type: str, value: object) -> None:
    if input_type == "checkbox" and value in ("", "  "):
        return  # a string is not a missing checkbox (see test_field_value_bad)
    extra: dict[str, Any] = {"options": ["a"]} if input_type == "select" else {}
    elements, _ = check_elements(one_input(input_type=input_type, required=True, **extra))
    data = {} if value == "absent" else {"x": value}
    assert answer_problems(elements, {"data": data}) == {"data.x": ["is required"]}


@pytest.mark.parametrize(
    "input_type", ["text", "textarea", "number", "email", "date", "datetime", "select", "url"]
)
@pytest.mark.parametrize("value", [None, "", "absent"])
def test_optional_missing_is_left_out(input_type: str, value: object) -> None:
    extra: dict[str, Any] = {"options": ["a"]} if input_type == "select" else {}
    elements, _ = check_elements(one_input(input_type=input_type, **extra))
    data = {} if value == "absent" else {"x": value}
    assert check_answer(elements, {"data": data}) == {"data": {}}


def test_missing_checkbox_is_false() -> None:
    elements, _ = check_elements(one_input(input_type="checkbox"))
    assert check_answer(elements, {"data": {}}) == {"data": {"x": False}}
    assert check_answer(elements, {"data": {"x": None}}) == {"data": {"x": False}}


def test_required_checkbox_must_be_checked() -> None:
    elements, _ = check_elements(one_input(input_type="checkbox", required=True))
    assert check_answer(elements, {"data": {"x": True}}) == {"data": {"x": True}}
    assert answer_problems(elements, {"data": {"x": False}}) == {"data.x": ["must be checked"]}
    assert answer_problems(elements, {"data": {}}) == {"data.x": ["is required"]}


def test_missing_optional_takes_its_default() -> None:
    inputs = [
        {"name": "n", "label": "N", "input_type": "number", "default": "3"},
        {"name": "c", "label": "C", "input_type": "checkbox", "default": True},
        {"name": "t", "label": "T", "input_type": "text", "default": "hi"},
        {"name": "r", "label": "R", "input_type": "text", "required": True, "default": "given"},
    ]
    elements, _ = check_elements([{"type": "fields", "inputs": inputs}])
    assert check_answer(elements, {"data": {"r": "x"}}) == {"data": {"n": 3, "c": True, "t": "hi", "r": "x"}}
    assert check_answer(elements, {"data": {"n": 9, "c": False, "t": "yo", "r": "x"}}) == {
        "data": {"n": 9, "c": False, "t": "yo", "r": "x"}
    }
    # A required input is answered by the person; its default does not stand in.
    assert answer_problems(elements, {"data": {}}) == {"data.r": ["is required"]}


def test_unknown_input_names() -> None:
    elements, _ = check_elements(one_input(input_type="text"))
    assert answer_problems(elements, {"data": {"x": "a", "y": 1, "X": "b"}}) == {
        "data.y": ["is not a known input"],
        "data.X": ["is not a known input"],
    }


@pytest.mark.parametrize("data", [None, [], "x=1", 5])
def test_data_must_be_an_object(data: object) -> None:
    elements, _ = check_elements(one_input(input_type="text"))
    assert answer_problems(elements, {"data": data}) == {"data": ["must be an object"]}


def test_fields_answer_typed_and_in_input_order() -> None:
    inputs = [
        {"name": "amount", "label": "Amount", "input_type": "number", "required": True, "min": 0},
        {"name": "email", "label": "Email", "input_type": "email"},
        {"name": "day", "label": "Day", "input_type": "date"},
        {"name": "at", "label": "At", "input_type": "datetime"},
        {"name": "kind", "label": "Kind", "input_type": "select", "options": ["travel", "food"]},
        {"name": "receipt", "label": "Receipt", "input_type": "checkbox"},
        {"name": "link", "label": "Link", "input_type": "url"},
    ]
    elements, _ = check_elements([{"type": "fields", "inputs": inputs}])
    answer = {
        "data": {
            "link": "https://example.com/r/1",
            "receipt": True,
            "kind": "food",
            "at": "2024-01-15T10:30:00Z",
            "day": "2024-01-15",
            "email": "ann@example.com",
            "amount": "12.75",
        }
    }
    result = check_answer(elements, answer)
    assert result == {
        "data": {
            "amount": 12.75,
            "email": "ann@example.com",
            "day": "2024-01-15",
            "at": "2024-01-15T10:30:00Z",
            "kind": "food",
            "receipt": True,
            "link": "https://example.com/r/1",
        }
    }
    assert list(result["data"]) == [spec["name"] for spec in inputs]


def test_fields_answer_collects_every_problem() -> None:
    inputs = [
        {"name": "amount", "label": "Amount", "input_type": "number", "required": True, "max": 100},
        {"name": "email", "label": "Email", "input_type": "email", "required": True},
        {"name": "day", "label": "Day", "input_type": "date"},
    ]
    elements, _ = check_elements([{"type": "fields", "inputs": inputs}])
    assert answer_problems(elements, {"data": {"amount": 101, "day": "soon", "extra": 1}}) == {
        "data.extra": ["is not a known input"],
        "data.amount": ["must be at most 100"],
        "data.email": ["is required"],
        "data.day": ["must be a date as YYYY-MM-DD"],
    }
