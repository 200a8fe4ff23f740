"""The one listener for modal submits and button/select clicks, routed by custom-id prefix.

Which to use (team decision): THIS router, not `lightbulb.components`. lightbulb 3.2's
`Menu.attach` / `Modal.attach` wait for the answer inside the process that sent the menu (an
in-memory future with a timeout): a click that arrives after a restart, or on another process
of the same deployment, is silently dropped. Here every custom id carries what its handler
needs, so any process can answer it at any time, and nothing is kept in memory.

How to use it:

    services.router.register("character:edit", on_edit)      # in your command module

    async def on_edit(routed: Routed) -> None:
        slug, section = routed.args                          # "character:edit:nova:card"
        text = routed.values.get("system_prompt")              # modal text inputs by custom id
        await routed.reply("Saved.")                           # ephemeral by default

Custom ids are `prefix:arg:arg...` (colon-separated, at most 100 characters: Discord's limit;
keep args short and free of colons: slugs, page numbers, setting keys). The longest matching
registered prefix wins. Handlers answer through `Routed` (`reply`, `defer`, `update`, or the raw
`routed.interaction`). Raising `Refusal("why")` answers that text ephemerally; raising
`Expired()` answers "this has expired"; any other exception is logged and answered with an
ephemeral error. An id no handler claims is answered "this has expired" (e.g. a button from a
feature that no longer exists, or a process started without that module).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import hikari

from tzurot.logs import get_logger

log = get_logger(__name__)

CUSTOM_ID_MAX = 100
EXPIRED_TEXT = "This has expired. Run the command again."
ERROR_TEXT = "Something went wrong handling that. Please try again."

RoutableInteraction = hikari.ComponentInteraction | hikari.ModalInteraction


class Refusal(Exception):
    """Raise from a handler to answer the user with this message, ephemerally."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Expired(Refusal):
    """Raise when what the custom id points at is gone (deleted character, stale page...)."""

    def __init__(self, message: str = EXPIRED_TEXT) -> None:
        super().__init__(message)


def custom_id(*parts: object) -> str:
    """Build a custom id `a:b:c`; refuses one over Discord's 100 characters."""
    text = ":".join(str(p) for p in parts)
    if len(text) > CUSTOM_ID_MAX:
        raise ValueError(f"custom id over {CUSTOM_ID_MAX} characters: {text[:40]}...")
    return text


def modal_values(interaction: hikari.ModalInteraction) -> dict[str, str]:
    """The text inputs of a modal submit, by custom id."""
    values: dict[str, str] = {}
    for row in interaction.components:
        for component in getattr(row, "components", ()):
            if isinstance(component, hikari.TextInputComponent):
                values[component.custom_id] = component.value or ""
    return values


@dataclass
class Routed:
    """One routed interaction and helpers to answer it."""

    interaction: RoutableInteraction
    prefix: str
    args: list[str]
    values: Mapping[str, str] = field(default_factory=dict)
    answered: bool = False
    deferred: bool = False

    @property
    def user_id(self) -> str:
        return str(self.interaction.user.id)

    @property
    def member_permissions(self) -> hikari.Permissions:
        member = self.interaction.member
        return member.permissions if member is not None else hikari.Permissions.NONE

    @property
    def is_modal(self) -> bool:
        return isinstance(self.interaction, hikari.ModalInteraction)

    async def defer(self, *, ephemeral: bool = True) -> None:
        """Acknowledge now, answer later with `reply` (edits the deferred message)."""
        flags = hikari.MessageFlag.EPHEMERAL if ephemeral else hikari.MessageFlag.NONE
        await self.interaction.create_initial_response(
            hikari.ResponseType.DEFERRED_MESSAGE_CREATE, flags=flags
        )
        self.answered = True
        self.deferred = True

    async def reply(
        self,
        content: str,
        *,
        ephemeral: bool = True,
        components: Sequence[hikari.api.ComponentBuilder] | None = None,
        attachments: Sequence[hikari.Resourceish] | None = None,
    ) -> None:
        """A new message (the first answer), or the deferred one's content, or a follow-up."""
        flags = hikari.MessageFlag.EPHEMERAL if ephemeral else hikari.MessageFlag.NONE
        comps = list(components) if components is not None else hikari.UNDEFINED
        files = list(attachments) if attachments is not None else hikari.UNDEFINED
        if not self.answered:
            await self.interaction.create_initial_response(
                hikari.ResponseType.MESSAGE_CREATE, content, flags=flags,
                components=comps, attachments=files,
                user_mentions=False, role_mentions=False, mentions_everyone=False,
            )  # fmt: skip
            self.answered = True
        elif self.deferred:
            await self.interaction.edit_initial_response(
                content, components=comps, attachments=files,
                user_mentions=False, role_mentions=False, mentions_everyone=False,
            )  # fmt: skip
            self.deferred = False
        else:
            await _followup(self.interaction, content, flags=flags, components=comps)

    async def update(
        self,
        content: str,
        *,
        components: Sequence[hikari.api.ComponentBuilder] | None = None,
    ) -> None:
        """Edit the message the button is on (a component interaction's type 7 answer)."""
        comps = list(components) if components is not None else []
        if not self.answered:
            await self.interaction.create_initial_response(
                hikari.ResponseType.MESSAGE_UPDATE, content, components=comps,
                user_mentions=False, role_mentions=False, mentions_everyone=False,
            )  # fmt: skip
            self.answered = True
        else:
            await self.interaction.edit_initial_response(content, components=comps)


