"""Message components (buttons, select menus) and modals: Discord's validation, the ids it
assigns, and the helpers tests use to read them (``buttons(message)``)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

from tests.emulator.models import JSON, Message, Modal

ACTION_ROW = 1
BUTTON = 2
STRING_SELECT = 3
TEXT_INPUT = 4
USER_SELECT = 5
ROLE_SELECT = 6
MENTIONABLE_SELECT = 7
CHANNEL_SELECT = 8
SECTION = 9
TEXT_DISPLAY = 10
THUMBNAIL = 11
MEDIA_GALLERY = 12
FILE = 13
SEPARATOR = 14
CONTAINER = 17
LABEL = 18

SELECTS = frozenset({STRING_SELECT, USER_SELECT, ROLE_SELECT, MENTIONABLE_SELECT, CHANNEL_SELECT})
V2_TOP_LEVEL = frozenset(
    {ACTION_ROW, SECTION, TEXT_DISPLAY, MEDIA_GALLERY, FILE, SEPARATOR, CONTAINER}
)
FLAG_IS_COMPONENTS_V2 = 1 << 15

BUTTON_LINK = 5
BUTTON_PREMIUM = 6
TEXT_INPUT_SHORT = 1
TEXT_INPUT_PARAGRAPH = 2

MAX_ROWS = 5
MAX_BUTTONS_PER_ROW = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
MAX_MODAL_TITLE = 45
MAX_MODAL_LABEL = 45
MAX_LABEL_DESCRIPTION = 100
MAX_TEXT_INPUT_LENGTH = 4000
MAX_PLACEHOLDER = 100
MAX_SELECT_PLACEHOLDER = 150
MAX_SELECT_OPTIONS = 25

Path = Sequence[str | int]


class FormError(ValueError):
    """One entry of Discord's 50035 "Invalid Form Body" tree: where, code and message."""

    def __init__(self, path: Path, code: str, message: str) -> None:
        super().__init__(f"{'.'.join(map(str, path))}: {code} {message}")
        self.path = [str(p) for p in path]
        self.code = code
        self.message = message


