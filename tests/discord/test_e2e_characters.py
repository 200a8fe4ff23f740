"""End to end through the Discord emulator: /character create, edit, browse, delete, avatar,
alias, visibility, export/import, and hostile input. Few bot starts: each test walks a flow."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.emulator import DiscordEmulator
from tests.emulator.components import buttons
from tests.fixtures.fake_llm import FakeLLM
from tzurot.app import Application
from tzurot.personalities.service import CharacterService

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def webhook_replies(emu: DiscordEmulator, count: int, timeout: float = 20) -> list[Any]:
    """The characters' (webhook) messages in the main channel once there are `count`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = [m for m in emu.bot_messages(emu.channel) if m.webhook_id is not None]
        if len(found) >= count:
            return found
        assert loop.time() < deadline, f"{count} webhook replies; have {len(found)}"
        await asyncio.sleep(0.05)


def service_of(app: Application) -> CharacterService:
    assert app.api is not None and app.api._characters is not None
    return app.api._characters


async def test_create_mention_edit_browse_delete(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    app = await start_bot()
    alice, bob = emu.add_user("alice"), emu.add_user("bob")

    # create: a modal with the personality's field names as custom ids
    opened = await emu.slash_command(emu.channel, alice, "character create", {"name": "Nova"})
    modal = await opened.wait_for_modal()
    assert set(modal.fields) == {
        "display_name", "system_prompt", "character_info", "personality_traits", "tone",
    }  # fmt: skip
    assert modal.fields["display_name"]["value"] == "Nova"
    assert modal.fields["system_prompt"]["max_length"] == 4000
    done = await emu.submit_modal(
        opened, {"system_prompt": "You are Nova, a navigator.", "tone": "crisp"}
    )
    assert "Created **Nova**" in await done.wait_for_content(timeout=10)
    assert done.original is not None and done.original.is_ephemeral

    # a mention works at once
    await emu.post_message(emu.channel, alice, "@Nova where are we?")
    (reply,) = await webhook_replies(emu, 1)
    assert reply.username == "Nova"
    prompt = fake_llm.chat_calls[-1].json
    assert prompt is not None and "You are Nova, a navigator." in str(prompt["messages"])

    # edit each section, pre-filled
    for section, values in [
        ("identity", {"character_info": "Charts the stars."}),
        ("behaviour", {"temperature": "1.1", "max_tokens": "900", "error_message": "Oops."}),
        ("card", {"age": "31", "likes": "maps"}),
    ]:
        opened = await emu.slash_command(
            emu.channel, alice, "character edit", {"personality": "nova", "section": section}
        )
        modal = await opened.wait_for_modal()
        if section == "identity":
            assert modal.fields["tone"]["value"] == "crisp"
        saved = await emu.submit_modal(opened, values)
        assert "Saved **Nova**" in await saved.wait_for_content(timeout=10)
    # the card's second page through the button on the answer
    assert saved.original is not None
    page = await emu.click(saved.original, "character:page:nova:card2", alice)
    modal = await page.wait_for_modal()
    assert set(modal.fields) == {"conversational_examples"}
    saved = await emu.submit_modal(page, {"conversational_examples": "Nova: Bearing 042."})
    await saved.wait_for_response(timeout=10)

    nova = await service_of(app).store.get("nova")
    assert nova is not None
    assert (nova.card.character_info, nova.card.age, nova.card.likes) == (
        "Charts the stars.", "31", "maps",
    )  # fmt: skip
    assert nova.card.conversational_examples == "Nova: Bearing 042."
    assert (nova.temperature, nova.max_tokens, nova.error_message) == (1.1, 900, "Oops.")
    assert nova.card.tone == "crisp"  # untouched by the other sections

    # a bad number: specific, ephemeral, nothing saved
    opened = await emu.slash_command(
        emu.channel, alice, "character edit", {"personality": "nova", "section": "behaviour"}
    )
    await opened.wait_for_modal()
    bad = await emu.submit_modal(opened, {"temperature": "hot"})
    assert "must be a number, not “hot”" in await bad.wait_for_content(timeout=10)
    assert await service_of(app).store.get("nova") == nova

    # bob may not edit or delete it
    refused = await emu.slash_command(emu.channel, bob, "character edit", {"personality": "nova"})
    assert "Not allowed" in await refused.wait_for_content(timeout=10)
    refused = await emu.slash_command(emu.channel, bob, "character delete", {"personality": "nova"})
    assert "Not allowed" in await refused.wait_for_content(timeout=10)

    # browse, paginated with buttons
    service = service_of(app)
    actor = service.discord_actor(str(bob.id))  # bob's public ones come after alice's own
    for i in range(12):
        await service.create({"name": f"Extra {i:02d}", "system_prompt": "x"}, actor)
    browsed = await emu.slash_command(emu.channel, alice, "character browse")
    first = await browsed.wait_for_content(timeout=10)
    assert "Page 1 of 2" in first and "Nova" in first  # alice's own first
    assert browsed.original is not None
    assert [b["custom_id"] for b in buttons(browsed.original)] == ["character:browse:1"]
    turned = await emu.click(browsed.original, "character:browse:1", alice)
    updated = await turned.wait_for_update(timeout=10)
    assert "Page 2 of 2" in updated.content
    assert [b["custom_id"] for b in buttons(updated)] == ["character:browse:0"]

    # delete, confirmed by a danger-style button
    asked = await emu.slash_command(emu.channel, alice, "character delete", {"personality": "nova"})
    assert "for good" in await asked.wait_for_content(timeout=10)
    assert asked.original is not None
    (danger,) = [b for b in buttons(asked.original) if b["custom_id"] == "character:delete:nova"]
    assert danger["style"] == 4
    confirmed = await emu.click(asked.original, "character:delete:nova", alice)
    assert "Deleted **Nova**" in (await confirmed.wait_for_update(timeout=10)).content
    assert await service.store.get("nova") is None

    # a confirmation whose character went meanwhile: an ephemeral answer, not silence
    asked = await emu.slash_command(
        emu.channel, bob, "character delete", {"personality": "extra-00"}
    )
    await asked.wait_for_content(timeout=10)
    await service.delete("extra-00", actor)
    assert asked.original is not None
    stale = await emu.click(asked.original, "character:delete:extra-00", bob)
    body = await stale.wait_for_response(timeout=10)
    assert "no longer exists" in str(body) and body["data"]["flags"] & 64


async def test_private_alias_avatars_export_import(
    discord_emulator: DiscordEmulator, start_bot: Any, fake_llm: FakeLLM
) -> None:
    emu = discord_emulator
    base = "https://bot.example.org"
    app = await start_bot(PUBLIC_BASE_URL=base, ATTACHMENT_HOSTS=emu.cdn_host)
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    service = service_of(app)
    await service.create(
        {"name": "Vega", "system_prompt": "You are Vega."}, service.discord_actor(str(alice.id))
    )

    done = await emu.slash_command(
        emu.channel, alice, "character visibility", {"personality": "vega", "visibility": "private"}
    )
    assert "now private" in await done.wait_for_content(timeout=10)
    done = await emu.slash_command(
        emu.channel, alice, "character alias add", {"personality": "vega", "alias": "Star"}
    )
    assert "Star" in await done.wait_for_content(timeout=10)

    # bob: the mention does nothing, autocomplete hides it, /chat does not know it
    await emu.post_message(emu.channel, bob, "@Star hello?")
    await asyncio.sleep(1.0)
    assert [m for m in emu.bot_messages(emu.channel) if m.webhook_id] == []
    hidden = await emu.autocomplete(
        emu.channel, bob, "chat", {"personality": "ve", "message": ""}, focused="personality"
    )
    await hidden.wait_for_response()
    assert "Vega" not in [c["name"] for c in hidden.choices or []]
    shown = await emu.autocomplete(
        emu.channel, alice, "chat", {"personality": "ve", "message": ""}, focused="personality"
    )
    await shown.wait_for_response()
    assert "Vega" in [c["name"] for c in shown.choices or []]
    chat = await emu.slash_command(
        emu.channel, bob, "chat", {"personality": "vega", "message": "x"}
    )
    assert "don't know" in await chat.wait_for_content(timeout=10)

    # the owner's mention works
    await emu.post_message(emu.channel, alice, "@Star hello")
    (reply,) = await webhook_replies(emu, 1)
    assert reply.username == "Vega"

    # avatar by URL, then by upload (served by the API, used by the webhook)
    done = await emu.slash_command(
        emu.channel, alice, "character avatar",
        {"personality": "vega", "url": "https://img.example/vega.png"},
    )  # fmt: skip
    assert "new avatar" in await done.wait_for_content(timeout=10)
    fake = emu.upload("vega.png", b"<html><script>alert(1)</script></html>", "image/png")
    done = await emu.slash_command(
        emu.channel, alice, "character avatar", {"personality": "vega", "image": fake}
    )
    assert "not a PNG" in await done.wait_for_content(timeout=10)
    image = emu.upload("vega.png", PNG, "image/png")
    done = await emu.slash_command(
        emu.channel, alice, "character avatar", {"personality": "vega", "image": image}
    )
    assert f"{base}/avatars/vega?v=" in await done.wait_for_content(timeout=10)
    vega = await service.store.get("vega")
    assert vega is not None and vega.avatar_url is not None
    assert app.api is not None
    async with aiohttp.ClientSession() as session:
        local = vega.avatar_url.replace(base, f"http://127.0.0.1:{app.api.port}")
        async with session.get(local) as response:
            assert response.status == 200 and await response.read() == PNG
            assert response.headers["Content-Type"] == "image/png"
    await emu.post_message(emu.channel, alice, "@Vega again")
    messages = await webhook_replies(emu, 2)
    assert messages[-1].avatar_url == vega.avatar_url

    # export -> delete -> import: unchanged
    exported = await emu.slash_command(
        emu.channel, alice, "character export", {"personality": "vega"}
    )
    await exported.wait_for_content(timeout=10)
    assert exported.original is not None
    (attachment,) = exported.original.attachments
    data = emu.attachment_bytes(attachment)
    assert data.startswith(b'name = "Vega"')
    await service.delete("vega", service.discord_actor(str(alice.id)))
    upload = emu.upload("vega.toml", data, "application/toml")
    imported = await emu.slash_command(emu.channel, alice, "character import", {"file": upload})
    assert "Imported **Vega**" in await imported.wait_for_content(timeout=10)
    assert await service.store.get("vega") == vega
    # again: a clash naming it
    again = await emu.slash_command(emu.channel, bob, "character import", {"file": upload})
    assert "“vega” already exists" in await again.wait_for_content(timeout=10)


async def test_hostile_input_gets_specific_ephemeral_errors(
    discord_emulator: DiscordEmulator, start_bot: Any
) -> None:
    emu = discord_emulator
    app = await start_bot(ATTACHMENT_HOSTS=emu.cdn_host)
    alice = emu.add_user("alice")
    for name, expected in [
        ("@everyone", "'@'"), ("Discord Helper", "discord"), ("clyde", "clyde"),
        ("<#123456>", "Discord mentions"), ("a\u200bb", "invisible"), ("Lilith", "taken"),
    ]:  # fmt: skip
        refused = await emu.slash_command(emu.channel, alice, "character create", {"name": name})
        text = await refused.wait_for_content(timeout=10)
        assert expected in text, (name, text)
        assert refused.modal is None and refused.original is not None
        assert refused.original.is_ephemeral

    for data, expected in [
        (b'name = "X"\nsystem_prompt = """never closed\n', "unterminated"),
        (b'name = "X"\nsystem_prompt = "x"\nmodle = "y"', "did you mean"),
        (b'name = "X"\nsystem_prompt = "x"\ntemperature = "hot"', "temperature"),
        (b"\x89PNG\r\n\x1a\n", "UTF-8"),
    ]:
        upload = emu.upload("x.toml", data, "application/toml")
        refused = await emu.slash_command(emu.channel, alice, "character import", {"file": upload})
        text = await refused.wait_for_content(timeout=10)
        assert expected in text, (data, text)
    big = emu.upload("big.toml", b"x" * 300_000, "application/toml")
    refused = await emu.slash_command(emu.channel, alice, "character import", {"file": big})
    assert "larger than" in await refused.wait_for_content(timeout=10)
    assert [p.slug for p in await service_of(app).store.list()] == ["lilith"]
