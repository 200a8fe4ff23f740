"""The emulator's world: users, guilds, channels, webhooks, messages, interactions, requests."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field
from typing import Any

from tests.emulator import ids
from tests.emulator.waiting import ChangeNotifier

JSON = dict[str, Any]


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None
    avatar: str | None = None
    dms_closed: bool = False  # blocked the bot / closed DMs: sending to their DM is 403/50007

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    bot_id: int | None = None

    @property
    def is_everyone(self) -> bool:
        return self.id == self.guild_id


@dataclass
class Overwrite:
    """A channel permission overwrite; ``type`` 0 is a role, 1 a member."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0


@dataclass
class Channel:
    id: int
    type: int
    name: str | None
    guild_id: int | None = None
    parent_id: int | None = None
    position: int = 0
    topic: str | None = None
    owner_id: int | None = None
    recipient_id: int | None = None
    overwrites: dict[int, Overwrite] = field(default_factory=dict)
    created_at: datetime.datetime = field(default_factory=ids.utcnow)
    deleted: bool = False  # every route on it answers 404/10003
    webhook_refusal: WebhookRefusal | None = None  # its webhooks refuse (``refuse_webhooks``)

    @property
    def is_thread(self) -> bool:
        return self.type in ids.THREAD_TYPES

    @property
    def is_dm(self) -> bool:
        return self.type == ids.DM

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"


@dataclass
class WebhookRefusal:
    """A channel's webhooks answer ``status``/``code`` to executes (and, unless
    ``execute_only``, to every other request made with a webhook token)."""

    status: int
    code: int
    message: str
    execute_only: bool = False
    refused: int = 0  # how many requests it refused so far


@dataclass
class Member:
    guild_id: int
    user_id: int
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: datetime.datetime = field(default_factory=ids.utcnow)


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    joined_at: datetime.datetime = field(default_factory=ids.utcnow)

    @property
    def everyone_role(self) -> Role:
        return self.roles[self.id]


@dataclass
class Webhook:
    id: int
    token: str
    guild_id: int
    channel_id: int
    name: str
    application_id: int | None
    creator_id: int
    avatar: str | None = None
    deleted: bool = False


@dataclass
class UploadedFile:
    field: str
    filename: str | None
    content_type: str | None
    size: int
    data: bytes = dataclasses.field(default=b"", repr=False)


@dataclass
class Attachment:
    """A file on the emulator's CDN (``emu.cdn_host``): one a test uploaded (``emu.upload``,
    usable as a slash option value or in ``post_message(attachments=...)``) or one the bot
    sent. ``size`` and ``content_type`` are what Discord reports, which a hostile test may make
    lie; ``data`` is what the CDN serves (or, with ``redirect_to``, a redirect elsewhere)."""

    id: int
    filename: str
    data: bytes = field(repr=False)
    content_type: str | None
    url: str
    proxy_url: str
    size: int
    redirect_to: str | None = None
    description: str | None = None
    # Voice messages: the clip's length and its base64 waveform, as Discord sends them.
    duration_secs: float | None = None
    waveform: str | None = None

    def payload(self, *, ephemeral: bool = False) -> JSON:
        """The attachment object as Discord sends it (``ephemeral`` for slash options)."""
        out: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.proxy_url,
        }
        if self.content_type is not None:
            out["content_type"] = self.content_type
        if self.description is not None:
            out["description"] = self.description
        if self.duration_secs is not None:
            out["duration_secs"] = self.duration_secs
        if self.waveform is not None:
            out["waveform"] = self.waveform
        if ephemeral:
            out["ephemeral"] = True
        return out


@dataclass
class Modal:
    """The modal a bot answered an interaction with (callback type 9).

    ``fields`` maps each text input's custom id to ``value`` (the pre-filled text or None),
    ``label``, ``style`` (1 short, 2 paragraph), ``min_length``, ``max_length``, ``required``
    and ``placeholder``. ``components`` is the top-level component list as Discord stored it
    (ids assigned); ``submitted`` is set once ``emu.submit_modal`` sent it."""

    custom_id: str
    title: str
    fields: dict[str, JSON]
    components: list[JSON] = field(default_factory=list, repr=False)
    submitted: bool = False


