"""Modals, buttons, select menus, attachments and permissions, driven by the real hikari
client (its REST calls and its parsing of ModalInteraction / ComponentInteraction)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import hikari
import lightbulb
import pytest

from tests.emulator import DiscordEmulator, Interaction, buttons, make_gateway_bot, running_bot
from tests.emulator import components as emu_components
from tests.emulator.hikari_helpers import Events

pytestmark = pytest.mark.timeout(30)

EPHEMERAL = hikari.MessageFlag.EPHEMERAL


@pytest.fixture
async def bot(discord_emulator: DiscordEmulator) -> AsyncIterator[hikari.GatewayBot]:
    gateway_bot = make_gateway_bot(discord_emulator)
    async with running_bot(gateway_bot, discord_emulator):
        yield gateway_bot


@pytest.fixture
def interactions(bot: hikari.GatewayBot) -> Events[hikari.InteractionCreateEvent]:
    return Events(bot, hikari.InteractionCreateEvent)


async def _next(events: Events[hikari.InteractionCreateEvent], kind: type[Any]) -> Any:
    received = (await events.next()).interaction
    assert isinstance(received, kind), received
    return received


def _name_modal(rest: hikari.api.RESTClient) -> list[hikari.api.ModalActionRowBuilder]:
    return [
        rest.build_modal_action_row().add_text_input("name", "Name", value="Nova", max_length=20),
        rest.build_modal_action_row().add_text_input(
            "bio", "Biography", style=hikari.TextInputStyle.PARAGRAPH, required=False
        ),
    ]


def _values(modal: hikari.ModalInteraction) -> dict[str, str]:
    return {
        component.custom_id: component.value
        for row in modal.components
        for component in row.components
        if isinstance(component, hikari.TextInputComponent)
    }


def _error_code(error: hikari.BadRequestError, path: str) -> str:
    """The first error code at ``path`` (dotted) in a 50035 error tree."""
    tree: Any = error.errors
    for part in path.split("."):
        tree = tree[part]
    return str(tree["_errors"][0]["code"])


# -- modals -------------------------------------------------------------------------------------


async def test_modal_from_a_slash_command_is_shown_submitted_and_parsed(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    interactions: Events[hikari.InteractionCreateEvent],
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    interaction = await emu.slash_command(emu.channel, alice, "character create")
    command = await _next(interactions, hikari.CommandInteraction)
    await command.create_modal_response(
        "New character", "character:create", components=_name_modal(bot.rest)
    )

    modal = await interaction.wait_for_modal()
    assert (modal.custom_id, modal.title) == ("character:create", "New character")
    assert modal.fields["name"] == {
        "value": "Nova",
        "label": "Name",
        "style": 1,
        "min_length": 0,
        "max_length": 20,
        "required": True,
        "placeholder": None,
    }
    assert modal.fields["bio"]["style"] == 2
    assert modal.fields["bio"]["required"] is False
    assert interaction.original is None  # a modal posts nothing

    submit = await emu.submit_modal(interaction, {"bio": "Likes stars.\nAnd tea."})
    assert submit.type == 5
    parsed = await _next(interactions, hikari.ModalInteraction)
    assert parsed.custom_id == "character:create"
    assert parsed.user.id == alice.id
    assert parsed.member is not None
    assert parsed.message is None
    assert _values(parsed) == {"name": "Nova", "bio": "Likes stars.\nAnd tea."}
    await parsed.create_initial_response(
        hikari.ResponseType.MESSAGE_CREATE, "Created Nova", flags=EPHEMERAL
    )
    assert await submit.wait_for_content() == "Created Nova"
    assert submit.original is not None
    assert submit.original.is_ephemeral
    assert submit.parent is interaction


async def test_lightbulb_respond_with_modal(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    bot = make_gateway_bot(emu)
    client = lightbulb.client_from_app(bot, default_enabled_guilds=[emu.guild.id])
    started = asyncio.Event()

    async def start_client(_: hikari.StartedEvent) -> None:
        await client.start()
        started.set()

    bot.subscribe(hikari.StartedEvent, start_client)
    submitted: asyncio.Queue[hikari.ModalInteraction] = asyncio.Queue()

    async def on_modal(event: hikari.InteractionCreateEvent) -> None:
        if isinstance(event.interaction, hikari.ModalInteraction):
            await submitted.put(event.interaction)
            await event.interaction.create_initial_response(
                hikari.ResponseType.DEFERRED_MESSAGE_CREATE, flags=EPHEMERAL
            )
            await event.interaction.edit_initial_response("saved")

    bot.subscribe(hikari.InteractionCreateEvent, on_modal)

    @client.register()
    class Edit(lightbulb.SlashCommand, name="edit", description="Edit a character"):
        avatar = lightbulb.attachment("avatar", "a picture", default=None)

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            row = ctx.client.app.rest.build_modal_action_row().add_text_input(
                "prompt", "System prompt", style=hikari.TextInputStyle.PARAGRAPH, max_length=4000
            )
            await ctx.respond_with_modal("Edit Nova", "character:edit:nova", components=[row])

    @client.register()
    class Import(lightbulb.SlashCommand, name="import", description="Import a character"):
        file = lightbulb.attachment("file", "a TOML file")

        @lightbulb.invoke
        async def invoke(self, ctx: lightbulb.Context) -> None:
            assert isinstance(self.file, hikari.Attachment)
            await ctx.defer(ephemeral=True)
            data = await self.file.read()
            await ctx.edit_response(-1, f"{self.file.filename}: {len(data)} bytes")

    async with running_bot(bot, emu):
        await asyncio.wait_for(started.wait(), 5)
        upload = emu.upload("nova.toml", b"name = 1\n", "application/toml")
        imported = await emu.slash_command(
            emu.channel, emu.add_user("carol"), "import", {"file": upload}
        )
        assert await imported.wait_for_content() == "nova.toml: 9 bytes"
        interaction = await emu.slash_command(emu.channel, emu.add_user("bob"), "edit")
        modal = await interaction.wait_for_modal()
        assert modal.fields["prompt"]["max_length"] == 4000
        submit = await emu.submit_modal(interaction, {"prompt": "You are Nova."})
        parsed = await asyncio.wait_for(submitted.get(), 5)
        assert _values(parsed) == {"prompt": "You are Nova."}
        assert await submit.wait_for_content() == "saved"


async def test_invalid_modals_are_refused_like_discord(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    interactions: Events[hikari.InteractionCreateEvent],
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    interaction = await emu.slash_command(emu.channel, alice, "character create")
    command = await _next(interactions, hikari.CommandInteraction)
    too_long_label = bot.rest.build_modal_action_row().add_text_input("name", "L" * 46)
    with pytest.raises(hikari.BadRequestError) as caught:
        await command.create_modal_response("ok", "m", components=[too_long_label])
    assert caught.value.code == 50035
    label_path = "data.components.0.components.0.label"
    assert _error_code(caught.value, label_path) == "BASE_TYPE_BAD_LENGTH"
    assert interaction.rejected == [(400, 50035)]
    assert interaction.modal is None
    with pytest.raises(hikari.BadRequestError):
        await command.create_modal_response("T" * 46, "m", components=_name_modal(bot.rest))
    # Nothing was accepted, so a valid modal still works as the first response.
    await command.create_modal_response("ok", "m", components=_name_modal(bot.rest))
    assert (await interaction.wait_for_modal()).title == "ok"
    with pytest.raises(AssertionError, match="no modal"):
        await emu.submit_modal(await _other_command(emu, alice), {})


async def _other_command(emu: DiscordEmulator, user: Any) -> Interaction:
    return await emu.slash_command(emu.channel, user, "noop")


INPUT = "components.0.components.0."


@pytest.mark.parametrize(
    ("data", "where", "code"),
    [
        ({"title": "x" * 46}, "title", "BASE_TYPE_BAD_LENGTH"),
        ({"custom_id": "c" * 101}, "custom_id", "BASE_TYPE_BAD_LENGTH"),
        ({"components": []}, "components", "BASE_TYPE_BAD_LENGTH"),
        ({"rows": 6}, "components", "BASE_TYPE_BAD_LENGTH"),
        (
            {"input": {"max_length": 4001}},
            INPUT + "max_length",
            "NUMBER_TYPE_MAX",
        ),
        ({"input": {"style": 3}}, INPUT + "style", "BASE_TYPE_CHOICES"),
        (
            {"input": {"value": "abcdef", "max_length": 5}},
            INPUT + "value",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            {"input": {"custom_id": None}},
            INPUT + "custom_id",
            "BASE_TYPE_REQUIRED",
        ),
        ({"two_inputs": True}, "components.0.components", "BASE_TYPE_BAD_LENGTH"),
        (
            {"duplicate": True},
            "components.1.components.0.custom_id",
            "COMPONENT_CUSTOM_ID_DUPLICATED",
        ),
        ({"button": True}, INPUT + "type", "UNION_TYPE_CHOICES"),
    ],
)
def test_modal_validation_rules(data: dict[str, Any], where: str, code: str) -> None:
    text_input: dict[str, Any] = {
        "type": 4,
        "custom_id": "name",
        "label": "Name",
        "style": 1,
        **data.get("input", {}),
    }
    if text_input.get("custom_id") is None:
        del text_input["custom_id"]
    row: dict[str, Any] = {"type": 1, "components": [text_input]}
    if data.get("two_inputs"):
        row["components"] = [text_input, {**text_input, "custom_id": "other"}]
    if data.get("button"):
        row["components"] = [{"type": 2, "style": 1, "custom_id": "b", "label": "b"}]
    rows = [row] * int(data.get("rows", 1))
    if data.get("duplicate"):
        rows = [row, row]
    body: dict[str, Any] = {
        "title": data.get("title", "Title"),
        "custom_id": data.get("custom_id", "modal"),
        "components": data.get("components", rows),
    }
    with pytest.raises(emu_components.FormError) as caught:
        emu_components.parse_modal(body)
    assert (caught.value.path, caught.value.code) == (where.split("."), code)


def test_modal_with_label_components_is_accepted() -> None:
    modal = emu_components.parse_modal(
        {
            "title": "New",
            "custom_id": "m",
            "components": [
                {"type": 10, "content": "Fill this in"},
                {
                    "type": 18,
                    "label": "Name",
                    "description": "What to call it",
                    "component": {"type": 4, "custom_id": "name", "style": 1, "max_length": 5},
                },
            ],
        }
    )
    assert modal.fields["name"]["label"] == "Name"
    assert [c["id"] for c in emu_components.walk(modal.components)] == [1, 2, 3]
    submitted = emu_components.submitted_components(modal, {"name": "Nova"})
    assert submitted[1] == {
        "type": 18,
        "id": 2,
        "component": {"type": 4, "id": 3, "custom_id": "name", "value": "Nova"},
    }


async def test_modal_is_only_a_first_response_to_commands_and_components(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    interactions: Events[hikari.InteractionCreateEvent],
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    interaction = await emu.slash_command(emu.channel, alice, "character create")
    command = await _next(interactions, hikari.CommandInteraction)
    await command.create_modal_response("ok", "m", components=_name_modal(bot.rest))
    await interaction.wait_for_modal()
    submit = await emu.submit_modal(interaction, {})
    parsed = await _next(interactions, hikari.ModalInteraction)
    with pytest.raises(hikari.BadRequestError) as caught:  # no modal in answer to a modal
        await bot.rest.create_modal_response(
            parsed.id, parsed.token, title="again", custom_id="m2", components=_name_modal(bot.rest)
        )
    assert _error_code(caught.value, "type") == "INTERACTION_RESPONSE_TYPE_INVALID"
    with pytest.raises(hikari.BadRequestError):  # no update: it did not come from a message
        await parsed.create_initial_response(hikari.ResponseType.MESSAGE_UPDATE, "x")
    await parsed.create_initial_response(hikari.ResponseType.MESSAGE_CREATE, "fine")
    assert await submit.wait_for_content() == "fine"
    with pytest.raises(AssertionError, match="already submitted"):
        await emu.submit_modal(interaction, {})

    suggest = await emu.autocomplete(
        emu.channel, alice, "chat", {"personality": "no"}, focused="personality"
    )
    auto = await _next(interactions, hikari.AutocompleteInteraction)
    with pytest.raises(hikari.BadRequestError):
        await bot.rest.create_modal_response(
            auto.id, auto.token, title="t", custom_id="m", components=_name_modal(bot.rest)
        )
    assert suggest.rejected == [(400, 50035)]

    deferred = await emu.slash_command(emu.channel, alice, "character create")
    late = await _next(interactions, hikari.CommandInteraction)
    await late.create_initial_response(hikari.ResponseType.DEFERRED_MESSAGE_CREATE)
    with pytest.raises(hikari.BadRequestError) as caught:
        await late.create_modal_response("ok", "m", components=_name_modal(bot.rest))
    assert caught.value.code == 40060
    assert deferred.modal is None


async def test_submit_modal_refuses_what_a_client_cannot_send(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    interactions: Events[hikari.InteractionCreateEvent],
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    interaction = await emu.slash_command(emu.channel, alice, "character create")
    command = await _next(interactions, hikari.CommandInteraction)
    rows = [
        bot.rest.build_modal_action_row().add_text_input(
            "name", "Name", min_length=2, max_length=5
        ),
        bot.rest.build_modal_action_row().add_text_input("note", "Note", required=False),
    ]
    await command.create_modal_response("New", "m", components=rows)
    await interaction.wait_for_modal()
    with pytest.raises(AssertionError, match="at most 5"):
        await emu.submit_modal(interaction, {"name": "abcdef"})
    with pytest.raises(AssertionError, match="at least 2"):
        await emu.submit_modal(interaction, {"name": "a"})
    with pytest.raises(AssertionError, match="required"):
        await emu.submit_modal(interaction, {"note": "x"})
    with pytest.raises(AssertionError, match="no field"):
        await emu.submit_modal(interaction, {"name": "Nova", "age": "3"})
    with pytest.raises(AssertionError, match="only alice"):
        await emu.submit_modal(interaction, {"name": "Nova"}, emu.add_user("mallory"))
    await emu.submit_modal(interaction, {"name": "Nova"})
    parsed = await _next(interactions, hikari.ModalInteraction)
    assert _values(parsed) == {"name": "Nova", "note": ""}


# -- buttons ------------------------------------------------------------------------------------


def _confirm_row(rest: hikari.api.RESTClient) -> hikari.api.MessageActionRowBuilder:
    return (
        rest.build_message_action_row()
        .add_interactive_button(hikari.ButtonStyle.DANGER, "delete:yes", label="Delete")
        .add_interactive_button(hikari.ButtonStyle.SECONDARY, "delete:no", label="Keep")
        .add_interactive_button(
            hikari.ButtonStyle.PRIMARY, "delete:never", label="X", is_disabled=True
        )
        .add_link_button("https://example.com/help", label="Help")
    )


async def test_button_click_and_update_message(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    interactions: Events[hikari.InteractionCreateEvent],
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    sent = await bot.rest.create_message(
        emu.channel.id, "Delete Nova?", components=[_confirm_row(bot.rest)]
    )
    (row,) = sent.components
    assert isinstance(row, hikari.ActionRowComponent)
    assert [b.custom_id for b in row.components if isinstance(b, hikari.ButtonComponent)] == [
        "delete:yes",
        "delete:no",
        "delete:never",
        None,
    ]
    (message,) = emu.bot_messages(emu.channel)
    assert buttons(message)[0] == {
        "custom_id": "delete:yes",
        "label": "Delete",
        "style": 4,
        "disabled": False,
        "url": None,
        "emoji": None,
    }
    assert [b["disabled"] for b in buttons(message)] == [False, False, True, False]
    with pytest.raises(AssertionError, match="disabled"):
        await emu.click(message, "delete:never", alice)
    with pytest.raises(AssertionError, match="no component"):
        await emu.click(message, "delete:maybe", alice)

    click = await emu.click(message, "delete:yes", alice)
    parsed = await _next(interactions, hikari.ComponentInteraction)
    assert (parsed.custom_id, parsed.component_type) == ("delete:yes", hikari.ComponentType.BUTTON)
    assert parsed.message.id == message.id
    assert parsed.message.content == "Delete Nova?"
    assert parsed.user.id == alice.id
    await parsed.create_initial_response(
        hikari.ResponseType.MESSAGE_UPDATE, "Deleted.", components=[]
    )
    updated = await click.wait_for_update()
    assert updated is message
    assert message.content == "Deleted."
    assert message.components == []
    assert message.edits[-1]["content"] == "Deleted."
    assert click.original is message
    assert len(emu.bot_messages(emu.channel)) == 1  # no new message
    with pytest.raises(AssertionError, match="no component"):
        await emu.click(message, "delete:no", alice)


async def test_deferred_update_then_edit_and_a_reply_to_a_click(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    interactions: Events[hikari.InteractionCreateEvent],
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    await bot.rest.create_message(
        emu.channel.id, "Delete Nova?", components=[_confirm_row(bot.rest)]
    )
    (message,) = emu.bot_messages(emu.channel)

    click = await emu.click(message, "delete:no", alice)
    parsed = await _next(interactions, hikari.ComponentInteraction)
    await parsed.create_initial_response(hikari.ResponseType.DEFERRED_MESSAGE_UPDATE)
    assert click.response_type == 6
    await parsed.edit_initial_response("Kept.", components=[])
    assert (await click.wait_for_update()).content == "Kept."
    assert message.components == []

    await bot.rest.edit_message(emu.channel.id, message.id, components=[_confirm_row(bot.rest)])
    assert len(buttons(message)) == 4
    reply = await emu.click(message, "delete:yes", alice)
    parsed = await _next(interactions, hikari.ComponentInteraction)
    await parsed.create_initial_response(
        hikari.ResponseType.MESSAGE_CREATE, "Sure?", flags=EPHEMERAL
    )
    assert await reply.wait_for_content() == "Sure?"
    assert reply.original is not None and reply.original is not message
    assert reply.original.is_ephemeral
    assert message.content == "Kept."


async def test_modal_from_a_button_then_update_the_message(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    interactions: Events[hikari.InteractionCreateEvent],
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    row = bot.rest.build_message_action_row().add_interactive_button(
        hikari.ButtonStyle.PRIMARY, "rename", label="Rename"
    )
    await bot.rest.create_message(emu.channel.id, "Nova", components=[row])
    (message,) = emu.bot_messages(emu.channel)
    click = await emu.click(message, "rename", alice)
    parsed = await _next(interactions, hikari.ComponentInteraction)
    await parsed.create_modal_response("Rename", "rename:modal", components=_name_modal(bot.rest))
    await click.wait_for_modal()
    submit = await emu.submit_modal(click, {"name": "Nova II"})
    submitted = await _next(interactions, hikari.ModalInteraction)
    assert submitted.message is not None
    assert submitted.message.id == message.id
    await submitted.create_initial_response(
        hikari.ResponseType.MESSAGE_UPDATE, _values(submitted)["name"]
    )
    assert (await submit.wait_for_update()).content == "Nova II"


async def test_select_menu(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    interactions: Events[hikari.InteractionCreateEvent],
) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    row = bot.rest.build_message_action_row()
    menu = row.add_text_menu("preset", min_values=1, max_values=1)
    menu.add_option("Creative", "creative").add_option("Precise", "precise")
    await bot.rest.create_message(emu.channel.id, "Pick a preset", components=[row])
    (message,) = emu.bot_messages(emu.channel)
    with pytest.raises(AssertionError, match="offers"):
        await emu.select(message, "preset", ["wild"], alice)
    await emu.select(message, "preset", ["precise"], alice)
    parsed = await _next(interactions, hikari.ComponentInteraction)
    assert parsed.values == ["precise"]
    assert parsed.component_type == hikari.ComponentType.TEXT_SELECT_MENU


async def test_invalid_message_components_are_refused(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    rest = bot.rest
    long_label = rest.build_message_action_row().add_interactive_button(
        hikari.ButtonStyle.PRIMARY, "a", label="x" * 81
    )
    duplicated = (
        rest.build_message_action_row()
        .add_interactive_button(hikari.ButtonStyle.PRIMARY, "same", label="1")
        .add_interactive_button(hikari.ButtonStyle.PRIMARY, "same", label="2")
    )
    too_wide = rest.build_message_action_row()
    for index in range(6):
        too_wide.add_interactive_button(hikari.ButtonStyle.PRIMARY, f"b{index}", label="b")
    rows = [
        rest.build_message_action_row().add_interactive_button(
            hikari.ButtonStyle.PRIMARY, f"r{i}", label="r"
        )
        for i in range(6)
    ]
    cases: list[tuple[list[Any], str, str]] = [
        ([long_label], INPUT + "label", "BASE_TYPE_MAX_LENGTH"),
        ([duplicated], "components.0.components.1.custom_id", "COMPONENT_CUSTOM_ID_DUPLICATED"),
        ([too_wide], "components.0.components", "BASE_TYPE_BAD_LENGTH"),
        (rows, "components", "BASE_TYPE_MAX_LENGTH"),
    ]
    for built, where, code in cases:
        with pytest.raises(hikari.BadRequestError) as caught:
            await rest.create_message(emu.channel.id, "x", components=built)
        assert _error_code(caught.value, where) == code
    assert emu.bot_messages(emu.channel) == []
    with pytest.raises(emu_components.FormError, match="url"):
        emu_components.validate_message_components(
            [{"type": 1, "components": [{"type": 2, "style": 5, "label": "go"}]}], 0
        )
    with pytest.raises(emu_components.FormError, match="custom_id"):
        emu_components.validate_message_components(
            [{"type": 1, "components": [{"type": 2, "style": 1, "label": "go"}]}], 0
        )


async def test_webhook_messages_keep_components(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    webhook = await bot.rest.create_webhook(emu.channel.id, "Nova")
    assert webhook.token is not None
    sent = await bot.rest.execute_webhook(
        webhook.id, webhook.token, "hi", components=[_confirm_row(bot.rest)]
    )
    (message,) = emu.bot_messages(emu.channel)
    assert len(buttons(message)) == 4
    assert len(sent.components) == 1


# -- attachments ----------------------------------------------------------------------------------


async def test_attachment_option_is_parsed_by_hikari_and_fetched_over_http(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    interactions: Events[hikari.InteractionCreateEvent],
) -> None:
    emu = discord_emulator
    upload = emu.upload("nova.toml", b'name = "Nova"\n', "application/toml")
    assert upload.url.startswith(f"http://{emu.cdn_host}/ephemeral-attachments/")
    assert emu.attachment_url(upload) == upload.url
    interaction = await emu.slash_command(
        emu.channel, emu.add_user("alice"), "character import", {"file": upload}
    )
    option = interaction.payload["data"]["options"][0]["options"][0]
    assert option == {"name": "file", "type": 11, "value": str(upload.id)}
    parsed = await _next(interactions, hikari.CommandInteraction)
    assert parsed.resolved is not None
    attachment = parsed.resolved.attachments[hikari.Snowflake(upload.id)]
    assert isinstance(attachment, hikari.Attachment)
    assert (attachment.filename, attachment.size) == ("nova.toml", 14)
    assert attachment.media_type == "application/toml"
    assert attachment.is_ephemeral
    assert await attachment.read() == b'name = "Nova"\n'
    assert emu.cdn_fetches[-1].startswith(
        f"/ephemeral-attachments/{emu.application_id}/{upload.id}/"
    )

    liar = emu.upload("cat.png", b"#!/bin/sh\n", content_type=None, size=12)
    assert "content_type" not in liar.payload(ephemeral=True)
    assert liar.payload()["size"] == 12


async def test_redirects_for_hostile_urls(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    target = "http://169.254.169.254/latest/meta-data"
    redirecting = emu.serve_redirect(target)
    sneaky = emu.upload("a.png", b"png", "image/png", redirect_to=target)
    async with aiohttp.ClientSession() as session:
        for url in (redirecting, sneaky.url):
            async with session.get(url, allow_redirects=False) as response:
                assert response.status == 302
                assert response.headers["Location"] == target
        async with session.get(f"http://{emu.cdn_host}/attachments/1/999/x.png") as response:
            assert response.status == 404


async def test_bot_uploads_are_served_and_readable(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    sent = await bot.rest.create_message(
        emu.channel.id, "export", attachment=hikari.Bytes(b"[nova]\n", "nova.toml")
    )
    (message,) = emu.bot_messages(emu.channel)
    (stored,) = message.attachments
    assert stored["url"].startswith(f"http://{emu.cdn_host}/attachments/{emu.channel.id}/")
    assert emu.attachment_bytes(stored) == b"[nova]\n"
    assert emu.attachment_bytes(sent.attachments[0]) == b"[nova]\n"
    assert await sent.attachments[0].read() == b"[nova]\n"
    # An edit that keeps the attachment (by id) and adds another.
    await bot.rest.edit_message(
        emu.channel.id,
        sent.id,
        "export v2",
        attachments=[sent.attachments[0], hikari.Bytes(b"more", "more.txt")],
    )
    assert [a["filename"] for a in message.attachments] == ["nova.toml", "more.txt"]
    assert emu.attachment_bytes(message.attachments[1]) == b"more"


async def test_user_message_with_attachments(
    discord_emulator: DiscordEmulator, bot: hikari.GatewayBot
) -> None:
    emu = discord_emulator
    events = Events(bot, hikari.GuildMessageCreateEvent)
    voice = emu.upload("voice.ogg", b"OggS....", "audio/ogg")
    await emu.post_message(emu.channel, emu.add_user("alice"), "", attachments=[voice])
    event = await events.next()
    (attachment,) = event.message.attachments
    assert attachment.media_type == "audio/ogg"
    assert not attachment.is_ephemeral
    assert await attachment.read() == b"OggS...."


# -- permissions and DMs --------------------------------------------------------------------------


async def test_member_moderator_and_owner_permissions(
    discord_emulator: DiscordEmulator,
    bot: hikari.GatewayBot,
    interactions: Events[hikari.InteractionCreateEvent],
) -> None:
    emu = discord_emulator
    seen: dict[str, hikari.Permissions] = {}
    people = {
        "member": emu.add_user("member"),
        "moderator": emu.add_moderator("mod"),
        "owner": emu.owner,
    }
    for who, user in people.items():
        await emu.slash_command(emu.channel, user, "channel activate")
        parsed = await _next(interactions, hikari.CommandInteraction)
        assert parsed.member is not None
        seen[who] = parsed.member.permissions
    assert not seen["member"] & hikari.Permissions.MANAGE_MESSAGES
    assert seen["moderator"] & hikari.Permissions.MANAGE_MESSAGES
    assert seen["moderator"] & hikari.Permissions.MANAGE_CHANNELS
    assert not seen["moderator"] & hikari.Permissions.ADMINISTRATOR
    assert seen["owner"] == hikari.Permissions.all_permissions()


async def test_dms_to_a_user(discord_emulator: DiscordEmulator, bot: hikari.GatewayBot) -> None:
    emu = discord_emulator
    alice = emu.add_user("alice")
    assert emu.dms_to(alice) == []
    channel = await bot.rest.create_dm_channel(alice.id)
    await bot.rest.create_message(channel.id, "your export is ready")
    (dm,) = await emu.wait_for_dms(alice)
    assert dm.content == "your export is ready"
    assert [m.content for m in emu.bot_messages(emu.world.dm_channel(alice))] == [dm.content]
