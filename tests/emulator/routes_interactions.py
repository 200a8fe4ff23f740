"""Interaction callbacks, @original, followups, and application command sync."""

from __future__ import annotations

import re

from aiohttp import web

from tests.emulator import components, ids, payloads
from tests.emulator.core import (
    UNKNOWN_COMMAND,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    Core,
    DiscordError,
    form_error,
    invalid_form,
    unknown,
)
from tests.emulator.models import (
    JSON,
    ApplicationCommand,
    Interaction,
    Message,
    Modal,
    RecordedRequest,
)
from tests.emulator.rest import RECORD, Route

PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9
INTERACTION_APPLICATION_COMMAND = 2
INTERACTION_MESSAGE_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
INTERACTION_MODAL_SUBMIT = 5
MESSAGE_TYPE_DEFAULT = 0
MESSAGE_TYPE_CHAT_INPUT_COMMAND = 20

_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")


class InteractionRoutes:
    def __init__(self, core: Core) -> None:
        self.core = core

    def routes(self) -> list[Route]:
        original = "/webhooks/{webhook_id}/{token}/messages/@original"
        app = "/applications/{application_id}"
        return [
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.callback),
            ("GET", original, self.original),
            ("PATCH", original, self.original),
            ("DELETE", original, self.original),
            ("GET", app + "/commands", self.list_commands),
            ("PUT", app + "/commands", self.overwrite_commands),
            ("POST", app + "/commands", self.create_command),
            ("GET", app + "/commands/{command_id}", self.one_command),
            ("PATCH", app + "/commands/{command_id}", self.one_command),
            ("DELETE", app + "/commands/{command_id}", self.one_command),
            ("GET", app + "/guilds/{guild_id}/commands", self.list_commands),
            ("PUT", app + "/guilds/{guild_id}/commands", self.overwrite_commands),
            ("POST", app + "/guilds/{guild_id}/commands", self.create_command),
            ("GET", app + "/guilds/{guild_id}/commands/{command_id}", self.one_command),
            ("PATCH", app + "/guilds/{guild_id}/commands/{command_id}", self.one_command),
            ("DELETE", app + "/guilds/{guild_id}/commands/{command_id}", self.one_command),
        ]

    # -- callbacks -------------------------------------------------------------------------

    def _reject(self, interaction: Interaction, error: DiscordError) -> DiscordError:
        interaction.rejected.append((error.status, int(error.payload["code"])))
        self.core.world.changed()
        return error

    async def callback(self, request: web.Request) -> web.Response:
        world = self.core.world
        record: RecordedRequest = request[RECORD]
        interaction = world.interactions.get(int(request.match_info["interaction_id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        now = world.now()
        sent = interaction.dispatched_at
        if sent is None or now - sent > self.core.settings.interaction_deadline:
            raise self._reject(
                interaction, DiscordError(404, UNKNOWN_INTERACTION, "Unknown interaction")
            )
        if interaction.responses:
            raise self._reject(
                interaction, DiscordError(400, 40060, "Interaction has already been acknowledged.")
            )
        body = record.json or {}
        response_type = int(body.get("type") or 0)
        data = body.get("data") or {}
        modal = self._check_callback(interaction, response_type, data, record)
        if response_type == UPDATE_MESSAGE:
            assert interaction.message is not None  # _check_callback made sure
            try:
                self.core.apply_edit(interaction.message, data, record.files, where=("data",))
            except DiscordError as error:
                raise self._reject(interaction, error) from None
        interaction.responses.append(body)
        interaction.response_type = response_type
        interaction.responded_at = now
        if response_type == MODAL:
            interaction.modal = modal
        elif response_type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            # @original of a component interaction is the message the component is on.
            interaction.original = interaction.message
            if response_type == DEFERRED_UPDATE_MESSAGE:
                interaction.deferred_at = now
            elif interaction.message is not None:
                self.core.echo_update(interaction.message)
        elif response_type == DEFERRED_CHANNEL_MESSAGE:
            interaction.deferred_at = now
            flags = ids.FLAG_LOADING | (int(data.get("flags") or 0) & ids.FLAG_EPHEMERAL)
            interaction.original = self._response_message(
                interaction, {"content": "", "flags": flags}, record
            )
        elif response_type == CHANNEL_MESSAGE:
            interaction.original = self._response_message(interaction, data, record)
        world.changed()
        if interaction.original is not None and response_type in (
            CHANNEL_MESSAGE,
            DEFERRED_CHANNEL_MESSAGE,
        ):
            self.core.echo_create(interaction.original)
        if (record.query.get("with_response") or "").lower() != "true":
            return web.Response(status=204)
        return web.json_response(self._callback_response(interaction, response_type))

    @staticmethod
    def allowed_callbacks(interaction: Interaction) -> set[int]:
        """Which callback types Discord accepts as the first response: a modal only to a
        command or a component; an update (6/7) only where there is a message to update."""
        if interaction.type == INTERACTION_AUTOCOMPLETE:
            return {AUTOCOMPLETE_RESULT}
        if interaction.type == INTERACTION_MESSAGE_COMPONENT:
            return {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE,
                    UPDATE_MESSAGE, MODAL}  # fmt: skip
        if interaction.type == INTERACTION_MODAL_SUBMIT:
            allowed = {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE}
            if interaction.message is not None:
                allowed |= {DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE}
            return allowed
        return {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL}

    def _check_callback(
        self, interaction: Interaction, response_type: int, data: JSON, record: RecordedRequest
    ) -> Modal | None:
        if response_type not in self.allowed_callbacks(interaction):
            raise self._reject(
                interaction,
                invalid_form(
                    "type", "INTERACTION_RESPONSE_TYPE_INVALID", f"Invalid type {response_type}"
                ),
            )
        if response_type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and (
            interaction.message is None or interaction.message.deleted
        ):
            raise self._reject(interaction, unknown("Message", UNKNOWN_MESSAGE))
        try:
            if response_type == CHANNEL_MESSAGE:
                self.core.validate_message_body(data, record.files, where=("data",))
            if response_type == MODAL:
                try:
                    return components.parse_modal(data)
                except components.FormError as error:
                    raise form_error(error, ("data",)) from None
        except DiscordError as error:
            raise self._reject(interaction, error) from None
        if response_type == AUTOCOMPLETE_RESULT and len(data.get("choices") or []) > 25:
            raise self._reject(
                interaction,
                invalid_form("choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."),
            )
        return None

    def _response_message(
        self, interaction: Interaction, data: JSON, record: RecordedRequest
    ) -> Message:
        message = self.core.new_message(
            interaction.channel,
            self.core.world.bot,
            data,
            record.files,
            source="interaction",
            interaction_id=interaction.id,
            application_id=interaction.application_id,
        )
        from_command = interaction.type == INTERACTION_APPLICATION_COMMAND or (
            interaction.parent is not None and interaction.parent.message is None
        )
        message.type = MESSAGE_TYPE_CHAT_INPUT_COMMAND if from_command else MESSAGE_TYPE_DEFAULT
        return message

    def _callback_response(self, interaction: Interaction, response_type: int) -> JSON:
        info: JSON = {"id": str(interaction.id), "type": interaction.type}
        resource: JSON = {"type": response_type}
        original = interaction.original
        if original is not None:
            info["response_message_id"] = str(original.id)
            info["response_message_loading"] = original.is_loading
            info["response_message_ephemeral"] = original.is_ephemeral
            resource["message"] = payloads.message(self.core.world, original)
        return {"interaction": info, "resource": resource}

    # -- @original and followups (interaction webhooks) ------------------------------------

    def _by_token(self, request: web.Request) -> Interaction:
        token = request.match_info["token"]
        world = self.core.world
        found = next((i for i in world.interactions.values() if i.token == token), None)
        if found is None or request.match_info["webhook_id"] != str(world.application_id):
            raise unknown("Webhook", UNKNOWN_WEBHOOK)
        sent = found.dispatched_at or 0.0
        if world.now() - sent > self.core.settings.interaction_token_ttl:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return found

    async def original(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        interaction = self._by_token(request)
        message = interaction.original
        if message is None or message.deleted:
            raise unknown("Message", UNKNOWN_MESSAGE)
        return self._message_op(request, record, message, interaction)

    async def followup(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        interaction = self._by_token(request)
        if not interaction.responses:
            raise unknown("Webhook", UNKNOWN_WEBHOOK)
        body = record.json or {}
        self.core.validate_message_body(body, record.files)
        original = interaction.original
        if original is not None and original.is_loading and not original.deleted:
            # Discord: the first followup after a deferred response fills the "thinking" message.
            self.core.apply_edit(original, body, record.files)
            interaction.followups.append(original)
            self.core.echo_update(original)
            return web.json_response(payloads.message(self.core.world, original))
        message = self._response_message(interaction, body, record)
        interaction.followups.append(message)
        self.core.world.changed()
        self.core.echo_create(message)
        return web.json_response(payloads.message(self.core.world, message))

    async def followup_message(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        interaction = self._by_token(request)
        wanted = request.match_info["message_id"]
        candidates = [m for m in [interaction.original, *interaction.followups] if m is not None]
        message = next((m for m in candidates if str(m.id) == wanted and not m.deleted), None)
        if message is None:
            raise unknown("Message", UNKNOWN_MESSAGE)
        return self._message_op(request, record, message, interaction)

    def _message_op(
        self,
        request: web.Request,
        record: RecordedRequest,
        message: Message,
        interaction: Interaction,
    ) -> web.Response:
        if request.method == "DELETE":
            message.deleted = True
            self.core.world.changed()
            self.core.echo_delete(message)
            return web.Response(status=204)
        if request.method == "PATCH":
            self.core.apply_edit(message, record.json or {}, record.files)
            if message is interaction.original:
                interaction.original_edits.append(record.json or {})
            self.core.world.changed()
            self.core.echo_update(message)
        return web.json_response(payloads.message(self.core.world, message))

    # -- application commands --------------------------------------------------------------

    def _scope(self, request: web.Request) -> int | None:
        if request.match_info["application_id"] != str(self.core.world.application_id):
            raise DiscordError(403, 50001, "Missing Access")
        raw_guild = request.match_info.get("guild_id")
        if raw_guild is None:
            return None
        if int(raw_guild) not in self.core.world.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return int(raw_guild)

    def _in_scope(self, guild_id: int | None) -> list[ApplicationCommand]:
        return [c for c in self.core.world.commands.values() if c.guild_id == guild_id]

    async def list_commands(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        return web.json_response([payloads.command(c) for c in self._in_scope(scope)])

    @staticmethod
    def _validate_command(body: JSON, index: int | None = None) -> None:
        where = "name" if index is None else f"{index}.name"
        name = body.get("name")
        command_type = int(body.get("type") or 1)
        # Slash command names are lowercase words; user and message commands may hold spaces
        # and capitals ("Delete reply"), 1-32 characters.
        valid = isinstance(name, str) and (
            _COMMAND_NAME.match(name) if command_type == 1 else 1 <= len(name.strip()) <= 32
        )
        if not isinstance(name, str) or not valid:
            raise invalid_form(where, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if command_type == 1:
            if name != name.lower():
                raise invalid_form(
                    where, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                )
            description = body.get("description")
            if not isinstance(description, str) or not 1 <= len(description) <= 100:
                raise invalid_form(
                    "description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
        if len(body.get("options") or []) > 25:
            raise invalid_form("options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")

    def _upsert(self, scope: int | None, body: JSON) -> ApplicationCommand:
        world = self.core.world
        command_type = int(body.get("type") or 1)
        existing = next(
            (c for c in self._in_scope(scope) if c.name == body["name"] and c.type == command_type),
            None,
        )
        command = ApplicationCommand(
            id=existing.id if existing else world.snowflakes.next(),
            application_id=world.application_id,
            guild_id=scope,
            name=str(body["name"]),
            type=command_type,
            body=body,
            version=world.snowflakes.next(),
        )
        world.commands[command.id] = command
        return command

    async def overwrite_commands(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        scope = self._scope(request)
        bodies = record.json or []
        if len(bodies) > 100:
            raise invalid_form("_", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        keys = [(b.get("name"), int(b.get("type") or 1)) for b in bodies]
        if len(set(keys)) != len(keys):
            raise DiscordError(
                400,
                50035,
                "Invalid Form Body",
                {"_errors": [{"code": "APPLICATION_COMMANDS_DUPLICATE_NAME"}]},
            )
        for index, body in enumerate(bodies):
            self._validate_command(body, index)
        kept = [self._upsert(scope, body) for body in bodies]
        kept_ids = {c.id for c in kept}
        for command in self._in_scope(scope):
            if command.id not in kept_ids:
                del self.core.world.commands[command.id]
        self.core.world.changed()
        return web.json_response([payloads.command(c) for c in kept])

    async def create_command(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        scope = self._scope(request)
        body = record.json or {}
        self._validate_command(body)
        command = self._upsert(scope, body)
        self.core.world.changed()
        return web.json_response(payloads.command(command), status=201)

    async def one_command(self, request: web.Request) -> web.Response:
        record: RecordedRequest = request[RECORD]
        scope = self._scope(request)
        command = self.core.world.commands.get(int(request.match_info["command_id"]))
        if command is None or command.guild_id != scope:
            raise unknown("application command", UNKNOWN_COMMAND)
        if request.method == "DELETE":
            del self.core.world.commands[command.id]
            self.core.world.changed()
            return web.Response(status=204)
        if request.method == "PATCH":
            command.body = {**command.body, **(record.json or {})}
            command.name = str(command.body.get("name", command.name))
            command.version = self.core.world.snowflakes.next()
            self.core.world.changed()
        return web.json_response(payloads.command(command))