@dataclass
class Message:
    """One message in a channel, posted by a test user, the bot, a webhook or an interaction.

    ``source`` is ``"user"`` for messages the test posted, else ``"bot"``, ``"webhook"`` or
    ``"interaction"`` (the original response or a followup). Edits change the fields in place
    and append the request body to ``edits`` and a ``Revision`` (when, and the content after
    it) to ``revisions``; ``versions`` is the content as posted, then after each edit.
    Deletes set ``deleted``.
    """

    id: int
    channel_id: int
    guild_id: int | None
    author: User
    content: str
    source: str
    posted_at: float
    created_at: datetime.datetime = field(default_factory=ids.utcnow)
    webhook_id: int | None = None
    application_id: int | None = None
    username: str | None = None
    avatar_url: str | None = None
    allowed_mentions: JSON | None = None
    thread_id: int | None = None
    message_reference: JSON | None = None
    embeds: list[JSON] = field(default_factory=list)
    attachments: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    mention_ids: list[int] = field(default_factory=list)
    flags: int = 0
    tts: bool = False
    type: int = 0
    nonce: str | int | None = None
    interaction_id: int | None = None
    edits: list[JSON] = field(default_factory=list)
    edited_at: datetime.datetime | None = None
    deleted: bool = False
    revisions: list[Revision] = field(default_factory=list)
    first_content: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.first_content = self.content

    @property
    def versions(self) -> list[Revision]:
        """The content as posted, then after each edit, with the loop time of each."""
        return [Revision(self.posted_at, self.first_content), *self.revisions]

    @property
    def from_bot(self) -> bool:
        return self.source != "user"

    @property
    def is_loading(self) -> bool:
        return bool(self.flags & ids.FLAG_LOADING)

    @property
    def is_ephemeral(self) -> bool:
        return bool(self.flags & ids.FLAG_EPHEMERAL)

    @property
    def reply_to_id(self) -> int | None:
        if self.message_reference and self.message_reference.get("message_id"):
            return int(self.message_reference["message_id"])
        return None


@dataclass(frozen=True)
class Revision:
    """A message's content from loop time ``at`` on (it was posted, or edited, then)."""

    at: float
    content: str


@dataclass
class ApplicationCommand:
    id: int
    application_id: int
    guild_id: int | None
    name: str
    type: int
    body: JSON
    version: int

    def option_types(self, path: list[str]) -> dict[str, int]:
        """Option name -> type for the (sub)command at ``path`` below this command."""
        options: list[JSON] = list(self.body.get("options") or [])
        for part in path:
            match = next((o for o in options if o.get("name") == part), None)
            if match is None:
                return {}
            options = list(match.get("options") or [])
        return {o["name"]: int(o["type"]) for o in options if "name" in o and "type" in o}