def _bad_length(path: Path, low: int, high: int) -> FormError:
    return FormError(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def _required(path: Path) -> FormError:
    return FormError(path, "BASE_TYPE_REQUIRED", "This field is required")


def _choices(path: Path, allowed: Sequence[int]) -> FormError:
    listed = ", ".join(str(a) for a in allowed)
    return FormError(path, "BASE_TYPE_CHOICES", f"Value must be one of {{{listed}}}.")


def _check_string(
    container: JSON, key: str, path: Path, *, low: int, high: int, required: bool
) -> str | None:
    value = container.get(key)
    if value is None:
        if required:
            raise _required([*path, key])
        return None
    if not isinstance(value, str):
        raise FormError([*path, key], "STRING_TYPE_CONVERT", "Could not interpret value as string.")
    if not low <= len(value) <= high:
        if low == 0:
            raise FormError(
                [*path, key], "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length."
            )
        raise _bad_length([*path, key], low, high)
    return value


def _check_int(container: JSON, key: str, path: Path, *, low: int, high: int) -> int | None:
    value = container.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormError([*path, key], "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
    if value < low:
        raise FormError(
            [*path, key],
            "NUMBER_TYPE_MIN",
            f"int value should be greater than or equal to {low}.",
        )
    if value > high:
        raise FormError(
            [*path, key], "NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}."
        )
    return value


def _children(component: JSON) -> Iterator[JSON]:
    """Nested components: a row's or container's ``components``, a section's ``accessory``,
    a label's ``component``."""
    for child in component.get("components") or []:
        if isinstance(child, dict):
            yield child
    for key in ("accessory", "component"):
        child = component.get(key)
        if isinstance(child, dict):
            yield child


def walk(components: Sequence[JSON]) -> Iterator[JSON]:
    """Every component, depth first (a row before its buttons)."""
    for component in components:
        yield component
        yield from walk(list(_children(component)))


def number(components: Sequence[JSON]) -> list[JSON]:
    """A copy with Discord's ``id`` on every component: the ones given are kept, the others
    numbered 1, 2, ... in depth-first order, skipping ids already taken."""
    numbered: list[JSON] = copy.deepcopy(list(components))
    taken = {c["id"] for c in walk(numbered) if isinstance(c.get("id"), int) and c["id"]}
    counter = 0
    for component in walk(numbered):
        if isinstance(component.get("id"), int) and component["id"]:
            continue
        counter += 1
        while counter in taken:
            counter += 1
        component["id"] = counter
    return numbered


# -- message components ---------------------------------------------------------------------


def validate_message_components(components: Any, flags: int) -> None:
    """Discord's checks on a message's ``components`` (paths start at ``components``)."""
    path: list[str | int] = ["components"]
    if not isinstance(components, list):
        raise FormError(path, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    v2 = bool(flags & FLAG_IS_COMPONENTS_V2)
    if not v2 and len(components) > MAX_ROWS:
        raise FormError(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ROWS} or fewer in length.")
    allowed = sorted(V2_TOP_LEVEL) if v2 else [ACTION_ROW]
    custom_ids: set[str] = set()
    for index, component in enumerate(components):
        where = [*path, index]
        if not isinstance(component, dict) or component.get("type") not in allowed:
            raise FormError(
                [*where, "type"],
                "UNION_TYPE_CHOICES",
                f'Value of field "type" must be one of ({", ".join(map(str, allowed))},).',
            )
        if component["type"] == ACTION_ROW:
            _validate_row(component, where, custom_ids)
        else:
            _validate_v2(component, where, custom_ids)


def _validate_v2(component: JSON, path: Path, custom_ids: set[str]) -> None:
    """Components V2 containers: only the rows and buttons inside them are checked."""
    for index, child in enumerate(component.get("components") or []):
        if isinstance(child, dict) and child.get("type") == ACTION_ROW:
            _validate_row(child, [*path, "components", index], custom_ids)
        elif isinstance(child, dict):
            _validate_v2(child, [*path, "components", index], custom_ids)
    accessory = component.get("accessory")
    if isinstance(accessory, dict) and accessory.get("type") == BUTTON:
        _validate_button(accessory, [*path, "accessory"], custom_ids)


def _validate_row(row: JSON, path: Path, custom_ids: set[str]) -> None:
    children = row.get("components")
    if not isinstance(children, list) or not 1 <= len(children) <= MAX_BUTTONS_PER_ROW:
        raise _bad_length([*path, "components"], 1, MAX_BUTTONS_PER_ROW)
    has_select = any(isinstance(c, dict) and c.get("type") in SELECTS for c in children)
    for index, child in enumerate(children):
        where = [*path, "components", index]
        kind = child.get("type") if isinstance(child, dict) else None
        if kind == BUTTON:
            if has_select:
                raise FormError(
                    where,
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            _validate_button(child, where, custom_ids)
        elif kind in SELECTS:
            if len(children) > 1:
                raise FormError(
                    where,
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            _validate_select(child, where, custom_ids)
        else:
            allowed = ", ".join(str(t) for t in [BUTTON, *sorted(SELECTS)])
            raise FormError(
                [*where, "type"],
                "UNION_TYPE_CHOICES",
                f'Value of field "type" must be one of ({allowed},).',
            )


def _claim(custom_id: str, path: Path, custom_ids: set[str]) -> None:
    if custom_id in custom_ids:
        raise FormError(
            [*path, "custom_id"],
            "COMPONENT_CUSTOM_ID_DUPLICATED",
            "Component custom id cannot be duplicated",
        )
    custom_ids.add(custom_id)


def _validate_button(button: JSON, path: Path, custom_ids: set[str]) -> None:
    style = button.get("style")
    if isinstance(style, bool) or style not in (1, 2, 3, 4, 5, 6):
        raise _choices([*path, "style"], [1, 2, 3, 4, 5, 6])
    label = _check_string(button, "label", path, low=0, high=MAX_BUTTON_LABEL, required=False)
    if style == BUTTON_PREMIUM:
        if not button.get("sku_id"):
            raise _required([*path, "sku_id"])
        for key in ("custom_id", "url", "label", "emoji"):
            if button.get(key) is not None:
                raise FormError(
                    [*path, key],
                    "BUTTON_COMPONENT_INVALID_FIELD",
                    f"A premium button cannot have a {key}",
                )
        return
    if not label and not button.get("emoji"):
        raise FormError(
            [*path, "label"],
            "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED",
            "A button must have a label or an emoji",
        )
    if style == BUTTON_LINK:
        if button.get("custom_id") is not None:
            raise FormError(
                [*path, "custom_id"],
                "BUTTON_COMPONENT_CUSTOM_ID_URL_EXCLUSIVE",
                "A link button cannot have a custom id",
            )
        url = _check_string(button, "url", path, low=1, high=512, required=True)
        if url is not None and not url.startswith(("http://", "https://", "discord://")):
            raise FormError([*path, "url"], "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        return
    if button.get("url") is not None:
        raise FormError(
            [*path, "url"],
            "BUTTON_COMPONENT_CUSTOM_ID_URL_EXCLUSIVE",
            "Only link buttons can have a url",
        )
    custom_id = _check_string(button, "custom_id", path, low=1, high=MAX_CUSTOM_ID, required=True)
    assert custom_id is not None
    _claim(custom_id, path, custom_ids)


def _validate_select(select: JSON, path: Path, custom_ids: set[str]) -> None:
    custom_id = _check_string(select, "custom_id", path, low=1, high=MAX_CUSTOM_ID, required=True)
    assert custom_id is not None
    _claim(custom_id, path, custom_ids)
    _check_string(select, "placeholder", path, low=0, high=MAX_SELECT_PLACEHOLDER, required=False)
    low = _check_int(select, "min_values", path, low=0, high=MAX_SELECT_OPTIONS)
    high = _check_int(select, "max_values", path, low=1, high=MAX_SELECT_OPTIONS)
    if select.get("type") != STRING_SELECT:
        return
    options = select.get("options")
    if not isinstance(options, list) or not 1 <= len(options) <= MAX_SELECT_OPTIONS:
        raise _bad_length([*path, "options"], 1, MAX_SELECT_OPTIONS)
    values: set[str] = set()
    for index, option in enumerate(options):
        where = [*path, "options", index]
        if not isinstance(option, dict):
            raise _required(where)
        _check_string(option, "label", where, low=1, high=100, required=True)
        value = _check_string(option, "value", where, low=1, high=100, required=True)
        _check_string(option, "description", where, low=0, high=100, required=False)
        if value in values:
            raise FormError(
                [*where, "value"],
                "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
                "Select component option values must be unique",
            )
        values.add(str(value))
    if (high or 1) > len(options) or (low or 0) > len(options):
        raise FormError(
            [*path, "max_values" if (high or 1) > len(options) else "min_values"],
            "SELECT_COMPONENT_TOO_MANY_VALUES",
            "Select component cannot have more values than options",
        )


# -- reading components ---------------------------------------------------------------------


def find(components: Sequence[JSON], custom_id: str) -> JSON | None:
    """The (interactive) component with this custom id, if any."""
    return next((c for c in walk(components) if c.get("custom_id") == custom_id), None)


def buttons(message: Message) -> list[JSON]:
    """Every button on ``message``, in order: ``custom_id`` (None for links), ``label``,
    ``style``, ``disabled``, ``url`` and ``emoji`` (None when absent)."""
    return [
        {
            "custom_id": c.get("custom_id"),
            "label": c.get("label"),
            "style": c.get("style"),
            "disabled": bool(c.get("disabled", False)),
            "url": c.get("url"),
            "emoji": c.get("emoji"),
        }
        for c in walk(message.components)
        if c.get("type") == BUTTON
    ]


def selects(message: Message) -> list[JSON]:
    """Every select menu on ``message`` (the component dicts as stored)."""
    return [c for c in walk(message.components) if c.get("type") in SELECTS]


# -- modals ---------------------------------------------------------------------------------


def parse_modal(data: JSON) -> Modal:
    """Validate a type 9 callback's ``data`` as Discord does and return the ``Modal``.

    Top-level components: action rows holding exactly one text input (with its own
    ``label``), or label components (type 18) wrapping one text input; text displays
    (type 10) are allowed and carry no field. Paths are relative to ``data``."""
    title = _check_string(data, "title", [], low=1, high=MAX_MODAL_TITLE, required=True)
    custom_id = _check_string(data, "custom_id", [], low=1, high=MAX_CUSTOM_ID, required=True)
    components = data.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= MAX_ROWS:
        raise _bad_length(["components"], 1, MAX_ROWS)
    fields: dict[str, JSON] = {}
    for index, top in enumerate(components):
        where: list[str | int] = ["components", index]
        kind = top.get("type") if isinstance(top, dict) else None
        if kind == ACTION_ROW:
            children = top.get("components")
            if not isinstance(children, list) or len(children) != 1:
                raise _bad_length([*where, "components"], 1, 1)
            child = children[0]
            child_where = [*where, "components", 0]
            if not isinstance(child, dict) or child.get("type") != TEXT_INPUT:
                raise FormError(
                    [*child_where, "type"],
                    "UNION_TYPE_CHOICES",
                    f'Value of field "type" must be one of ({TEXT_INPUT},).',
                )
            label = _check_string(
                child, "label", child_where, low=1, high=MAX_MODAL_LABEL, required=True
            )
            _text_input(child, child_where, str(label), fields)
        elif kind == LABEL:
            label = _check_string(top, "label", where, low=1, high=MAX_MODAL_LABEL, required=True)
            _check_string(
                top, "description", where, low=0, high=MAX_LABEL_DESCRIPTION, required=False
            )
            child = top.get("component")
            child_where = [*where, "component"]
            if not isinstance(child, dict) or child.get("type") != TEXT_INPUT:
                raise FormError(
                    [*child_where, "type"],
                    "UNION_TYPE_CHOICES",
                    f'Value of field "type" must be one of ({TEXT_INPUT},).',
                )
            _text_input(child, child_where, str(label), fields)
        elif kind == TEXT_DISPLAY:
            _check_string(top, "content", where, low=1, high=4000, required=True)
        else:
            raise FormError(
                [*where, "type"],
                "UNION_TYPE_CHOICES",
                f'Value of field "type" must be one of ({ACTION_ROW}, {TEXT_DISPLAY}, {LABEL}).',
            )
    if not fields:
        raise _bad_length(["components"], 1, MAX_ROWS)
    assert title is not None and custom_id is not None
    return Modal(custom_id=custom_id, title=title, fields=fields, components=number(components))


def _text_input(component: JSON, path: Path, label: str, fields: dict[str, JSON]) -> None:
    custom_id = _check_string(
        component, "custom_id", path, low=1, high=MAX_CUSTOM_ID, required=True
    )
    assert custom_id is not None
    if custom_id in fields:
        raise FormError(
            [*path, "custom_id"],
            "COMPONENT_CUSTOM_ID_DUPLICATED",
            "Component custom id cannot be duplicated",
        )
    style = component.get("style")
    if isinstance(style, bool) or style not in (TEXT_INPUT_SHORT, TEXT_INPUT_PARAGRAPH):
        raise _choices([*path, "style"], [TEXT_INPUT_SHORT, TEXT_INPUT_PARAGRAPH])
    min_length = _check_int(component, "min_length", path, low=0, high=MAX_TEXT_INPUT_LENGTH)
    max_length = _check_int(component, "max_length", path, low=1, high=MAX_TEXT_INPUT_LENGTH)
    min_length = 0 if min_length is None else min_length
    max_length = MAX_TEXT_INPUT_LENGTH if max_length is None else max_length
    if min_length > max_length:
        raise FormError(
            [*path, "min_length"],
            "TEXT_INPUT_MIN_LENGTH_GREATER_THAN_MAX",
            "min_length must be less than or equal to max_length",
        )
    value = _check_string(component, "value", path, low=0, high=max_length, required=False)
    _check_string(component, "placeholder", path, low=0, high=MAX_PLACEHOLDER, required=False)
    required = component.get("required", True)
    if not isinstance(required, bool):
        raise FormError(
            [*path, "required"], "BOOLEAN_TYPE_CONVERT", "Could not interpret value as boolean."
        )
    fields[custom_id] = {
        "value": value,
        "label": label,
        "style": style,
        "min_length": min_length,
        "max_length": max_length,
        "required": required,
        "placeholder": component.get("placeholder"),
    }


def submitted_components(modal: Modal, values: dict[str, str]) -> list[JSON]:
    """``data.components`` of the MODAL_SUBMIT: the modal's layout (with its ids), each text
    input reduced to ``{type, id, custom_id, value}`` as Discord sends it."""
    out: list[JSON] = []
    for top in modal.components:
        if top.get("type") == ACTION_ROW:
            inputs = [_submitted_input(c, values) for c in top.get("components") or []]
            out.append({"type": ACTION_ROW, "id": top["id"], "components": inputs})
        elif top.get("type") == LABEL:
            out.append(
                {
                    "type": LABEL,
                    "id": top["id"],
                    "component": _submitted_input(top["component"], values),
                }
            )
        else:
            out.append({"type": top.get("type"), "id": top["id"]})
    return out


def _submitted_input(component: JSON, values: dict[str, str]) -> JSON:
    custom_id = str(component["custom_id"])
    return {
        "type": TEXT_INPUT,
        "id": component["id"],
        "custom_id": custom_id,
        "value": values[custom_id],
    }