Handler = Callable[[Routed], Awaitable[None]]


async def _followup(
    interaction: RoutableInteraction,
    content: str,
    *,
    flags: hikari.MessageFlag = hikari.MessageFlag.EPHEMERAL,
    components: hikari.UndefinedOr[Sequence[hikari.api.ComponentBuilder]] = hikari.UNDEFINED,
) -> None:
    await interaction.app.rest.execute_webhook(
        interaction.application_id, interaction.token, content, flags=flags,
        components=components, user_mentions=False, role_mentions=False,
        mentions_everyone=False,
    )  # fmt: skip


class InteractionRouter:
    """Routes modal submits and component clicks to the handler registered for their prefix."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, prefix: str, handler: Handler) -> None:
        if not prefix or prefix.endswith(":"):
            raise ValueError(f"bad custom id prefix {prefix!r}")
        if prefix in self._handlers:
            raise ValueError(f"custom id prefix {prefix!r} is already registered")
        self._handlers[prefix] = handler

    @property
    def prefixes(self) -> list[str]:
        return sorted(self._handlers)

    def match(self, custom_id: str) -> tuple[str, Handler, list[str]] | None:
        best: str | None = None
        for prefix in self._handlers:
            if (custom_id == prefix or custom_id.startswith(prefix + ":")) and (
                best is None or len(prefix) > len(best)
            ):
                best = prefix
        if best is None:
            return None
        rest = custom_id[len(best) + 1 :]
        return best, self._handlers[best], (rest.split(":") if rest else [])

    async def on_interaction(self, event: hikari.InteractionCreateEvent) -> None:
        interaction = event.interaction
        if isinstance(interaction, hikari.ComponentInteraction | hikari.ModalInteraction):
            await self.dispatch(interaction)

    async def dispatch(self, interaction: RoutableInteraction) -> None:
        found = self.match(interaction.custom_id)
        if found is None:
            log.info("interaction with no handler", custom_id=interaction.custom_id[:100])
            await _answer_error(Routed(interaction, "", []), EXPIRED_TEXT)
            return
        prefix, handler, args = found
        values = (
            modal_values(interaction) if isinstance(interaction, hikari.ModalInteraction) else {}
        )
        routed = Routed(interaction, prefix, args, values)
        try:
            await handler(routed)
        except Refusal as refusal:
            await _answer_error(routed, refusal.message)
        except Exception:
            log.exception("interaction handler failed", prefix=prefix)
            await _answer_error(routed, ERROR_TEXT)


async def _answer_error(routed: Routed, text: str) -> None:
    """An ephemeral answer whether or not the interaction was already acknowledged."""
    interaction = routed.interaction
    try:
        if not routed.answered:
            try:
                await interaction.create_initial_response(
                    hikari.ResponseType.MESSAGE_CREATE, text, flags=hikari.MessageFlag.EPHEMERAL,
                    user_mentions=False, role_mentions=False, mentions_everyone=False,
                )  # fmt: skip
                return
            except hikari.BadRequestError:
                pass  # already acknowledged by the handler through the raw interaction
        if routed.deferred:
            await interaction.edit_initial_response(text, components=[])
        else:
            await _followup(interaction, text)
    except Exception:
        log.exception("could not answer an interaction with an error")


__all__ = [
    "CUSTOM_ID_MAX",
    "EXPIRED_TEXT",
    "Expired",
    "Handler",
    "InteractionRouter",
    "Refusal",
    "Routed",
    "custom_id",
    "modal_values",
]