@dataclass
class RecordedRequest:
    """What Discord would have seen: one HTTP request to the REST API."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    headers: dict[str, str]
    at: float
    wall: datetime.datetime
    status: int = 0
    response: Any = None
    injected_fault: bool = False
    unknown_route: bool = False

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    def __repr__(self) -> str:
        query = f"?{self.query}" if self.query else ""
        return f"<{self.method} {self.path}{query} -> {self.status}>"


@dataclass
class Fault:
    """A scripted failure: the next ``count`` requests matching method and path fail."""

    method: str
    path_pattern: str
    status: int
    count: int
    retry_after: float | None = None
    code: int = 0
    message: str | None = None
    is_global: bool = False
    scope: str = "user"
    limited_until: float | None = None  # loop time; set when a 429 is served
    # Discord carried the request out, then the answer failed (a 5xx after the message was
    # created, or a connection lost): the effect happens, `delay` s pass, the fault answers.
    after_effect: bool = False
    delay: float = 0.0


@dataclass
class Interaction:
    """An INTERACTION_CREATE the emulator dispatched, and everything the bot answered to it.

    Times are ``loop.time()`` values. ``responses`` holds the callback bodies Discord accepted;
    ``rejected`` the ``(status, code)`` of callbacks it refused (late, or a second one).
    """

    id: int
    token: str
    type: int
    application_id: int
    channel: Channel
    user: User
    guild_id: int | None
    command_name: str
    command_id: int
    payload: JSON
    notifier: ChangeNotifier = field(repr=False)
    dispatched_at: float | None = None
    responded_at: float | None = None
    deferred_at: float | None = None
    response_type: int | None = None
    responses: list[JSON] = field(default_factory=list)
    rejected: list[tuple[int, int]] = field(default_factory=list)
    original: Message | None = None
    original_edits: list[JSON] = field(default_factory=list)
    followups: list[Message] = field(default_factory=list)
    # Component interactions (type 3) and modal submits (type 5):
    custom_id: str | None = None  # the button / select / modal custom id
    message: Message | None = None  # the message whose component was used
    parent: Interaction | None = None  # for a modal submit: the interaction showing the modal
    values: list[str] = field(default_factory=list)  # a modal submit's or select's values
    # A type 9 callback: the modal the bot showed.
    modal: Modal | None = None

    @property
    def is_component(self) -> bool:
        return self.type == 3

    @property
    def is_modal_submit(self) -> bool:
        return self.type == 5

    @property
    def choices(self) -> list[JSON] | None:
        """Autocomplete choices from a type 8 response, if any."""
        for body in self.responses:
            if body.get("type") == 8:
                return list((body.get("data") or {}).get("choices") or [])
        return None

    async def wait_for_modal(self, timeout: float = 5.0) -> Modal:
        """The modal the bot answered with (a type 9 callback Discord accepted)."""
        return await self.notifier.wait_for(
            lambda: self.modal,
            timeout,
            lambda: (
                f"a modal in answer to /{self.command_name} "
                f"(responses: {[r.get('type') for r in self.responses]}, "
                f"rejected: {self.rejected})"
            ),
        )

    async def wait_for_update(self, timeout: float = 5.0) -> Message:
        """For a component interaction (or a modal submit from one): the clicked message once
        the bot updated it, by a type 7 callback or by a type 6 then a PATCH of @original."""

        def updated() -> Message | None:
            if self.message is None or self.original is not self.message:
                return None
            if self.response_type == 7 or self.original_edits:
                return self.message
            return None

        return await self.notifier.wait_for(
            updated,
            timeout,
            lambda: (
                f"an update of the message for {self.custom_id!r} (responses: "
                f"{[r.get('type') for r in self.responses]}, rejected: {self.rejected})"
            ),
        )

    async def wait_for_response(self, timeout: float = 5.0) -> JSON:
        """The first accepted callback body (type 4, 5, 8, ...)."""
        return await self.notifier.wait_for(
            lambda: self.responses[0] if self.responses else None,
            timeout,
            lambda: f"a callback to interaction /{self.command_name} (rejected: {self.rejected})",
        )

    async def wait_for_edit(self, timeout: float = 5.0) -> Message:
        """The original response after at least one PATCH of @original."""
        return await self.notifier.wait_for(
            lambda: self.original if self.original_edits and self.original else None,
            timeout,
            lambda: f"an edit of @original for /{self.command_name} (responses: {self.responses})",
        )

    async def wait_for_followups(self, count: int = 1, timeout: float = 5.0) -> list[Message]:
        return await self.notifier.wait_for(
            lambda: list(self.followups) if len(self.followups) >= count else None,
            timeout,
            lambda: f"{count} followup(s) for /{self.command_name}, have {len(self.followups)}",
        )

    async def wait_for_content(self, timeout: float = 5.0) -> str:
        """The visible content of the original response once it is no longer 'thinking'."""

        def ready() -> str | None:
            original = self.original
            if original is None or original.is_loading:
                return None
            return original.content or None

        return await self.notifier.wait_for(
            ready, timeout, lambda: f"visible content in the response to /{self.command_name}"
        )
